/* Compiled hot loops of the serving path; each has a pure-Python reference it is tested
 * against (tests/test_native.py), and the Python path serves where this module is missing.
 *
 * NgramScorer: one TF-IDF block of a linear model. The vocabulary lives in an
 * open-addressing table keyed by code points, so a message's n-grams are looked up without
 * building a Python string per n-gram; the known ones' l2-normalized tf-idf weights times
 * their coefficient rows are added to a float64 score vector.
 *
 * mean_rows: the float32 mean of float16 rows (a static embedding), summed in token order.
 *
 * The GIL is held throughout: every call's state is its own (stack or heap), the scorer is
 * read-only after construction, and the arrays it reads are held by buffer views.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    uint32_t start; /* into the code-point pool */
    uint32_t length;
    int32_t id; /* -1: empty slot */
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t mask;
    Py_UCS4 *pool;
    int32_t *counts; /* per id, zero between calls: a call's scratch */
    Py_buffer idf;  /* float64 (n_features,) */
    Py_buffer coef; /* float32 (n_features, n_classes), C-contiguous */
    Py_ssize_t n_features;
    Py_ssize_t n_classes;
    int min_n;
    int max_n;
    int sublinear;
    int char_wb;
    int have_idf;
    int have_coef;
    int started; /* __init__ ran (once only) */
    int ready;   /* __init__ succeeded */
} NgramScorer;

/* a growable array of ids, on the stack while it is small */
typedef struct {
    int32_t *items;
    Py_ssize_t size;
    Py_ssize_t capacity;
    int32_t local[256];
} Ids;

static uint64_t hash_points(const Py_UCS4 *points, Py_ssize_t length) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over 32-bit code points */
    for (Py_ssize_t i = 0; i < length; i++) {
        h ^= (uint64_t)points[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static int ids_push(Ids *ids, int32_t id) {
    if (ids->size == ids->capacity) {
        Py_ssize_t grown = ids->capacity * 2;
        int32_t *items;
        if (ids->items == ids->local) {
            items = PyMem_Malloc((size_t)grown * sizeof(int32_t));
            if (items != NULL) {
                memcpy(items, ids->local, (size_t)ids->size * sizeof(int32_t));
            }
        } else {
            items = PyMem_Realloc(ids->items, (size_t)grown * sizeof(int32_t));
        }
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        ids->items = items;
        ids->capacity = grown;
    }
    ids->items[ids->size++] = id;
    return 0;
}

static void ids_free(Ids *ids) {
    if (ids->items != ids->local) {
        PyMem_Free(ids->items);
    }
}

static int32_t lookup(const NgramScorer *self, const Py_UCS4 *points, Py_ssize_t length) {
    uint64_t h = hash_points(points, length);
    for (size_t i = (size_t)h & self->mask;; i = (i + 1) & self->mask) {
        const Slot *slot = &self->slots[i];
        if (slot->id < 0) {
            return -1;
        }
        if (slot->hash == h && (Py_ssize_t)slot->length == length &&
            memcmp(self->pool + slot->start, points, (size_t)length * sizeof(Py_UCS4)) == 0) {
            return slot->id;
        }
    }
}

static int found(const NgramScorer *self, Ids *ids, const Py_UCS4 *points, Py_ssize_t length) {
    int32_t id = lookup(self, points, length);
    return id < 0 ? 0 : ids_push(ids, id);
}

/* a growable code-point buffer, on the stack while it is small */
typedef struct {
    Py_UCS4 *points;
    Py_ssize_t capacity;
    Py_UCS4 local[512];
} Points;

static int points_reserve(Points *buf, Py_ssize_t needed) {
    if (needed <= buf->capacity) {
        return 0;
    }
    Py_UCS4 *grown = buf->points == buf->local
                         ? PyMem_Malloc((size_t)needed * sizeof(Py_UCS4))
                         : PyMem_Realloc(buf->points, (size_t)needed * sizeof(Py_UCS4));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->points = grown;
    buf->capacity = needed;
    return 0;
}

static void points_free(Points *buf) {
    if (buf->points != buf->local) {
        PyMem_Free(buf->points);
    }
}

/* writes the code points of `text` at `out` (room for its length is the caller's) */
static void copy_points(PyObject *text, Py_UCS4 *out) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < length; i++) {
        out[i] = PyUnicode_READ(kind, data, i);
    }
}

