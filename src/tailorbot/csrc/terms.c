#include "native.h"

/* ---- TermIndex: a term-document index's query scores (BM25's postings) ---------------- */

typedef struct {
    PyObject_HEAD
    int started;       /* __init__ ran (once only) */
    int ready;         /* __init__ succeeded */
    PyObject *doc_ids; /* tuple of str */
    Py_ssize_t n_docs;
    Py_ssize_t n_terms;
    Py_ssize_t *starts; /* n_terms + 1 offsets into docs and weights */
    int32_t *docs;
    double *weights;    /* each posting's weight */
    double *idf;        /* per term */
    int32_t *repeats;   /* per term, zero between calls: a call's scratch */
    double *sums;       /* per doc, zero between calls */
    int32_t *shared; /* per doc, zero between calls */
    int32_t *order;  /* the docs a call matched, in order of first match */
} TermIndex;

static int TermIndex_init(TermIndex *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"doc_ids", "postings", "idf", NULL};
    PyObject *doc_ids, *postings, *idf;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "TermIndex is already initialized");
        return -1;
    }
    self->started = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!", keywords, &PyList_Type, &doc_ids,
                                     &PyList_Type, &postings, &PyList_Type, &idf)) {
        return -1;
    }
    /* snapshots: reading a number may run Python code (__index__, __float__), which must
     * not change what is being read */
    int result = -1;
    PyObject *terms = PyList_AsTuple(postings), *idfs = PyList_AsTuple(idf);
    PyObject *rows = NULL;
    self->doc_ids = PyList_AsTuple(doc_ids);
    if (terms == NULL || idfs == NULL || self->doc_ids == NULL) {
        goto done;
    }
    Py_ssize_t n_docs = PyTuple_GET_SIZE(self->doc_ids), n_terms = PyTuple_GET_SIZE(terms);
    if (n_docs > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many documents");
        goto done;
    }
    if (PyTuple_GET_SIZE(idfs) != n_terms) {
        PyErr_SetString(PyExc_ValueError, "idf must hold one value per term");
        goto done;
    }
    for (Py_ssize_t d = 0; d < n_docs; d++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(self->doc_ids, d))) {
            PyErr_SetString(PyExc_TypeError, "doc_ids must be a list of str");
            goto done;
        }
    }
    rows = PyTuple_New(n_terms);
    if (rows == NULL) {
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t t = 0; t < n_terms; t++) {
        PyObject *list = PyTuple_GET_ITEM(terms, t);
        if (!PyList_Check(list)) {
            PyErr_SetString(PyExc_TypeError, "postings must be a list of lists");
            goto done;
        }
        PyObject *row = PyList_AsTuple(list);
        if (row == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(rows, t, row);
        total += PyTuple_GET_SIZE(row);
    }
    self->starts = PyMem_Malloc((size_t)(n_terms + 1) * sizeof(Py_ssize_t));
    self->docs = PyMem_Malloc((size_t)(total > 0 ? total : 1) * sizeof(int32_t));
    self->weights = PyMem_Malloc((size_t)(total > 0 ? total : 1) * sizeof(double));
    self->idf = PyMem_Malloc((size_t)(n_terms > 0 ? n_terms : 1) * sizeof(double));
    self->repeats = PyMem_Calloc((size_t)(n_terms > 0 ? n_terms : 1), sizeof(int32_t));
    self->sums = PyMem_Calloc((size_t)(n_docs > 0 ? n_docs : 1), sizeof(double));
    self->shared = PyMem_Calloc((size_t)(n_docs > 0 ? n_docs : 1), sizeof(int32_t));
    self->order = PyMem_Malloc((size_t)(n_docs > 0 ? n_docs : 1) * sizeof(int32_t));
    if (!self->starts || !self->docs || !self->weights || !self->idf || !self->repeats ||
        !self->sums || !self->shared || !self->order) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t t = 0; t < n_terms; t++) {
        self->idf[t] = PyFloat_AsDouble(PyTuple_GET_ITEM(idfs, t));
        if (self->idf[t] == -1.0 && PyErr_Occurred()) {
            goto done;
        }
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t t = 0; t < n_terms; t++) {
        PyObject *row = PyTuple_GET_ITEM(rows, t);
        self->starts[t] = at;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(row); i++) {
            PyObject *pair = PyTuple_GET_ITEM(row, i);
            Py_ssize_t doc;
            double weight;
            if (!PyTuple_Check(pair) || !PyArg_ParseTuple(pair, "nd", &doc, &weight)) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_TypeError, "a posting is a (doc, weight) tuple");
                }
                goto done;
            }
            if (doc < 0 || doc >= n_docs) {
                PyErr_Format(PyExc_ValueError, "posting of term %zd: doc %zd out of range", t,
                             doc);
                goto done;
            }
            for (Py_ssize_t j = self->starts[t]; j < at; j++) {
                if (self->docs[j] == (int32_t)doc) {
                    PyErr_Format(PyExc_ValueError, "term %zd lists doc %zd twice", t, doc);
                    goto done;
                }
            }
            self->docs[at] = (int32_t)doc;
            self->weights[at] = weight;
            at++;
        }
    }
    self->starts[n_terms] = at;
    self->n_docs = n_docs;
    self->n_terms = n_terms;
    self->ready = 1;
    result = 0;
