/* NgramScorer: one TF-IDF block of a linear model. The vocabulary lives in an
 * open-addressing table keyed by code points, so a message's n-grams are looked up without
 * building a Python string per n-gram; the known ones' l2-normalized tf-idf weights times
 * their coefficient rows are added to a float64 score vector (serving.py's reference). */
#include "native.h"

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
};
