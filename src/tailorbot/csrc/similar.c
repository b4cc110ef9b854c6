/* top_similar: item-kNN's best articles for a basket in one call (ItemKNN.scores and the cut
 * of ItemKNN.most_similar_in_python, models/recommend/item_knn.py, its reference): each
 * neighbour's similarities to the basket's articles summed in the order Python sums them
 * (the basket's set walked as `set(basket)` walks it, each neighbour list in its order),
 * clipped to 1, and the n best by (score, id), best first. */
#include "native.h"

typedef struct {
    PyObject *article; /* borrowed from a neighbour list, held by `index` */
    double sum;
} Summed;

/* (score, id) descending, as heapq.nlargest orders (score, id) keys */
static int by_score_then_id(const void *a, const void *b) {
    const Summed *x = a, *y = b;
    if (x->sum != y->sum) {
        return x->sum < y->sum ? 1 : -1;
    }
    return -PyUnicode_Compare(x->article, y->article);
}

/* The similarities of one neighbour list added into *out (grown as needed, *n its length):
 * 0, -1 with an error set, -2 for a value the Python path must read (an id no exact str, a
 * similarity no float or a NaN). `index` maps each article to its place and holds it. No
 * object this makes is tracked by the collector, so no finalizer runs in the loop. */
static int add_row(PyObject *row, PyObject *index, Summed **out, Py_ssize_t *n,
                   Py_ssize_t *capacity) {
    Py_ssize_t at = 0;
    PyObject *other, *similarity;
    while (PyDict_Next(row, &at, &other, &similarity)) {
        if (!PyUnicode_CheckExact(other) || !PyFloat_CheckExact(similarity) ||
            isnan(PyFloat_AS_DOUBLE(similarity))) {
            return -2;
        }
        double value = PyFloat_AS_DOUBLE(similarity);
        PyObject *place = PyDict_GetItemWithError(index, other);
        if (place != NULL) {
            (*out)[PyLong_AsSsize_t(place)].sum += value;
            continue;
        }
        if (PyErr_Occurred()) {
            return -1;
        }
        if (*n == *capacity) {
            Summed *more = PyMem_Realloc(*out, (size_t)*capacity * 2 * sizeof(Summed));
            if (more == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            *out = more;
            *capacity *= 2;
        }
        PyObject *number = PyLong_FromSsize_t(*n);
        if (number == NULL || PyDict_SetItem(index, other, number) < 0) {
            Py_XDECREF(number);
            return -1;
        }
        Py_DECREF(number);
        /* 0.0 + s, as `out.get(article, 0.0) + sim` adds it: -0.0 becomes 0.0 */
        (*out)[*n].article = other;
        (*out)[(*n)++].sum = 0.0 + value;
    }
    return 0;
}

/* The sums of every neighbour of the basket's articles (`owned`, walked in its order) into
 * *out: their number; -1 with an error set; -2 for a value the Python path must read (a list
 * that is no exact dict, or what add_row leaves to it). */
static Py_ssize_t sum_neighbours(PyObject *neighbours, PyObject *owned, PyObject *index,
                                 Summed **out, Py_ssize_t *capacity) {
    Py_ssize_t n = 0;
    PyObject *walk = PyObject_GetIter(owned), *article;
    if (walk == NULL) {
        return -1;
    }
    int failed = 0;
    while (!failed && (article = PyIter_Next(walk)) != NULL) {
        PyObject *row = PyDict_GetItemWithError(neighbours, article);
        Py_DECREF(article); /* held by `owned` */
        if (row == NULL) {
            failed = PyErr_Occurred() ? -1 : 0;
            continue;
        }
        if (!PyDict_CheckExact(row)) {
            failed = -2;
            continue;
        }
        Py_INCREF(row);
        failed = add_row(row, index, out, &n, capacity);
        Py_DECREF(row);
    }
    Py_DECREF(walk);
    if (!failed && PyErr_Occurred()) {
        failed = -1;
    }
    return failed ? failed : n;
}

/* top_similar(neighbours, basket, n): see module.c */
PyObject *top_similar(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "top_similar";
    Py_ssize_t most;
    if (!arity(name, nargs, 3) || !arg_ssize(args[2], &most)) {
        return NULL;
    }
    PyObject *neighbours = args[0];
    if (!PyDict_CheckExact(neighbours) || most < 0) {
        Py_RETURN_NONE;
    }
    PyObject *owned = PySet_New(args[1]); /* set(basket): its order is Python's */
    if (owned == NULL) {
        return NULL;
    }
    /* `index` holds every article read: the lists may change once Python code runs */
    PyObject *index = PyDict_New(), *out = NULL;
    Py_ssize_t capacity = 16;
    Summed *summed = PyMem_Malloc((size_t)capacity * sizeof(Summed));
    if (index == NULL || summed == NULL) {
        if (summed == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    Py_ssize_t n = sum_neighbours(neighbours, owned, index, &summed, &capacity);
    if (n == -2) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    if (n < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) { /* min(1.0, s) */
        summed[i].sum = summed[i].sum < 1.0 ? summed[i].sum : 1.0;
    }
    qsort(summed, (size_t)n, sizeof(Summed), by_score_then_id);
    if (most > n) {
        most = n;
    }
    out = NEW_SIZED_DICT(most);
    for (Py_ssize_t i = 0; out != NULL && i < most; i++) {
        PyObject *score = PyFloat_FromDouble(summed[i].sum);
        if (score == NULL || PyDict_SetItem(out, summed[i].article, score) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(score);
    }
done:
    PyMem_Free(summed);
    Py_XDECREF(index);
    Py_DECREF(owned);
    return out;
}
