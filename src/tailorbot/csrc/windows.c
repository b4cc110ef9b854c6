/* Sliding event-time windows over sorted timestamp lists: features/windows.py's counts. */
#include "native.h"

/* bisect.bisect_right(items, x) probing the same items in the same order; -1 when a probed
 * item is not a float (the Python path compares those) */
static Py_ssize_t float_bisect_right(PyObject *const *items, Py_ssize_t n, double x) {
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

PyObject *window_counts(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *sorted_ts, *now_obj, *widths;
    if (!PyArg_ParseTuple(args, "O!OO!", &PyList_Type, &sorted_ts, &now_obj, &PyTuple_Type,
                          &widths)) {
        return NULL;
    }
    if (!PyFloat_CheckExact(now_obj)) { /* an int compares exactly in Python: left to it */
        Py_RETURN_NONE;
    }
    double now = PyFloat_AS_DOUBLE(now_obj);
    PyObject *const *items = ((PyListObject *)sorted_ts)->ob_item;
    Py_ssize_t n = PyList_GET_SIZE(sorted_ts), windows = PyTuple_GET_SIZE(widths);
    Py_ssize_t end = float_bisect_right(items, n, now);
    if (end < 0) {
        Py_RETURN_NONE;
    }
    PyObject *counts = PyList_New(windows);
    if (counts == NULL) {
        return NULL;
    }
    for (Py_ssize_t w = 0; w < windows; w++) {
        PyObject *width = PyTuple_GET_ITEM(widths, w);
        Py_ssize_t start = PyFloat_CheckExact(width)
                               ? float_bisect_right(items, n, now - PyFloat_AS_DOUBLE(width))
                               : -1;
        PyObject *count = start < 0 ? NULL : PyLong_FromSsize_t(end - start);
        if (count == NULL) {
            Py_DECREF(counts);
            if (start < 0) {
                Py_RETURN_NONE;
            }
            return NULL;
        }
        PyList_SET_ITEM(counts, w, count);
    }
    return counts;
}