/* scikit-learn's char_wb n-grams of one word: " word " cut into min_n..max_n grams; a word
 * shorter than n yields itself once, and then no longer n-grams */
static int char_wb_ids(const NgramScorer *self, PyObject *word, Points *buf, Ids *ids) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(word) + 2;
    if (points_reserve(buf, length) < 0) {
        return -1;
    }
    Py_UCS4 *w = buf->points;
    w[0] = ' ';
    copy_points(word, w + 1);
    w[length - 1] = ' ';
    for (int n = self->min_n; n <= self->max_n; n++) {
        if (found(self, ids, w, n < length ? n : length) < 0) {
            return -1;
        }
        if (n >= length) {
            break; /* offset 0 was the whole word: sklearn stops here */
        }
        for (Py_ssize_t offset = 1; offset + n <= length; offset++) {
            if (found(self, ids, w + offset, n) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* scikit-learn's word n-grams: tokens[i:i+n] joined by one space, n in min_n..max_n */
static int word_ids(const NgramScorer *self, PyObject *tokens, Points *buf, Ids *ids) {
    Py_ssize_t count = PyList_GET_SIZE(tokens);
    for (int n = self->min_n; n <= self->max_n && n <= count; n++) {
        for (Py_ssize_t i = 0; i + n <= count; i++) {
            Py_ssize_t length = n - 1;
            for (int k = 0; k < n; k++) {
                length += PyUnicode_GET_LENGTH(PyList_GET_ITEM(tokens, i + k));
            }
            if (points_reserve(buf, length) < 0) {
                return -1;
            }
            Py_ssize_t at = 0;
            for (int k = 0; k < n; k++) {
                PyObject *token = PyList_GET_ITEM(tokens, i + k);
                if (k > 0) {
                    buf->points[at++] = ' ';
                }
                copy_points(token, buf->points + at);
                at += PyUnicode_GET_LENGTH(token);
            }
            if (found(self, ids, buf->points, length) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int format_is(const Py_buffer *view, char code) {
    const char *format = view->format;
    if (format == NULL) {
        return 0;
    }
    if (format[0] == '@' || format[0] == '=') {
        format++; /* native order */
    }
#if PY_LITTLE_ENDIAN
    else if (format[0] == '<') {
        format++; /* little-endian, this machine's order */
    }
#endif
    return format[0] == code && format[1] == '\0';
}

/* a C-contiguous view of `obj` as `ndim`-d values of struct code `code` */
static int get_array(PyObject *obj, Py_buffer *view, int writable, char code, int ndim,
                     const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    int refused = PyObject_GetBuffer(obj, view, flags) < 0;
    if (refused) {
        PyErr_Clear(); /* numpy's own words do not name the argument */
    }
    if (refused || view->ndim != ndim || !format_is(view, code)) {
        if (!refused) {
            PyBuffer_Release(view);
        }
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous %d-d array of '%c' values",
                     name, ndim, code);
        return -1;
    }
    return 0;
}

/* term frequency of an n-gram seen `count` times (1 + ln count when sublinear) */
static double tf(const NgramScorer *self, int32_t count) {
    if (count == 1) {
        return 1.0; /* the usual case, without a log */
    }
    return self->sublinear ? 1.0 + log((double)count) : (double)count;
}

static PyObject *NgramScorer_add_scores(NgramScorer *self, PyObject *args) {
    PyObject *units, *scores_obj;
    Py_buffer scores;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &units, &scores_obj) ||
        get_array(scores_obj, &scores, 1, 'd', 1, "scores") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    Ids ids = {.size = 0, .capacity = 256};
    ids.items = ids.local;
    Points buf = {.capacity = 512};
    buf.points = buf.local;
    if (scores.shape[0] != self->n_classes) {
        PyErr_Format(PyExc_ValueError, "scores must hold %zd float64 values", self->n_classes);
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(units);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyUnicode_Check(PyList_GET_ITEM(units, i))) {
            PyErr_SetString(PyExc_TypeError, "units must be a list of str");
            goto done;
        }
    }
    if (self->char_wb) {
        for (Py_ssize_t i = 0; i < count; i++) {
            if (char_wb_ids(self, PyList_GET_ITEM(units, i), &buf, &ids) < 0) {
                goto done;
            }
        }
    } else if (word_ids(self, units, &buf, &ids) < 0) {
        goto done;
    }
    /* count each id in the scorer's scratch array (all zeros between calls; the GIL
     * makes it this call's): the distinct ids move to the front of ids, in order of first
     * occurrence, with no sort */
    Py_ssize_t distinct = 0;
    int32_t *seen = self->counts;
    for (Py_ssize_t i = 0; i < ids.size; i++) {
        int32_t id = ids.items[i];
        if (seen[id]++ == 0) {
            ids.items[distinct++] = id;
        }
    }
    const double *idf = self->idf.buf;
    double squared = 0.0;
    for (Py_ssize_t i = 0; i < distinct; i++) {
        double value = tf(self, seen[ids.items[i]]) * idf[ids.items[i]];
        squared += value * value;
    }
    if (squared > 0.0) {
        double norm = sqrt(squared);
        double *out = scores.buf;
        const float *coef = self->coef.buf;
        Py_ssize_t n_classes = self->n_classes;
        for (Py_ssize_t i = 0; i < distinct; i++) {
            int32_t id = ids.items[i];
            double weight = tf(self, seen[id]) * idf[id] / norm;
            const float *row = coef + (Py_ssize_t)id * n_classes;
            for (Py_ssize_t k = 0; k < n_classes; k++) {
                out[k] += weight * (double)row[k];
            }
        }
    }
    for (Py_ssize_t i = 0; i < distinct; i++) {
        seen[ids.items[i]] = 0;
    }
    result = PyLong_FromSsize_t(distinct);
done:
    ids_free(&ids);
    points_free(&buf);
    PyBuffer_Release(&scores);
    return result;
}


static int NgramScorer_init(NgramScorer *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"vocabulary", "idf",       "coef",    "min_n",
                               "max_n",      "sublinear", "char_wb", NULL};
    PyObject *vocabulary, *idf, *coef;
    int min_n, max_n, sublinear, char_wb;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "NgramScorer is already initialized");
        return -1;
    }
    self->started = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OOiipp", keywords, &PyDict_Type,
                                     &vocabulary, &idf, &coef, &min_n, &max_n, &sublinear,
                                     &char_wb)) {
        return -1;
    }
    if (min_n < 1 || max_n < min_n) {
        PyErr_Format(PyExc_ValueError, "bad n-gram range (%d, %d)", min_n, max_n);
        return -1;
    }
    if (get_array(idf, &self->idf, 0, 'd', 1, "idf") < 0) {
        return -1;
    }
    self->have_idf = 1;
    if (get_array(coef, &self->coef, 0, 'f', 2, "coef") < 0) {
        return -1;
    }
    self->have_coef = 1;
    if (self->coef.shape[0] != self->idf.shape[0]) {
        PyErr_SetString(PyExc_ValueError, "coef must have one row per idf value");
        return -1;
    }
    self->n_features = self->idf.shape[0];
    self->n_classes = self->coef.shape[1];
    self->min_n = min_n;
    self->max_n = max_n;
    self->sublinear = sublinear;
    self->char_wb = char_wb;

    /* a snapshot of the pairs (strong references), and every id read before anything is
     * sized: reading an id may run Python code (__index__), which must not find the table
     * half built */
    PyObject *items = PyDict_Items(vocabulary);
    if (items == NULL) {
        return -1;
    }
    int result = -1;
    Py_ssize_t entries = PyList_GET_SIZE(items), total = 0;
    int32_t *ids = PyMem_Malloc((size_t)(entries > 0 ? entries : 1) * sizeof(int32_t));
    if (ids == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t e = 0; e < entries; e++) {
        PyObject *pair = PyList_GET_ITEM(items, e);
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "vocabulary keys must be str");
            goto done;
        }
        PyObject *index = PyNumber_Index(PyTuple_GET_ITEM(pair, 1));
        if (index == NULL) {
            goto done;
        }
        Py_ssize_t id = PyLong_AsSsize_t(index);
        Py_DECREF(index);
        if (id == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (id < 0 || id >= self->n_features || id > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "vocabulary id %zd out of range", id);
            goto done;
        }
        ids[e] = (int32_t)id;
        total += PyUnicode_GET_LENGTH(key);
    }
    if (total > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocabulary too large");
        goto done;
    }
    size_t capacity = 16;
    while (capacity < (size_t)entries * 2) {
        capacity <<= 1;
    }
    self->counts = PyMem_Calloc((size_t)(self->n_features > 0 ? self->n_features : 1),
                                sizeof(int32_t));
    self->slots = PyMem_Malloc(capacity * sizeof(Slot));
    self->pool = PyMem_Malloc((size_t)(total > 0 ? total : 1) * sizeof(Py_UCS4));
    if (self->slots == NULL || self->pool == NULL || self->counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < capacity; i++) {
        self->slots[i].id = -1;
    }
    self->mask = capacity - 1;
    Py_ssize_t at = 0;
    for (Py_ssize_t e = 0; e < entries; e++) {
        PyObject *key = PyTuple_GET_ITEM(PyList_GET_ITEM(items, e), 0);
        Py_ssize_t length = PyUnicode_GET_LENGTH(key);
        copy_points(key, self->pool + at);
        uint64_t h = hash_points(self->pool + at, length);
        size_t i = (size_t)h & self->mask;
        while (self->slots[i].id >= 0) {
            i = (i + 1) & self->mask;
        }
        self->slots[i] = (Slot){h, (uint32_t)at, (uint32_t)length, ids[e]};
        at += length;
    }
    self->ready = 1;
    result = 0;
