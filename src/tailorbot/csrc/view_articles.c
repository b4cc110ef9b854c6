/* The feature view's article lists (features/view.py, _article_features), for the compiled
 * view (view.c): the articles viewed (newest first), marked helpful and unhelpful (by id),
 * and those that resolved the user's issues, overall and per intent (most often first, then
 * by id), from the state's views, votes and resolved counts and the live sessions'. */
#include "view.h"

/* The dicts read are held by the caller; what is read out of them is held here across each
 * allocation, which may run a collection whose finalizers could change them. */

typedef struct {
    PyObject *id; /* an exact str, held */
    double key;   /* sorted by it ascending, then by id */
} Keyed;

static int by_key_then_id(const void *a, const void *b) {
    const Keyed *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return PyUnicode_Compare(x->id, y->id); /* exact str: cannot fail; ids unique */
}

/* the keys of `table` (id -> number) sorted by the number negated, then by id: a new list,
 * NULL with no error set for another type */
static PyObject *by_number(PyObject *table) {
    Py_ssize_t n = PyDict_GET_SIZE(table), pos = 0, i = 0;
    Keyed *items = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(Keyed));
    if (items == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *id, *value, *out = NULL;
    while (PyDict_Next(table, &pos, &id, &value)) {
        if (!PyUnicode_CheckExact(id) || !exact_double(value, &items[i].key)) {
            goto done;
        }
        items[i].key = -items[i].key;
        items[i++].id = Py_NewRef(id);
    }
    qsort(items, (size_t)i, sizeof(Keyed), by_key_then_id);
    out = PyList_New(i);
    for (Py_ssize_t k = 0; out != NULL && k < i; k++) {
        PyList_SET_ITEM(out, k, Py_NewRef(items[k].id));
    }
done:
    for (Py_ssize_t k = 0; k < i; k++) {
        Py_DECREF(items[k].id);
    }
    PyMem_Free(items);
    return out;
}

/* the ids of `feedback` (id -> [time, helpful]) whose vote is `helpful`, sorted: a new
 * list, NULL with no error set for a vote that is not a bool */
static PyObject *voted(PyObject *feedback, int helpful) {
    PyObject *out = PyList_New(0), *id, *vote;
    Py_ssize_t pos = 0;
    while (out != NULL && PyDict_Next(feedback, &pos, &id, &vote)) {
        if (!PyUnicode_CheckExact(id) ||
            !((PyList_CheckExact(vote) || PyTuple_CheckExact(vote)) &&
              PySequence_Fast_GET_SIZE(vote) >= 2 &&
              PyBool_Check(PySequence_Fast_ITEMS(vote)[1]))) {
            Py_CLEAR(out);
            break;
        }
        int is_helpful = PySequence_Fast_ITEMS(vote)[1] == Py_True;
        if (is_helpful == helpful && PyList_Append(out, id) < 0) {
            Py_CLEAR(out);
            return NULL;
        }
    }
    if (out != NULL && PyList_Sort(out) < 0) {
        Py_CLEAR(out);
    }
    return out;
}

/* counts[id] += n for each id -> n of `add` (ints): 0, -1 with no error set for a value
 * that is not an int, or with one */
static int add_counts(PyObject *counts, PyObject *add) {
    PyObject *id, *n;
    Py_ssize_t pos = 0;
    while (PyDict_Next(add, &pos, &id, &n)) {
        if (!PyUnicode_CheckExact(id) || !PyLong_CheckExact(n)) {
            return -1;
        }
        Py_INCREF(id);
        Py_INCREF(n);
        PyObject *had = PyDict_GetItemWithError(counts, id);
        PyObject *sum = had != NULL          ? PyNumber_Add(had, n)
                        : PyErr_Occurred() ? NULL
                                           : Py_NewRef(n);
        int failed = sum == NULL || PyDict_SetItem(counts, id, sum) < 0;
        Py_XDECREF(sum);
        Py_DECREF(id);
        Py_DECREF(n);
        if (failed) {
            return -1;
        }
    }
    return 0;
}

/* the state's resolved counts (intent -> {id: n}) plus the live sessions', as a new dict of
 * new dicts; NULL with no error set for another type */
static PyObject *resolved_counts(PyObject *kept, PyObject *live) {
    PyObject *out = PyDict_New(), *intent, *counts;
    PyObject *parts[2] = {kept, live};
    for (int p = 0; out != NULL && p < 2; p++) {
        Py_ssize_t pos = 0;
        while (PyDict_Next(parts[p], &pos, &intent, &counts)) {
            PyObject *into = PyDict_GetItemWithError(out, intent);
            if (!PyUnicode_CheckExact(intent) || !PyDict_CheckExact(counts) ||
                (into == NULL && PyErr_Occurred())) {
                Py_CLEAR(out);
                break;
            }
            Py_INCREF(intent);
            Py_INCREF(counts);
            int failed = 0;
            if (into == NULL) {
                PyObject *made = PyDict_New();
                failed = made == NULL || PyDict_SetItem(out, intent, made) < 0;
                into = made;
                Py_XDECREF(made); /* held by `out` */
            }
            failed = failed || add_counts(into, counts) < 0;
            Py_DECREF(intent);
            Py_DECREF(counts);
            if (failed) {
                Py_CLEAR(out);
                break;
            }
        }
    }
    return out;
}

/* the five article lists of the view as a new tuple, NULL with no error set for what the
 * Python path reads */
PyObject *article_lists(PyObject *views, PyObject *feedback, PyObject *kept, PyObject *live) {
    PyObject *viewed = NULL, *helpful = NULL, *unhelpful = NULL, *resolved = NULL;
    PyObject *overall = NULL, *by_intent = NULL, *intents = NULL, *result = NULL;
    if ((viewed = by_number(views)) == NULL || (helpful = voted(feedback, 1)) == NULL ||
        (unhelpful = voted(feedback, 0)) == NULL ||
        (resolved = resolved_counts(kept, live)) == NULL || (overall = PyDict_New()) == NULL ||
        (by_intent = PyDict_New()) == NULL || (intents = PyDict_Keys(resolved)) == NULL ||
        PyList_Sort(intents) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(intents); i++) {
        PyObject *intent = PyList_GET_ITEM(intents, i);
        PyObject *counts = PyDict_GetItemWithError(resolved, intent); /* held by `resolved` */
        if (counts == NULL || add_counts(overall, counts) < 0) {
            goto done;
        }
        if (PyUnicode_GET_LENGTH(intent) == 0) {
            continue; /* no intent: counted overall only */
        }
        PyObject *ranked = by_number(counts);
        int failed = ranked == NULL || PyDict_SetItem(by_intent, intent, ranked) < 0;
        Py_XDECREF(ranked);
        if (failed) {
            goto done;
        }
    }
    PyObject *ranked = by_number(overall);
    if (ranked != NULL) {
        result = PyTuple_Pack(5, viewed, helpful, unhelpful, ranked, by_intent);
        Py_DECREF(ranked);
    }
done:
    Py_XDECREF(viewed);
    Py_XDECREF(helpful);
    Py_XDECREF(unhelpful);
    Py_XDECREF(resolved);
    Py_XDECREF(overall);
    Py_XDECREF(by_intent);
    Py_XDECREF(intents);
    return result;
}
