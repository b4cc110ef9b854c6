/* The offered arms of a linear bandit in one call: each arm's row (the context's known
 * features in the model's order, the arm's own features over them, the bias last) and its
 * moments. ContextualBandit._posterior_moments is the Python path it answers for. */
#include "native.h"

/* `value` as float(value) reads it, into *out: 1 when it is a float or an int (a bool
 * included), -1 with an error set (an int too large for a float), 0 for anything else,
 * which the caller leaves to the Python path (its float() may run Python code) */
static int plain_number(PyObject *value, double *out) {
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 1;
    }
    if (PyLong_CheckExact(value) || PyBool_Check(value)) {
        *out = PyLong_AsDouble(value);
        return *out == -1.0 && PyErr_Occurred() ? -1 : 1;
    }
    return 0;
}

/* row[index of name] = value (put_features' step): 1, 0 (for the Python path), -1 */
static int put_one(PyObject *found, PyObject *name, PyObject *value, Py_ssize_t features,
                   PyObject *arm, double *row) {
    Py_ssize_t i = PyLong_AsSsize_t(found);
    if (i == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (i < 0 || i >= features) {
        PyErr_Format(PyExc_ValueError, "feature index %zd is out of range", i);
        return -1;
    }
    double x;
    int plain = plain_number(value, &x);
    if (plain <= 0) {
        return plain;
    }
    if (!isfinite(x)) {
        PyObject *shown = PyFloat_FromDouble(x);
        if (shown == NULL) {
            return -1;
        }
        if (arm == NULL) {
            PyErr_Format(PyExc_ValueError, "context feature %R is not a finite number: %R", name,
                         shown);
        } else {
            PyErr_Format(PyExc_ValueError, "action feature %R of arm %R is %R", name, arm,
                         shown);
        }
        Py_DECREF(shown);
        return -1;
    }
    row[i] = x;
    return 1;
}

/* Writes the features of `pairs` (a dict of str -> number) at their `index` positions of
 * `row`. 1: done; 0: something the Python path must handle (a key that is not a str, a
 * value that is not a plain number); -1: an error set (a non-finite value, named as the
 * Python path names it: `arm` NULL for the context, else the arm's). */
static int put_features(PyObject *pairs, PyObject *index, Py_ssize_t features, PyObject *arm,
                        double *row) {
    Py_ssize_t pos = 0, size = PyDict_GET_SIZE(pairs);
    PyObject *name, *value;
    while (PyDict_Next(pairs, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(name)) {
            return 0;
        }
        /* held: a lookup in `index` may run Python code (a key of a str subclass) */
        Py_INCREF(name);
        Py_INCREF(value);
        int done = 1;
        PyObject *found = PyDict_GetItemWithError(index, name);
        if (found == NULL) {
            done = PyErr_Occurred() ? -1 : 1; /* or a feature the model does not know */
        } else if (PyDict_GET_SIZE(pairs) != size) {
            done = 0; /* changed under the walk: the Python path says so */
        } else {
            done = put_one(found, name, value, features, arm, row);
        }
        Py_DECREF(name);
        Py_DECREF(value);
        if (done <= 0) {
            return done;
        }
    }
    return 1;
}

/* The rows of the offered `arms` into `rows` (one of d values an arm, then one more: the
 * context's own, scratch): the context's features at their `index` positions, the bias 1.0
 * last, each arm's own `arm_features[arm]` (a dict, or None for none) over them.
 * 1: done; 0: something the Python path must handle; -1: an error set. */
int offered_rows(PyObject *context, PyObject *index, PyObject *arms, PyObject *arm_features,
                 Py_ssize_t n, Py_ssize_t d, double *rows) {
    double *base = rows + n * d;
    memset(base, 0, (size_t)d * sizeof(double));
    base[d - 1] = 1.0;
    int done = put_features(context, index, d - 1, NULL, base);
    for (Py_ssize_t k = 0; done > 0 && k < n; k++) {
        double *row = rows + k * d;
        memcpy(row, base, (size_t)d * sizeof(double));
        if (arm_features == Py_None) {
            continue;
        }
        if (k >= PyList_GET_SIZE(arms)) { /* changed by code a lookup ran */
            return 0;
        }
        PyObject *arm = PyList_GET_ITEM(arms, k);
        Py_INCREF(arm); /* both held while Python code may run (see put_features) */
        PyObject *own = PyDict_GetItemWithError(arm_features, arm);
        Py_XINCREF(own);
        if (own == NULL) {
            done = PyErr_Occurred() ? -1 : 1; /* no features of its own */
        } else if (!PyDict_CheckExact(own)) {
            done = 0;
        } else {
            done = put_features(own, index, d - 1, arm, row);
        }
        Py_XDECREF(own);
        Py_DECREF(arm);
    }
    return done;
}

/* linear_moment of `row` with an arm's (a_inv, theta) `pair`: 0, or -1 with an error set */
int pair_moment(PyObject *pair, const double *row, Py_ssize_t d, double *mean, double *width) {
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "solved must hold (a_inv, theta) pairs");
        return -1;
    }
    Py_buffer a_inv, theta;
    if (get_array(PyTuple_GET_ITEM(pair, 0), &a_inv, 0, 'd', 2, "a_inv") < 0) {
        return -1;
    }
    if (get_array(PyTuple_GET_ITEM(pair, 1), &theta, 0, 'd', 1, "theta") < 0) {
        PyBuffer_Release(&a_inv);
        return -1;
    }
    int fits = theta.shape[0] == d && a_inv.shape[0] == d && a_inv.shape[1] == d;
    if (fits) {
        linear_moment(row, a_inv.buf, theta.buf, d, mean, width);
    }
    PyBuffer_Release(&a_inv);
    PyBuffer_Release(&theta);
    if (!fits) {
        PyErr_Format(PyExc_ValueError, "a_inv and theta must have %zd values a side", d);
        return -1;
    }
    return 0;
}

