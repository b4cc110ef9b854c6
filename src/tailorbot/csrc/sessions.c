/* A user's sessions summed up for the feature view: features/session_summary.py's pass.
 *
 * A session is the flat list of features/sessions.py (FIRST, LAST, STARTED, ENDED,
 * INTENT_AT, INTENT, OUTCOME_AT, RESOLVED, ARTICLE, HANDOFFS). The pass reads only what the
 * stream worker writes there (times as floats, RESOLVED as None or a bool, HANDOFFS as an
 * int, INTENT and ARTICLE as None or a str, ids as str), in an exact dict, with `now`, the
 * widths and the rate window as floats; anything else and it answers None, and the Python
 * pass, the reference, reads the state.
 *
 * An allocation may start a collection, and a collection may run finalizers that change the
 * sessions: each session is read once, into a Started, and not looked at again; the ids
 * (the sort's ties) and a resolution's strings are held while they are used. */
#include "native.h"

enum {
    FIRST, LAST, STARTED, ENDED, INTENT_AT, INTENT, OUTCOME_AT, RESOLVED, ARTICLE, HANDOFFS,
    FIELDS
};

typedef struct {
    double start;       /* STARTED, else FIRST */
    double end;         /* ENDED, else LAST */
    PyObject *id;       /* held */
    signed char outcome; /* RESOLVED: -1 None, 0 False, 1 True */
    char handed_off;    /* HANDOFFS != 0 */
} Started;

/* start order, ties by id (ids are unique: never equal); PyUnicode_Compare cannot fail on
 * two str */
static int by_start_then_id(const void *a, const void *b) {
    const Started *x = a, *y = b;
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return PyUnicode_Compare(x->id, y->id);
}

