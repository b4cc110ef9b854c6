/* Sliding event-time windows over sorted timestamp lists: features/windows.py's counts. */
#include "native.h"

Py_ssize_t float_bisect_right(PyObject *const *items, Py_ssize_t n, double x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (Py_ssize_t)(((size_t)lo + (size_t)hi) / 2);
        if (!PyFloat_CheckExact(items[mid])) {
            return -1;
        }
        if (x < PyFloat_AS_DOUBLE(items[mid])) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

Py_ssize_t float_widths(PyObject *widths, double *out) {
    if (!PyTuple_CheckExact(widths) || PyTuple_GET_SIZE(widths) > MAX_WIDTHS) {
        return -1;
    }
    Py_ssize_t windows = PyTuple_GET_SIZE(widths);
    for (Py_ssize_t w = 0; w < windows; w++) {
        PyObject *width = PyTuple_GET_ITEM(widths, w);
        if (!PyFloat_CheckExact(width)) {
            return -1;
        }
        out[w] = PyFloat_AS_DOUBLE(width);
    }
    return windows;
}

PyObject *count_list(const Py_ssize_t *counts, Py_ssize_t n) {
    PyObject *result = PyList_New(n);
    if (result == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *count = PyLong_FromSsize_t(counts[k]);
        if (count == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, k, count);
    }
    return result;
}

PyObject *window_counts(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("window_counts", nargs, 3)) {
        return NULL;
    }
    PyObject *sorted_ts = args[0], *now_obj = args[1], *widths_obj = args[2];
    /* an int compares exactly in Python, a subclass as it likes: left to Python, as is a
     * list or tuple subclass */
    double widths[MAX_WIDTHS];
    Py_ssize_t windows = float_widths(widths_obj, widths);
    if (!PyList_CheckExact(sorted_ts) || !PyFloat_CheckExact(now_obj) || windows < 0) {
        Py_RETURN_NONE;
    }
    /* every count before the result's list is made: that allocation may run a collection,
     * and its finalizers may change the list */
    Py_ssize_t counts[MAX_WIDTHS];
    if (window_counts_of(sorted_ts, PyFloat_AS_DOUBLE(now_obj), widths, windows, counts) < 0) {
        Py_RETURN_NONE;
    }
    return count_list(counts, windows);
}

int window_counts_of(PyObject *sorted_ts, double now, const double *widths, Py_ssize_t windows,
                     Py_ssize_t *counts) {
    PyObject *const *items = ((PyListObject *)sorted_ts)->ob_item;
    Py_ssize_t n = PyList_GET_SIZE(sorted_ts);
    Py_ssize_t end = float_bisect_right(items, n, now);
    if (end < 0) {
        return -1;
    }
    for (Py_ssize_t w = 0; w < windows; w++) {
        Py_ssize_t start = float_bisect_right(items, n, now - widths[w]);
        if (start < 0) {
            return -1;
        }
        counts[w] = end - start;
    }
    return 0;
}