done:
    PyMem_Free(ids);
    Py_DECREF(items);
    return result;
}

static void NgramScorer_dealloc(NgramScorer *self) {
    PyMem_Free(self->slots);
    PyMem_Free(self->pool);
    PyMem_Free(self->counts);
    if (self->have_idf) {
        PyBuffer_Release(&self->idf);
    }
    if (self->have_coef) {
        PyBuffer_Release(&self->coef);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *NgramScorer_lookup(NgramScorer *self, PyObject *key) {
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "key must be a str");
        return NULL;
    }
    Points buf = {.capacity = 512};
    buf.points = buf.local;
    Py_ssize_t length = PyUnicode_GET_LENGTH(key);
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "NgramScorer is not initialized");
        return NULL;
    }
    if (points_reserve(&buf, length) < 0) {
        return NULL;
    }
    copy_points(key, buf.points);
    int32_t id = lookup(self, buf.points, length);
    points_free(&buf);
    if (id < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(id);
}

static PyObject *NgramScorer_add_scores_checked(NgramScorer *self, PyObject *args) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "NgramScorer is not initialized");
        return NULL;
    }
    return NgramScorer_add_scores(self, args);
}

static PyMethodDef NgramScorer_methods[] = {
    {"add_scores", (PyCFunction)NgramScorer_add_scores_checked, METH_VARARGS,
     "add_scores(units, scores) -> int\n\nAdds the block's weighted coefficient rows to "
     "``scores`` (float64, one per class): ``units`` are the words (char_wb) or the tokens "
     "(word n-grams) of one text. Returns the number of distinct known n-grams."},
    {"lookup", (PyCFunction)NgramScorer_lookup, METH_O,
     "lookup(ngram) -> int | None\n\nThe n-gram's vocabulary id."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject NgramScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tailorbot._native.NgramScorer",
    .tp_basicsize = sizeof(NgramScorer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "NgramScorer(vocabulary, idf, coef, min_n, max_n, sublinear, char_wb)\n\n"
              "One TF-IDF block of a linear model (see the module's C source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)NgramScorer_init,
    .tp_dealloc = (destructor)NgramScorer_dealloc,
    .tp_methods = NgramScorer_methods,
};

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
static PyObject *TermIndex_match(TermIndex *self, PyObject *args) {
    PyObject *terms;
    Py_ssize_t need;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &terms, &need)) {
        return NULL;
    }
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
    {"match", (PyCFunction)TermIndex_match, METH_VARARGS,
     "match(terms, need) -> tuple[dict[str, float], set[str]]\n\nThe query's scores divided "
     "by the best one, in order of first match, and the matched documents that hold at "
     "least ``need`` of its distinct terms. ``terms``: the query's term ids, repeats "
     "included."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TermIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tailorbot._native.TermIndex",
    .tp_basicsize = sizeof(TermIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TermIndex(doc_ids, postings, idf)\n\nPostings of a term-document index: "
              "``postings[term]`` lists ``(doc, weight)`` pairs, ``idf[term]`` its weight "
              "(see _native.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TermIndex_init,
    .tp_dealloc = (destructor)TermIndex_dealloc,
    .tp_methods = TermIndex_methods,
};

/* IEEE half -> single, exactly (every float16 value is a float32 value): the half's
 * exponent and mantissa bits placed in a float32 and scaled by 2^112 (exact for normal and
 * subnormal halves alike); infinities and NaNs keep an all-ones exponent */
static inline float half_to_float(uint16_t h) {
    uint32_t magnitude = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    float scaled;
    uint32_t bits;
    if ((h & 0x7c00u) == 0x7c00u) {
        bits = magnitude | 0x7f800000u;
        memcpy(&scaled, &bits, sizeof scaled);
    } else {
        memcpy(&scaled, &magnitude, sizeof scaled);
        scaled *= 0x1p112f;
    }
    memcpy(&bits, &scaled, sizeof bits);
    bits |= sign;
    memcpy(&scaled, &bits, sizeof scaled);
    return scaled;
}

/* the float32 mean of the float16 rows `table[ids]` into `out` (`width` values), summed in
 * the order of `ids` from the first row on, as numpy sums axis 0 (a lone -0.0 stays);
 * zeros for no ids. -1 with an exception set for a bad id. */
static int mean_of_rows(const Py_buffer *table, PyObject *ids, float *out) {
    Py_ssize_t rows = table->shape[0], width = table->shape[1];
    Py_ssize_t count = PyList_GET_SIZE(ids);
    const uint16_t *halves = table->buf;
    if (count == 0) {
        memset(out, 0, (size_t)width * sizeof(float));
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(ids, i);
        if (!PyLong_Check(item)) { /* no __index__: no Python code may change the list */
            PyErr_SetString(PyExc_TypeError, "ids must be a list of int");
            return -1;
        }
        Py_ssize_t token = PyLong_AsSsize_t(item);
        if (token == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (token < 0 || token >= rows) {
            PyErr_Format(PyExc_IndexError, "token %zd out of range", token);
            return -1;
        }
        const uint16_t *row = halves + token * width;
        if (i == 0) {
            for (Py_ssize_t k = 0; k < width; k++) {
                out[k] = half_to_float(row[k]);
            }
        } else {
            for (Py_ssize_t k = 0; k < width; k++) {
                out[k] += half_to_float(row[k]);
            }
        }
    }
    float n = (float)count;
    for (Py_ssize_t k = 0; k < width; k++) {
        out[k] /= n;
    }
    return 0;
}

static PyObject *mean_rows(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *table, *ids, *out_obj;
    Py_buffer view, out;
    if (!PyArg_ParseTuple(args, "OO!O", &table, &PyList_Type, &ids, &out_obj)) {
        return NULL;
    }
    if (get_array(table, &view, 0, 'e', 2, "table") < 0) {
        return NULL;
    }
    if (get_array(out_obj, &out, 1, 'f', 1, "out") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    PyObject *result = NULL;
    if (out.shape[0] != view.shape[1]) {
        PyErr_Format(PyExc_ValueError, "out must hold %zd float32 values", view.shape[1]);
    } else if (mean_of_rows(&view, ids, out.buf) == 0) {
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&out);
    return result;
}

/* a static embedding's part of a linear model's scores: the mean of the float16 rows
 * `table[ids]`, l2-normalized, times `weight` (float32, as the numpy path computes it) into
 * `dense`, and its product with `coef` (float32, one row per dimension) added to `scores` */
static PyObject *embedding_scores(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *table_obj, *ids, *coef_obj, *dense_obj, *scores_obj;
    double weight;
    Py_buffer table, coef, dense, scores;
    int held = 0;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "OO!dOOO", &table_obj, &PyList_Type, &ids, &weight, &coef_obj,
                          &dense_obj, &scores_obj)) {
        return NULL;
    }
    if (get_array(table_obj, &table, 0, 'e', 2, "table") < 0) {
        goto done;
    }
    held = 1;
    if (get_array(coef_obj, &coef, 0, 'f', 2, "coef") < 0) {
        goto done;
    }
    held = 2;
    if (get_array(dense_obj, &dense, 1, 'f', 1, "dense") < 0) {
        goto done;
    }
    held = 3;
    if (get_array(scores_obj, &scores, 1, 'd', 1, "scores") < 0) {
        goto done;
    }
    held = 4;
    Py_ssize_t width = table.shape[1], n_classes = scores.shape[0];
    if (dense.shape[0] != width || coef.shape[0] != width || coef.shape[1] != n_classes) {
        PyErr_SetString(PyExc_ValueError,
                        "dense must have one value per table column, coef one row per value "
                        "and one column per score");
        goto done;
    }
    float *unit = dense.buf;
    if (mean_of_rows(&table, ids, unit) < 0) {
        goto done;
    }
    double squared = 0.0;
    for (Py_ssize_t k = 0; k < width; k++) {
        squared += (double)unit[k] * (double)unit[k];
    }
    float norm = (float)sqrt(squared);
    float scale = (float)weight;
    for (Py_ssize_t k = 0; k < width; k++) {
        unit[k] = (norm > 0.0f ? unit[k] / norm : unit[k]) * scale;
    }
    double *out = scores.buf;
    const float *rows = coef.buf;
    for (Py_ssize_t k = 0; k < width; k++) {
        double value = (double)unit[k];
        if (value != 0.0) {
            const float *row = rows + k * n_classes;
            for (Py_ssize_t c = 0; c < n_classes; c++) {
                out[c] += value * (double)row[c];
            }
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (held >= 4) {
        PyBuffer_Release(&scores);
    }
    if (held >= 3) {
        PyBuffer_Release(&dense);
    }
    if (held >= 2) {
        PyBuffer_Release(&coef);
    }
    if (held >= 1) {
        PyBuffer_Release(&table);
    }
    return result;
}

/* a linear bandit arm's predicted reward `x . theta` and width `sqrt(x A^-1 x)` (negative
 * rounding clipped to 0) for one context row `x` (a list of floats) */
static PyObject *posterior_moment(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *row, *a_obj, *theta_obj;
    Py_buffer a_inv, theta;
    if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &row, &a_obj, &theta_obj)) {
        return NULL;
    }
    if (get_array(a_obj, &a_inv, 0, 'd', 2, "a_inv") < 0) {
        return NULL;
    }
    if (get_array(theta_obj, &theta, 0, 'd', 1, "theta") < 0) {
        PyBuffer_Release(&a_inv);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t d = theta.shape[0];
    if (PyList_GET_SIZE(row) != d || a_inv.shape[0] != d || a_inv.shape[1] != d) {
        PyErr_Format(PyExc_ValueError, "x, a_inv and theta must all have %zd values a side", d);
        goto done;
    }
    double local[64];
    double *x = d <= 64 ? local : PyMem_Malloc((size_t)d * sizeof(double));
    if (x == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < d; i++) {
        PyObject *item = PyList_GET_ITEM(row, i);
        if (PyFloat_Check(item)) { /* no __float__: no Python code may change the list */
            x[i] = PyFloat_AS_DOUBLE(item);
        } else if (PyLong_Check(item)) {
            x[i] = PyLong_AsDouble(item);
            if (x[i] == -1.0 && PyErr_Occurred()) {
                goto free_x;
            }
        } else {
            PyErr_SetString(PyExc_TypeError, "x must be a list of float");
            goto free_x;
        }
    }
    const double *a = a_inv.buf, *t = theta.buf;
    double mean = 0.0, quadratic = 0.0;
    for (Py_ssize_t j = 0; j < d; j++) {
        mean += x[j] * t[j];
    }
    /* (x A) x, as numpy evaluates x @ a_inv @ x */
    for (Py_ssize_t j = 0; j < d; j++) {
        double column = 0.0;
        for (Py_ssize_t i = 0; i < d; i++) {
            column += x[i] * a[i * d + j];
        }
        quadratic += column * x[j];
    }
    result = Py_BuildValue("(dd)", mean, sqrt(quadratic > 0.0 ? quadratic : 0.0));
free_x:
    if (x != local) {
        PyMem_Free(x);
    }
done:
    PyBuffer_Release(&a_inv);
    PyBuffer_Release(&theta);
    return result;
}

/* the k most probable classes of softmax(scores / temperature), best first (ties: the
 * lower index first), as (index, probability) pairs */
static PyObject *softmax_top(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *scores_obj;
    double temperature;
    Py_ssize_t k;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "Odn", &scores_obj, &temperature, &k)) {
        return NULL;
    }
    if (!(temperature > 0.0) || !isfinite(temperature)) {
        PyErr_SetString(PyExc_ValueError, "temperature must be a positive finite number");
        return NULL;
    }
    if (get_array(scores_obj, &view, 0, 'd', 1, "scores") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = view.shape[0];
    const double *scores = view.buf;
    if (n < 1 || k < 1) {
        PyErr_SetString(PyExc_ValueError, "softmax_top needs at least one score and k >= 1");
        goto done;
    }
    if (k > n) {
        k = n;
    }
    double top = -INFINITY;
    for (Py_ssize_t i = 0; i < n; i++) {
        double z = scores[i] / temperature;
        if (!isfinite(z)) {
            PyErr_SetString(PyExc_ValueError, "scores must be finite");
            goto done;
        }
        if (z > top) {
            top = z;
        }
    }
    double total = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        total += exp(scores[i] / temperature - top);
    }
    /* the k best by insertion into a short sorted list: k is small (the ranking's 5) */
    Py_ssize_t best[16];
    double value[16];
    if (k > 16) {
        k = 16;
    }
    Py_ssize_t held = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double z = scores[i] / temperature;
        if (held == k && !(z > value[held - 1])) {
            continue; /* not better than the k-th (an equal one has a lower index) */
        }
        Py_ssize_t at = held < k ? held++ : k - 1;
        while (at > 0 && z > value[at - 1]) {
            value[at] = value[at - 1];
            best[at] = best[at - 1];
            at--;
        }
        value[at] = z;
        best[at] = i;
    }
    result = PyList_New(held);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t j = 0; j < held; j++) {
        PyObject *pair = Py_BuildValue("(nd)", best[j], exp(value[j] - top) / total);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, j, pair);
    }
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef module_methods[] = {
    {"mean_rows", mean_rows, METH_VARARGS,
     "mean_rows(table, ids, out) -> None\n\nWrites the float32 mean of the float16 rows "
     "``table[ids]`` to ``out``, summed in the order of ``ids`` (zeros for no ids)."},
    {"embedding_scores", embedding_scores, METH_VARARGS,
     "embedding_scores(table, ids, weight, coef, dense, scores) -> None\n\nWrites the "
     "l2-normalized float32 mean of the float16 rows ``table[ids]``, times ``weight``, to "
     "``dense`` and adds ``dense @ coef`` to ``scores`` (float64)."},
    {"posterior_moment", posterior_moment, METH_VARARGS,
     "posterior_moment(x, a_inv, theta) -> tuple[float, float]\n\nA linear bandit arm's "
     "``x . theta`` and ``sqrt(max(x @ a_inv @ x, 0))`` for the context row ``x`` (a list "
     "of floats)."},
    {"softmax_top", softmax_top, METH_VARARGS,
     "softmax_top(scores, temperature, k) -> list[tuple[int, float]]\n\nThe ``k`` (at most "
     "16) most probable classes of ``softmax(scores / temperature)``, best first, ties to "
     "the lower index, with their probabilities."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tailorbot._native",
    .m_doc = "Compiled hot loops of the serving path (see _native.c).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&NgramScorerType) < 0 || PyType_Ready(&TermIndexType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&NgramScorerType);
    if (PyModule_AddObject(module, "NgramScorer", (PyObject *)&NgramScorerType) < 0) {
        Py_DECREF(&NgramScorerType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&TermIndexType);
    if (PyModule_AddObject(module, "TermIndex", (PyObject *)&TermIndexType) < 0) {
        Py_DECREF(&TermIndexType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