done:
    Py_XDECREF(terms);
    Py_XDECREF(idfs);
    Py_XDECREF(rows);
    return result;
}

static void TermIndex_dealloc(TermIndex *self) {
    Py_XDECREF(self->doc_ids);
    PyMem_Free(self->starts);
    PyMem_Free(self->docs);
    PyMem_Free(self->weights);
    PyMem_Free(self->idf);
    PyMem_Free(self->repeats);
    PyMem_Free(self->sums);
    PyMem_Free(self->shared);
    PyMem_Free(self->order);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* match(terms, need) -> (scores, shared): each document's sum over the query's distinct
 * terms of (the term's count in the query x its idf) x (the posting's weight), in that
 * order of operations (BM25Index.scores's, so the very same doubles), divided by the best
 * one, in order of first match; and the matched documents holding at least `need` of the
 * query's distinct terms */
static PyObject *TermIndex_match(TermIndex *self, FASTCALL_ARGS) {
    Py_ssize_t need;
    if (!arity("match", nargs, 2) || !arg_typed("match", 1, args[0], &PyList_Type) ||
        !arg_ssize(args[1], &need)) {
        return NULL;
    }
    PyObject *terms = args[0];
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "TermIndex is not initialized");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(terms);
    Py_ssize_t local[64];
    Py_ssize_t *ids = count <= 64 ? local : PyMem_Malloc((size_t)count * sizeof(Py_ssize_t));
    if (ids == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(terms, i);
        if (!PyLong_Check(item)) { /* no __index__: no Python code may change the list */
            PyErr_SetString(PyExc_TypeError, "terms must be a list of int");
            goto fail;
        }
        ids[i] = PyLong_AsSsize_t(item);
        if (ids[i] == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if (ids[i] < 0 || ids[i] >= self->n_terms) {
            PyErr_Format(PyExc_ValueError, "term %zd out of range", ids[i]);
            goto fail;
        }
    }
    /* no Python code runs from here to the reset below: the scratch stays this call's */
    for (Py_ssize_t i = 0; i < count; i++) {
        self->repeats[ids[i]]++;
    }
    Py_ssize_t matched = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t t = ids[i];
        if (self->repeats[t] == 0) {
            continue; /* counted at its first occurrence, with its repeats */
        }
        double weight = (double)self->repeats[t] * self->idf[t]; /* as BM25Index.scores */
        self->repeats[t] = 0;
        for (Py_ssize_t p = self->starts[t]; p < self->starts[t + 1]; p++) {
            int32_t d = self->docs[p];
            if (self->shared[d]++ == 0) {
                self->order[matched++] = d;
            }
            self->sums[d] += weight * self->weights[p];
        }
    }
    double best = 0.0;
    for (Py_ssize_t i = 0; i < matched; i++) {
        if (self->sums[self->order[i]] > best) {
            best = self->sums[self->order[i]];
        }
    }
    PyObject *scores = PyDict_New(), *shared = PySet_New(NULL), *result = NULL;
    int failed = scores == NULL || shared == NULL;
    for (Py_ssize_t i = 0; i < matched && !failed; i++) {
        int32_t d = self->order[i];
        PyObject *doc = PyTuple_GET_ITEM(self->doc_ids, d);
        if (best > 0.0) { /* else nothing matched for real: no scores, none shared */
            PyObject *value = PyFloat_FromDouble(self->sums[d] / best);
            failed = value == NULL || PyDict_SetItem(scores, doc, value) < 0;
            Py_XDECREF(value);
            if (!failed && self->shared[d] >= need) {
                failed = PySet_Add(shared, doc) < 0;
            }
        }
    }
    for (Py_ssize_t i = 0; i < matched; i++) {
        self->sums[self->order[i]] = 0.0;
        self->shared[self->order[i]] = 0;
    }
    if (!failed) {
        result = PyTuple_Pack(2, scores, shared);
    }
    Py_XDECREF(scores);
    Py_XDECREF(shared);
    if (ids != local) {
        PyMem_Free(ids);
    }
    return result;
fail:
    if (ids != local) {
        PyMem_Free(ids);
    }
    return NULL;
}

static PyMethodDef TermIndex_methods[] = {
    {"match", FASTCALL(TermIndex_match),
     "match(terms, need) -> tuple[dict[str, float], set[str]]\n\nThe query's scores divided "
     "by the best one, in order of first match, and the matched documents that hold at "
     "least ``need`` of its distinct terms. ``terms``: the query's term ids, repeats "
     "included."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject TermIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tailorbot._native.TermIndex",
    .tp_basicsize = sizeof(TermIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TermIndex(doc_ids, postings, idf)\n\nPostings of a term-document index: "
              "``postings[term]`` lists ``(doc, weight)`` pairs, ``idf[term]`` its weight "
              "(see native.h).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TermIndex_init,
    .tp_dealloc = (destructor)TermIndex_dealloc,
    .tp_methods = TermIndex_methods,
};
