/* Small rankings of the decision: the intent's top classes, a bandit arm's moments. */
#include "native.h"

enum { COLUMN_BLOCK = 64 }; /* the columns of x A made at a time, on the stack */

/* v[0:width] = x A[:, start:start + width] for a d x d matrix `a` by rows: each v[j] adds
 * x[i] * a[i][j] for i ascending from 0.0, the order of a column's sum, with a row's
 * products taken across the columns at once (2 or 4 doubles a step) where a column at a
 * time strided through the matrix */
WIDE_VECTORS static void columns_of(const double *restrict x, const double *restrict a,
                                    Py_ssize_t d, Py_ssize_t start, Py_ssize_t width,
                                    double *restrict v) {
    for (Py_ssize_t j = 0; j < width; j++) {
        v[j] = 0.0;
    }
    for (Py_ssize_t i = 0; i < d; i++) {
        double xi = x[i];
        const double *row = a + i * d + start;
        for (Py_ssize_t j = 0; j < width; j++) {
            v[j] += xi * row[j];
        }
    }
}

/* a linear bandit arm's predicted reward `x . theta` and width `sqrt(x A^-1 x)` (negative
 * rounding clipped to 0) for one context row `x` of `d` values */
void linear_moment(const double *x, const double *a, const double *t, Py_ssize_t d,
                   double *mean, double *width) {
    double sum = 0.0, quadratic = 0.0;
    for (Py_ssize_t j = 0; j < d; j++) {
        sum += x[j] * t[j];
    }
    /* (x A) x, as numpy evaluates x @ a_inv @ x: each column's sum, then the columns' in
     * order */
    double v[COLUMN_BLOCK];
    for (Py_ssize_t start = 0; start < d; start += COLUMN_BLOCK) {
        Py_ssize_t columns = d - start < COLUMN_BLOCK ? d - start : COLUMN_BLOCK;
        columns_of(x, a, d, start, columns, v);
        for (Py_ssize_t j = 0; j < columns; j++) {
            quadratic += v[j] * x[start + j];
        }
    }
    *mean = sum;
    *width = sqrt(quadratic > 0.0 ? quadratic : 0.0);
}

/* linear_moment of a row given as a list of floats (ints read as float() reads them) */
PyObject *posterior_moment(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    Py_buffer a_inv, theta;
    if (!arity("posterior_moment", nargs, 3) ||
        !arg_typed("posterior_moment", 1, args[0], &PyList_Type)) {
        return NULL;
    }
    PyObject *row = args[0], *a_obj = args[1], *theta_obj = args[2];
    if (get_array(a_obj, &a_inv, 0, 'd', 2, "a_inv") < 0) {
        return NULL;
    }
    if (get_array(theta_obj, &theta, 0, 'd', 1, "theta") < 0) {
        PyBuffer_Release(&a_inv);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t d = theta.shape[0];
    if (PyList_GET_SIZE(row) != d || a_inv.shape[0] != d || a_inv.shape[1] != d) {
        PyErr_Format(PyExc_ValueError, "x, a_inv and theta must all have %zd values a side", d);
        goto done;
    }
    double local[64];
    double *x = d <= 64 ? local : PyMem_Malloc((size_t)d * sizeof(double));
    if (x == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < d; i++) {
        PyObject *item = PyList_GET_ITEM(row, i);
        if (PyFloat_Check(item)) { /* no __float__: no Python code may change the list */
            x[i] = PyFloat_AS_DOUBLE(item);
        } else if (PyLong_Check(item)) {
            x[i] = PyLong_AsDouble(item);
            if (x[i] == -1.0 && PyErr_Occurred()) {
                goto free_x;
            }
        } else {
            PyErr_SetString(PyExc_TypeError, "x must be a list of float");
            goto free_x;
        }
    }
    double mean, width;
    linear_moment(x, a_inv.buf, theta.buf, d, &mean, &width);
    result = Py_BuildValue("(dd)", mean, width);
free_x:
    if (x != local) {
        PyMem_Free(x);
    }
done:
    PyBuffer_Release(&a_inv);
    PyBuffer_Release(&theta);
    return result;
}

/* the k most probable classes of softmax(scores / temperature), best first (ties: the
 * lower index first), as (index, probability) pairs */
/* (index, value) as a new tuple (NULL with an exception set), packed directly:
 * Py_BuildValue parses its format each time */
PyObject *index_value_pair(Py_ssize_t index, double value) {
    PyObject *first = PyLong_FromSsize_t(index);
    PyObject *second = first == NULL ? NULL : PyFloat_FromDouble(value);
    PyObject *pair = second == NULL ? NULL : PyTuple_Pack(2, first, second);
    Py_XDECREF(first);
    Py_XDECREF(second);
    return pair;
}

PyObject *softmax_top(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    double temperature;
    Py_ssize_t k;
    Py_buffer view;
    if (!arity("softmax_top", nargs, 3) || !arg_double(args[1], &temperature) ||
        !arg_ssize(args[2], &k)) {
        return NULL;
    }
    PyObject *scores_obj = args[0];
    if (!(temperature > 0.0) || !isfinite(temperature)) {
        PyErr_SetString(PyExc_ValueError, "temperature must be a positive finite number");
        return NULL;
    }
    if (get_array(scores_obj, &view, 0, 'd', 1, "scores") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = view.shape[0];
    const double *scores = view.buf;
    if (n < 1 || k < 1) {
        PyErr_SetString(PyExc_ValueError, "softmax_top needs at least one score and k >= 1");
        goto done;
    }
    if (k > n) {
        k = n;
    }
    double top = -INFINITY;
    for (Py_ssize_t i = 0; i < n; i++) {
        double z = scores[i] / temperature;
        if (!isfinite(z)) {
            PyErr_SetString(PyExc_ValueError, "scores must be finite");
            goto done;
        }
        if (z > top) {
            top = z;
        }
    }
    double total = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        total += exp(scores[i] / temperature - top);
    }
    /* the k best by insertion into a short sorted list: k is small (the ranking's 5) */
    Py_ssize_t best[16];
    double value[16];
    if (k > 16) {
        k = 16;
    }
    Py_ssize_t held = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double z = scores[i] / temperature;
        if (held == k && !(z > value[held - 1])) {
            continue; /* not better than the k-th (an equal one has a lower index) */
        }
        Py_ssize_t at = held < k ? held++ : k - 1;
        while (at > 0 && z > value[at - 1]) {
            value[at] = value[at - 1];
            best[at] = best[at - 1];
            at--;
        }
        value[at] = z;
        best[at] = i;
    }
    result = PyList_New(held);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t j = 0; j < held; j++) {
        PyObject *pair = index_value_pair(best[j], exp(value[j] - top) / total);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, j, pair);
    }
done:
    PyBuffer_Release(&view);
    return result;
}