/* arm_moments(context, index, arms, arm_features, solved): see module.c */
PyObject *arm_moments(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "arm_moments";
    if (!arity(name, nargs, 5) || !arg_typed(name, 1, args[0], &PyDict_Type) ||
        !arg_typed(name, 2, args[1], &PyDict_Type) || !arg_typed(name, 3, args[2], &PyList_Type) ||
        !arg_typed(name, 5, args[4], &PyList_Type)) {
        return NULL;
    }
    PyObject *context = args[0], *index = args[1], *arms = args[2], *arm_features = args[3];
    PyObject *solved = args[4];
    if (arm_features != Py_None && !PyDict_CheckExact(arm_features)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(arms);
    Py_ssize_t d = PyDict_GET_SIZE(index) + 1; /* the features, then the bias */
    if (PyList_GET_SIZE(solved) != n) {
        PyErr_SetString(PyExc_ValueError, "one (a_inv, theta) pair per arm");
        return NULL;
    }
    /* the rows first, all of them, as the Python path builds them before any moment */
    double *rows = PyMem_Malloc((size_t)(n + 1) * (size_t)d * sizeof(double));
    if (rows == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL, *means = NULL, *widths = NULL;
    int done = offered_rows(context, index, arms, arm_features, n, d, rows);
    if (done > 0 && PyList_GET_SIZE(solved) != n) {
        done = 0; /* changed by code a lookup ran */
    }
    if (done <= 0) {
        PyMem_Free(rows);
        if (done < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    means = PyList_New(n);
    widths = PyList_New(n);
    if (means == NULL || widths == NULL) {
        goto fail;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        double mean = 0.0, width = 0.0;
        if (pair_moment(PyList_GET_ITEM(solved, k), rows + k * d, d, &mean, &width) < 0) {
            goto fail;
        }
        PyObject *m = PyFloat_FromDouble(mean), *w = PyFloat_FromDouble(width);
        if (m == NULL || w == NULL) {
            Py_XDECREF(m);
            Py_XDECREF(w);
            goto fail;
        }
        PyList_SET_ITEM(means, k, m);
        PyList_SET_ITEM(widths, k, w);
    }
    result = PyTuple_Pack(2, means, widths);
fail:
    Py_XDECREF(means);
    Py_XDECREF(widths);
    PyMem_Free(rows);
    return result;
}
