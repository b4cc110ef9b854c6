/* The parts of the feature view that its compiled call (view.c) makes besides the compiled
 * passes over the state: each as the Python reference (features/view.py) makes it, or NULL
 * with no error set where that reference must read a value itself. */
#include "view.h"

const char *const VIEW_KEYS[N_KEYS] = {
    "n", "n_cm", "first", "newest", "cm_ts", "bot", "csat_n", "csat_sum", "ewma", "alpha",
    "ratings", "sessions", "views", "feedback", "resolved", "outcomes", "outcome_totals",
    "channels", "late", "cut_cap", "v", "a", "time", "session_id", "text", "name", "tier",
    "language", "region", "products", "attributes", "user_id", "event_time", "updated_at",
    "lower",
};
PyObject *view_keys[N_KEYS];

PyObject *ewma_of(PyObject *start, double alpha, PyObject *ratings) {
    PyObject *kept = start; /* the value while no arithmetic made a float of it */
    double value = 0.0;
    int folded = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ratings); i++) {
        PyObject *rating = PyList_GET_ITEM(ratings, i);
        if (!(PyList_CheckExact(rating) || PyTuple_CheckExact(rating)) ||
            PySequence_Fast_GET_SIZE(rating) < 2) {
            return NULL;
        }
        PyObject *score = PySequence_Fast_ITEMS(rating)[1];
        double x, v;
        if (!exact_double(score, &x)) {
            return NULL;
        }
        if (!folded && kept == Py_None) {
            kept = score; /* Python keeps the score itself, an int as an int */
            continue;
        }
        if (!folded && !exact_double(kept, &v)) {
            return NULL;
        }
        /* alpha * score + (1.0 - alpha) * value, in Python's order */
        value = alpha * x + (1.0 - alpha) * (folded ? value : v);
        folded = 1;
    }
    return folded ? PyFloat_FromDouble(value) : Py_NewRef(kept);
}

