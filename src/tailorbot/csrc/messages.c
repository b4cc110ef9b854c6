/* The feature view's message features in one call (features/view.py, message_features):
 * the windows' counts of a user's events and customer messages, their recent intents, and
 * the intents of the last window's customer messages counted and ranked. */
#include "native.h"

/* the state's keys read, interned once */
enum { K_TS, K_CM_TS, K_CM_INTENT, K_INTENTS };
static const char *const KEYS[] = {"ts", "cm_ts", "cm_intent", "intents"};
#define N_KEYS 4
static PyObject *keys[N_KEYS];

/* state[key] (borrowed) when it is an exact list; NULL otherwise (check PyErr_Occurred: a
 * missing key or another type is the Python path's to read, and raise) */
static PyObject *list_at(PyObject *state, int key) {
    PyObject *found = PyDict_GetItemWithError(state, keys[key]);
    return found != NULL && PyList_CheckExact(found) ? found : NULL;
}

/* [pair[1] for pair in intents], each pair a list or a tuple of two; NULL with no error set
 * for any other pair (the Python path's unpacking raises, or reads it) */
static PyObject *second_items(PyObject *pairs) {
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    PyObject *out = PyList_New(n);
    if (out != NULL && PyList_GET_SIZE(pairs) != n) { /* changed by a finalizer meanwhile */
        Py_CLEAR(out);
    }
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        PyObject *second;
        if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
            second = PyList_GET_ITEM(pair, 1);
        } else if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
            second = PyTuple_GET_ITEM(pair, 1);
        } else {
            Py_CLEAR(out);
            break;
        }
        Py_INCREF(second);
        PyList_SET_ITEM(out, i, second);
    }
    return out;
}

typedef struct {
    PyObject *name; /* an exact str, borrowed from the counts' dict */
    Py_ssize_t count;
} Ranked;

/* the higher count first, then the lower name: the order of the (-count, name) keys */
static int by_count_then_name(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->count != y->count) {
        return x->count > y->count ? -1 : 1;
    }
    return PyUnicode_Compare(x->name, y->name); /* exact str: cannot fail; names unique */
}

/* counts (name -> int, more than one) as a new dict, most frequent first, ties by name */
static PyObject *ranked(PyObject *counts) {
    Py_ssize_t n = PyDict_GET_SIZE(counts), pos = 0, i = 0;
    Ranked *items = PyMem_Malloc((size_t)n * sizeof(Ranked));
    if (items == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *name, *count;
    while (PyDict_Next(counts, &pos, &name, &count)) {
        items[i].name = name;
        items[i++].count = PyLong_AsSsize_t(count); /* counted here: cannot overflow */
    }
    qsort(items, (size_t)n, sizeof(Ranked), by_count_then_name);
    PyObject *out = PyDict_New();
    for (i = 0; out != NULL && i < n; i++) {
        PyObject *value = PyDict_GetItemWithError(counts, items[i].name);
        if (value == NULL || PyDict_SetItem(out, items[i].name, value) < 0) {
            Py_CLEAR(out);
        }
    }
    PyMem_Free(items);
    return out;
}

/* The intents of the customer messages in (now - width, now], each a non-empty exact str or
 * None (not counted), counted in order of first appearance and ranked; NULL with no error
 * set for anything else (the Python path reads it) */
static PyObject *intent_counts(PyObject *cm_ts, PyObject *cm_intent, double now, double width) {
    PyObject *const *times = ((PyListObject *)cm_ts)->ob_item;
    Py_ssize_t n = PyList_GET_SIZE(cm_ts);
    Py_ssize_t start = float_bisect_right(times, n, now - width);
    Py_ssize_t end = float_bisect_right(times, n, now);
    if (start < 0 || end < 0) {
        return NULL;
    }
    PyObject *counts = PyDict_New();
    /* the list's size read at each step (a slice stops at its end): the counts' allocations
     * may run a collection whose finalizers change it; each intent held while it is used */
    for (Py_ssize_t i = start; counts != NULL && i < end && i < PyList_GET_SIZE(cm_intent);
         i++) {
        PyObject *intent = PyList_GET_ITEM(cm_intent, i);
        if (intent == Py_None) {
            continue;
        }
        if (!PyUnicode_CheckExact(intent)) {
            Py_CLEAR(counts);
            break;
        }
        if (PyUnicode_GET_LENGTH(intent) == 0) {
            continue;
        }
        Py_INCREF(intent);
        PyObject *count = PyDict_GetItemWithError(counts, intent);
        Py_ssize_t counted = count == NULL ? 1 : PyLong_AsSsize_t(count) + 1;
        PyObject *updated = PyErr_Occurred() ? NULL : PyLong_FromSsize_t(counted);
        if (updated == NULL || PyDict_SetItem(counts, intent, updated) < 0) {
            Py_CLEAR(counts);
        }
        Py_XDECREF(updated);
        Py_DECREF(intent);
    }
    if (counts == NULL || PyDict_GET_SIZE(counts) < 2) {
        return counts;
    }
    PyObject *out = ranked(counts);
    Py_DECREF(counts);
    return out;
}

/* message_features(state, now, widths, rate_window): see module.c */
PyObject *message_features(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("message_features", nargs, 4) || intern_names(keys, KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *state = args[0], *now_obj = args[1];
    double widths[MAX_WIDTHS];
    Py_ssize_t windows = float_widths(args[2], widths);
    if (!PyDict_CheckExact(state) || !PyFloat_CheckExact(now_obj) ||
        !PyFloat_CheckExact(args[3]) || windows < 0) {
        Py_RETURN_NONE;
    }
    double now = PyFloat_AS_DOUBLE(now_obj), rate_window = PyFloat_AS_DOUBLE(args[3]);
    PyObject *lists[N_KEYS]; /* held: a finalizer run by an allocation may replace them */
    int found = 0;
    for (; found < N_KEYS; found++) {
        if ((lists[found] = list_at(state, found)) == NULL) {
            break;
        }
        Py_INCREF(lists[found]);
    }
    PyObject *result = NULL;
    Py_ssize_t events[MAX_WIDTHS], messages[MAX_WIDTHS];
    PyObject *ranking = NULL, *recent = NULL, *event_counts = NULL, *message_counts = NULL;
    /* the counts before any object is made: an allocation may run a collection, whose
     * finalizers may change the lists */
    if (found == N_KEYS &&
        window_counts_of(lists[K_TS], now, widths, windows, events) == 0 &&
        window_counts_of(lists[K_CM_TS], now, widths, windows, messages) == 0) {
        ranking = intent_counts(lists[K_CM_TS], lists[K_CM_INTENT], now, rate_window);
        recent = ranking == NULL ? NULL : second_items(lists[K_INTENTS]);
        event_counts = recent == NULL ? NULL : count_list(events, windows);
        message_counts = event_counts == NULL ? NULL : count_list(messages, windows);
    }
    if (message_counts != NULL) {
        result = PyTuple_Pack(4, event_counts, message_counts, recent, ranking);
    } else if (!PyErr_Occurred()) { /* what the Python path reads, or raises on */
        Py_INCREF(Py_None);
        result = Py_None;
    }
    Py_XDECREF(ranking);
    Py_XDECREF(recent);
    Py_XDECREF(event_counts);
    Py_XDECREF(message_counts);
    for (int k = 0; k < found; k++) {
        Py_DECREF(lists[k]);
    }
    return result;
}
