/* NgramScorer: one TF-IDF block of a linear model. The vocabulary lives in an
 * open-addressing table keyed by code points, so a message's n-grams are looked up without
 * building a Python string per n-gram; the known ones' l2-normalized tf-idf weights times
 * their coefficient rows are added to a float64 score vector (serving.py's reference). */
#include "ngrams.h"

static int NgramScorer_init(NgramScorer *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"vocabulary", "idf",     "coef",       "min_n", "max_n",
                               "sublinear",  "char_wb", "word_cache", NULL};
    PyObject *vocabulary, *idf, *coef;
    int min_n, max_n, sublinear, char_wb;
    Py_ssize_t word_cache = 0;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "NgramScorer is already initialized");
        return -1;
    }
    self->started = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OOiipp|n", keywords, &PyDict_Type,
                                     &vocabulary, &idf, &coef, &min_n, &max_n, &sublinear,
                                     &char_wb, &word_cache)) {
        return -1;
    }
    if (word_cache < 0 || word_cache > WORD_SUMS_MAX_WORDS) {
        PyErr_Format(PyExc_ValueError, "word_cache must be in [0, %d], got %zd",
                     WORD_SUMS_MAX_WORDS, word_cache);
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
    if (char_wb && word_cache > 0) {
        /* the seed: a str's hash, salted per process by Python's own hash secret */
        PyObject *salt = PyUnicode_FromString("tailorbot word sums");
        Py_hash_t seed = salt == NULL ? -1 : PyObject_Hash(salt);
        Py_XDECREF(salt);
        if (seed == -1 && PyErr_Occurred()) {
            goto done;
        }
        self->words = word_sums_new(self->n_classes, word_cache, (uint64_t)seed);
        self->acc = PyMem_Malloc((size_t)(2 * self->n_classes + 1) * sizeof(double));
        if (self->words == NULL || self->acc == NULL) {
            PyErr_NoMemory();
            goto done;
        }
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
    word_sums_free(self->words);
    PyMem_Free(self->acc);
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
    int32_t id = ngram_lookup(self, buf.points, length);
    points_free(&buf);
    if (id < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(id);
}

static PyObject *NgramScorer_add_scores_checked(NgramScorer *self, FASTCALL_ARGS) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "NgramScorer is not initialized");
        return NULL;
    }
    return ngram_add_scores(self, args, nargs);
}

static PyMethodDef NgramScorer_methods[] = {
    {"add_scores", FASTCALL(NgramScorer_add_scores_checked),
     "add_scores(units, scores) -> int\n\nAdds the block's weighted coefficient rows to "
     "``scores`` (float64, one per class): ``units`` are the words (char_wb) or the tokens "
     "(word n-grams) of one text. Returns the number of distinct known n-grams."},
    {"lookup", (PyCFunction)NgramScorer_lookup, METH_O,
     "lookup(ngram) -> int | None\n\nThe n-gram's vocabulary id."},
    {NULL, NULL, 0, NULL},
};

static PyObject *NgramScorer_kept_words(NgramScorer *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->words == NULL ? 0 : word_sums_count(self->words));
}

static PyGetSetDef NgramScorer_getset[] = {
    {"kept_words", (getter)NgramScorer_kept_words, NULL, "Words whose sums are kept now.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject NgramScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tailorbot._native.NgramScorer",
    .tp_basicsize = sizeof(NgramScorer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "NgramScorer(vocabulary, idf, coef, min_n, max_n, sublinear, char_wb)\n\n"
              "One TF-IDF block of a linear model (see the module's C source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)NgramScorer_init,
    .tp_dealloc = (destructor)NgramScorer_dealloc,
    .tp_methods = NgramScorer_methods,
    .tp_getset = NgramScorer_getset,
};