PyObject *unanswered_bot_message(PyObject *bot, PyObject *cm_ts) {
    if (bot == NULL || bot == Py_None) {
        Py_RETURN_NONE;
    }
    if (!PyList_CheckExact(bot) || PyList_GET_SIZE(bot) < 3) {
        return NULL;
    }
    PyObject **f = ((PyListObject *)bot)->ob_item;
    Py_ssize_t n = PyList_GET_SIZE(cm_ts);
    if (n > 0) {
        PyObject *last = PyList_GET_ITEM(cm_ts, n - 1);
        if (!PyFloat_CheckExact(last) || !PyFloat_CheckExact(f[0])) {
            return NULL;
        }
        if (PyFloat_AS_DOUBLE(last) > PyFloat_AS_DOUBLE(f[0])) {
            Py_RETURN_NONE;
        }
    }
    PyObject *time = f[0], *session = f[1], *text = f[2];
    Py_INCREF(time); /* held: the dict's allocations may run a collection */
    Py_INCREF(session);
    Py_INCREF(text);
    PyObject *out = PyDict_New();
    if (out != NULL && (PyDict_SetItem(out, view_keys[K_TIME], time) < 0 ||
                        PyDict_SetItem(out, view_keys[K_SESSION_ID], session) < 0 ||
                        PyDict_SetItem(out, view_keys[K_TEXT], text) < 0)) {
        Py_CLEAR(out);
    }
    Py_DECREF(time);
    Py_DECREF(session);
    Py_DECREF(text);
    if (out == NULL && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    return out;
}

PyObject *preferred_channel(PyObject *channels) {
    PyObject *best = Py_None, *name, *entry;
    double best_count = 0.0, best_newest = 0.0;
    Py_ssize_t pos = 0;
    int single = PyDict_GET_SIZE(channels) < 2; /* none, or the one channel: no comparison */
    while (PyDict_Next(channels, &pos, &name, &entry)) {
        if (single) {
            best = name;
            break;
        }
        double count, newest;
        if (!PyUnicode_CheckExact(name) || !PyList_CheckExact(entry) ||
            PyList_GET_SIZE(entry) < 2 || !exact_double(PyList_GET_ITEM(entry, 0), &count) ||
            !exact_double(PyList_GET_ITEM(entry, 1), &newest)) {
            return NULL;
        }
        /* min by (-count, -newest, name) */
        if (best == Py_None || count > best_count ||
            (count == best_count &&
             (newest > best_newest ||
              (newest == best_newest && PyUnicode_Compare(name, best) < 0)))) {
            best = name;
            best_count = count;
            best_newest = newest;
        }
    }
    return Py_NewRef(best);
}

PyObject *mean_of(PyObject *values) {
    static PyObject *fsum = NULL;
    Py_ssize_t n = PyList_GET_SIZE(values);
    if (n == 0) {
        Py_RETURN_NONE;
    }
    if (fsum == NULL) {
        PyObject *math = PyImport_ImportModule("math");
        fsum = math == NULL ? NULL : PyObject_GetAttrString(math, "fsum");
        Py_XDECREF(math);
        if (fsum == NULL) {
            return NULL;
        }
    }
    PyObject *total = PyObject_CallOneArg(fsum, values);
    if (total == NULL) {
        return NULL;
    }
    double sum = PyFloat_AsDouble(total);
    Py_DECREF(total);
    return sum == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(sum / (double)n);
}

PyObject *segments_of(PyObject *rules, PyObject *csat, PyObject *streak, PyObject *tier,
                             PyObject *sessions_7d, PyObject *first_seen, double as_of) {
    PyObject **r = ((PyTupleObject *)rules)->ob_item;
    PyObject **names = ((PyTupleObject *)r[R_SEGMENTS])->ob_item;
    double csat_value = 0.0, first = 0.0;
    long long recent = PyLong_AsLongLong(sessions_7d), unresolved = PyLong_AsLongLong(streak);
    long long frequent = PyLong_AsLongLong(r[R_FREQUENT]);
    long long streak_at = PyLong_AsLongLong(r[R_STREAK]);
    if (PyErr_Occurred() || (csat != Py_None && !exact_double(csat, &csat_value)) ||
        (first_seen != Py_None && !exact_double(first_seen, &first)) ||
        (tier != Py_None && !PyUnicode_CheckExact(tier))) {
        PyErr_Clear(); /* a value Python compares: its path reads it */
        return NULL;
    }
    int vip = 0;
    if (tier != Py_None) {
        PyObject *lowered = PyObject_CallMethodNoArgs(tier, view_keys[K_LOWER]);
        vip = lowered == NULL ? -1 : PySet_Contains(r[R_VIP_TIERS], lowered);
        Py_XDECREF(lowered);
        if (vip < 0) {
            return NULL;
        }
    }
    int match[N_SEGMENTS] = {
        (csat != Py_None && csat_value <= PyFloat_AS_DOUBLE(r[R_CSAT])) || unresolved >= streak_at,
        vip,
        recent >= frequent,
        first_seen == Py_None || as_of - first < PyFloat_AS_DOUBLE(r[R_NEW_FOR]),
        0,
    };
    PyObject *out = PyList_New(0);
    int found = 0;
    for (int k = 0; out != NULL && k < N_SEGMENTS - 1; k++) {
        if (match[k] && PyList_Append(out, names[k]) < 0) {
            Py_CLEAR(out);
        }
        found |= match[k];
    }
    if (out != NULL && !found && PyList_Append(out, names[N_SEGMENTS - 1]) < 0) {
        Py_CLEAR(out); /* none matched: "regular" */
    }
    return out;
}

PyObject *profile_value(PyObject *profile, int key, PyObject *fallback) {
    PyObject *found = profile == NULL ? NULL : PyDict_GetItemWithError(profile, view_keys[key]);
    return found != NULL || PyErr_Occurred() ? Py_XNewRef(found) : Py_NewRef(fallback);
}

int profile_copies(PyObject *profile, PyObject **out) {
    PyObject *products =
        profile == NULL ? NULL : PyDict_GetItemWithError(profile, view_keys[K_PRODUCTS]);
    PyObject *attributes =
        profile == NULL ? NULL : PyDict_GetItemWithError(profile, view_keys[K_ATTRIBUTES]);
    if (PyErr_Occurred() || (products != NULL && !PyList_CheckExact(products)) ||
        (attributes != NULL && !PyDict_CheckExact(attributes))) {
        return -1;
    }
    Py_XINCREF(products); /* held: the copies allocate, which may run a collection */
    Py_XINCREF(attributes);
    out[0] = products == NULL ? PyList_New(0)
                              : PyList_GetSlice(products, 0, PyList_GET_SIZE(products));
    out[1] = out[0] == NULL ? NULL : attributes == NULL ? PyDict_New() : PyDict_Copy(attributes);
    Py_XDECREF(products);
    Py_XDECREF(attributes);
    if (out[1] == NULL) {
        Py_CLEAR(out[0]);
        return -1;
    }
    return 0;
}