/* how many of the sorted starts are <= x (bisect_right) */
static Py_ssize_t at_or_before(const Started *items, Py_ssize_t n, double x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (x < items[mid].start) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

/* 1 with the session read into `item` (its id not yet held), 0 for a session the pass
 * leaves to Python. Allocates nothing. */
static int read_session(PyObject *id, PyObject *session, Started *item) {
    if (!PyUnicode_CheckExact(id) || !PyList_CheckExact(session) ||
        PyList_GET_SIZE(session) < FIELDS) {
        return 0;
    }
    PyObject **f = ((PyListObject *)session)->ob_item;
    if (!PyFloat_CheckExact(f[FIRST]) || !PyFloat_CheckExact(f[LAST]) ||
        !PyLong_CheckExact(f[HANDOFFS]) ||
        (f[STARTED] != Py_None && !PyFloat_CheckExact(f[STARTED])) ||
        (f[ENDED] != Py_None && !PyFloat_CheckExact(f[ENDED])) ||
        (f[RESOLVED] != Py_None && f[RESOLVED] != Py_True && f[RESOLVED] != Py_False) ||
        (f[INTENT] != Py_None && !PyUnicode_CheckExact(f[INTENT])) ||
        (f[ARTICLE] != Py_None && !PyUnicode_CheckExact(f[ARTICLE]))) {
        return 0;
    }
    item->start = PyFloat_AS_DOUBLE(f[STARTED] == Py_None ? f[FIRST] : f[STARTED]);
    item->end = PyFloat_AS_DOUBLE(f[ENDED] == Py_None ? f[LAST] : f[ENDED]);
    item->outcome = f[RESOLVED] == Py_None ? -1 : f[RESOLVED] == Py_True;
    item->handed_off = PyObject_IsTrue(f[HANDOFFS]) == 1; /* an exact int: cannot fail */
    item->id = id;
    return !isnan(item->start); /* Python's sort is no order with a NaN in it: left to it */
}

/* resolutions[intent][article] += 1; -1 with an exception set */
static int count_resolution(PyObject *resolutions, PyObject *intent, PyObject *article) {
    PyObject *articles = PyDict_GetItemWithError(resolutions, intent);
    if (articles == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        articles = PyDict_New();
        if (articles == NULL) {
            return -1;
        }
        int failed = PyDict_SetItem(resolutions, intent, articles);
        Py_DECREF(articles); /* the dict holds it */
        if (failed < 0) {
            return -1;
        }
    }
    PyObject *count = PyDict_GetItemWithError(articles, article);
    if (count == NULL && PyErr_Occurred()) {
        return -1;
    }
    long before = count == NULL ? 0 : PyLong_AsLong(count);
    if (before == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *after = PyLong_FromLong(before + 1);
    if (after == NULL) {
        return -1;
    }
    int failed = PyDict_SetItem(articles, article, after);
    Py_DECREF(after);
    return failed;
}

/* the counts of sorted starts in each window (now - width, now], as counts_in_windows */
static PyObject *started_in_windows(const Started *items, Py_ssize_t n, double now,
                                    const double *widths, Py_ssize_t windows) {
    Py_ssize_t end = at_or_before(items, n, now), counts[MAX_WIDTHS];
    for (Py_ssize_t w = 0; w < windows; w++) {
        counts[w] = end - at_or_before(items, n, now - widths[w]);
    }
    return count_list(counts, windows);
}

/* (resolution_rate, handoff_rate, unresolved_streak, lengths) of the recent sessions
 * items[lo:hi], in start order */
static PyObject *recent_figures(const Started *items, Py_ssize_t lo, Py_ssize_t hi) {
    Py_ssize_t with_outcome = 0, resolved = 0, handed_off = 0, streak = 0;
    PyObject *lengths = PyList_New(hi - lo);
    if (lengths == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = lo; k < hi; k++) {
        if (items[k].outcome >= 0) {
            with_outcome++;
            resolved += items[k].outcome;
        }
        handed_off += items[k].handed_off;
        double length = items[k].end - items[k].start;
        PyObject *value = PyFloat_FromDouble(length > 0.0 ? length : 0.0); /* max(0.0, x) */
        if (value == NULL) {
            Py_DECREF(lengths);
            return NULL;
        }
        PyList_SET_ITEM(lengths, k - lo, value);
    }
    for (Py_ssize_t k = hi - 1; k >= lo; k--) { /* the newest first, until one resolved */
        if (items[k].outcome == 1) {
            break;
        }
        streak += items[k].outcome == 0;
    }
    Py_ssize_t n = hi - lo;
    PyObject *resolution = with_outcome
                               ? PyFloat_FromDouble((double)resolved / (double)with_outcome)
                               : Py_NewRef(Py_None);
    PyObject *handoff =
        n ? PyFloat_FromDouble((double)handed_off / (double)n) : Py_NewRef(Py_None);
    if (resolution == NULL || handoff == NULL) {
        Py_XDECREF(resolution);
        Py_XDECREF(handoff);
        Py_DECREF(lengths);
        return NULL;
    }
    return Py_BuildValue("(NNnN)", resolution, handoff, streak, lengths);
}

PyObject *session_summary(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("session_summary", nargs, 4)) {
        return NULL;
    }
    PyObject *sessions = args[0], *now_obj = args[1], *widths_obj = args[2], *rate_obj = args[3];
    /* floats compare in Python as in C; an int, a subclass or a dict subclass may not */
    double widths[MAX_WIDTHS];
    Py_ssize_t windows = float_widths(widths_obj, widths);
    if (!PyDict_CheckExact(sessions) || !PyFloat_CheckExact(now_obj) ||
        !PyFloat_CheckExact(rate_obj) || windows < 0) {
        Py_RETURN_NONE;
    }
    double now = PyFloat_AS_DOUBLE(now_obj), rate_window = PyFloat_AS_DOUBLE(rate_obj);
    static PyObject *no_intent = NULL; /* "": a resolution's key without an intent */
    if (no_intent == NULL && (no_intent = PyUnicode_FromStringAndSize("", 0)) == NULL) {
        return NULL;
    }
    PyObject *resolutions = PyDict_New(); /* before any session is read */
    if (resolutions == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(sessions), i = 0;
    Started *items = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(Started));
    PyObject *result = NULL, *counts = NULL, *recent = NULL;
    if (items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* the sessions in the dict's order (the resolutions' order, as the Python pass) */
    Py_ssize_t pos = 0;
    PyObject *id, *session;
    while (i < n && PyDict_Next(sessions, &pos, &id, &session)) {
        if (!read_session(id, session, &items[i])) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        Py_INCREF(items[i].id);
        i++;
        PyObject **f = ((PyListObject *)session)->ob_item;
        if (f[RESOLVED] == Py_True && f[ARTICLE] != Py_None) { /* sessions.resolution */
            PyObject *intent = f[INTENT] == Py_None || PyUnicode_GET_LENGTH(f[INTENT]) == 0
                                   ? no_intent
                                   : f[INTENT];
            PyObject *article = f[ARTICLE];
            Py_INCREF(intent); /* counting allocates: held while it runs */
            Py_INCREF(article);
            int failed = count_resolution(resolutions, intent, article);
            Py_DECREF(intent);
            Py_DECREF(article);
            if (failed < 0) {
                goto done;
            }
        }
    }
    n = i; /* as many as were read */
    qsort(items, (size_t)n, sizeof(Started), by_start_then_id);
    counts = started_in_windows(items, n, now, widths, windows);
    if (counts == NULL) {
        goto done;
    }
    Py_ssize_t hi = at_or_before(items, n, now), lo = at_or_before(items, n, now - rate_window);
    recent = recent_figures(items, lo < hi ? lo : hi, hi); /* a slice [lo:hi] with lo > hi */
    if (recent == NULL) {                                  /* is empty */
        goto done;
    }
    result = Py_BuildValue("(OOOOOO)", counts, PyTuple_GET_ITEM(recent, 0),
                           PyTuple_GET_ITEM(recent, 1), PyTuple_GET_ITEM(recent, 2),
                           PyTuple_GET_ITEM(recent, 3), resolutions);
done:
    Py_XDECREF(counts);
    Py_XDECREF(recent);
    Py_DECREF(resolutions);
    for (Py_ssize_t k = 0; k < i; k++) {
        Py_DECREF(items[k].id);
    }
    PyMem_Free(items);
    return result;
}
