/* LinUCB's choice among the offered arms in one call: the checks, the rows and moments,
 * the scores, the greedy distribution mixed with the epsilon floor, and the draw.
 * LinUCB.probabilities and ContextualBandit.select are the Python path it answers for. */
#include "native.h"

enum { STACK_ARMS = 16 };

/* Whether `arms` are what check_arms lets through, each an exact str (a subclass's
 * comparisons may run Python code): non-empty, without '/', no two equal. 1: they are; 0:
 * the Python path decides; -1: an error set. */
static int plain_arms(PyObject *arms, Py_ssize_t n) {
    if (n < 1) {
        return 0;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *arm = PyList_GET_ITEM(arms, k);
        if (!PyUnicode_CheckExact(arm) || PyUnicode_GET_LENGTH(arm) == 0) {
            return 0;
        }
        Py_ssize_t slash = PyUnicode_FindChar(arm, '/', 0, PyUnicode_GET_LENGTH(arm), 1);
        if (slash != -1) {
            return slash == -2 ? -1 : 0; /* -2: an error set; found: check_arms refuses it */
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            if (PyUnicode_Compare(arm, PyList_GET_ITEM(arms, j)) == 0) {
                return 0;
            }
        }
    }
    return 1;
}

/* a float or an int as the Python path's arithmetic reads it: 1, else 0 (anything else,
 * whose arithmetic may differ, is the Python path's) */
static int plain_parameter(PyObject *value, double *out) {
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        *out = PyLong_AsDouble(value);
        if (*out == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return fabs(*out) <= 9007199254740992.0; /* 2^53: int / int, as float / float */
    }
    return 0;
}

/* The choice from the moments as (arm, propensity, scores), or None for the Python path
 * (a NaN score, or no arm within the tolerance of an infinite best: its max() and its
 * division decide those). The draw is called last, once nothing is left to refuse. */
static PyObject *chosen(PyObject *arms, Py_ssize_t n, const double *means, const double *widths,
                        const double *parameters, PyObject *draw, double *ucb) {
    double alpha = parameters[0], epsilon = parameters[1], tolerance = parameters[2];
    double top = -INFINITY;
    for (Py_ssize_t k = 0; k < n; k++) {
        ucb[k] = means[k] + alpha * widths[k];
        if (isnan(ucb[k])) {
            Py_RETURN_NONE;
        }
        top = ucb[k] > top ? ucb[k] : top;
    }
    double floor = top - tolerance * (1.0 + fabs(top));
    Py_ssize_t n_best = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        n_best += ucb[k] >= floor;
    }
    if (n_best == 0) {
        Py_RETURN_NONE;
    }
    /* _mix_epsilon of [1 / n_best, 0.0] over the n offered arms */
    double share = epsilon / (double)n, keep = 1.0 - epsilon;
    double best = share + keep * (1.0 / (double)n_best), other = share + keep * 0.0;
    PyObject *scores = PyDict_New();
    if (scores == NULL) {
        return NULL;
    }
    double total = 0.0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *score = PyFloat_FromDouble(ucb[k]);
        if (score == NULL || PyDict_SetItem(scores, PyList_GET_ITEM(arms, k), score) < 0) {
            Py_XDECREF(score);
            Py_DECREF(scores);
            return NULL;
        }
        Py_DECREF(score);
        total += ucb[k] >= floor ? best : other;
    }
    /* _draw: the arm whose share of the running sum holds u * total (the last on rounding) */
    PyObject *u_obj = PyObject_CallNoArgs(draw);
    double u = u_obj == NULL ? -1.0 : PyFloat_AsDouble(u_obj);
    Py_XDECREF(u_obj);
    if (u == -1.0 && PyErr_Occurred()) {
        Py_DECREF(scores);
        return NULL;
    }
    double threshold = u * total, running = 0.0;
    Py_ssize_t pick = n - 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        running += ucb[k] >= floor ? best : other;
        if (threshold < running) {
            pick = k;
            break;
        }
    }
    /* the arm read from the scores (ours alone), not from `arms`, which the draw's code
     * could have changed */
    Py_ssize_t pos = 0;
    PyObject *arm = NULL, *value = NULL;
    for (Py_ssize_t k = 0; k <= pick; k++) {
        PyDict_Next(scores, &pos, &arm, &value);
    }
    return Py_BuildValue("(OdN)", arm, ucb[pick] >= floor ? best : other, scores);
}

/* ucb_select(context, index, arms, arm_features, posterior, alpha, epsilon, tolerance,
 * draw): see module.c */
PyObject *ucb_select(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "ucb_select";
    double parameters[3]; /* alpha, epsilon, the tie tolerance */
    if (!arity(name, nargs, 9) || !arg_typed(name, 1, args[0], &PyDict_Type) ||
        !arg_typed(name, 2, args[1], &PyDict_Type) || !arg_typed(name, 3, args[2], &PyList_Type) ||
        !arg_typed(name, 5, args[4], &PyDict_Type) || !arg_double(args[7], &parameters[2])) {
        return NULL;
    }
    PyObject *context = args[0], *index = args[1], *arms = args[2], *arm_features = args[3];
    PyObject *posterior = args[4], *alpha = args[5], *epsilon = args[6], *draw = args[8];
    Py_ssize_t n = PyList_GET_SIZE(arms);
    int plain = plain_arms(arms, n);
    if (plain < 0) {
        return NULL;
    }
    if (!plain || (arm_features != Py_None && !PyDict_CheckExact(arm_features)) ||
        !plain_parameter(alpha, &parameters[0]) || !plain_parameter(epsilon, &parameters[1])) {
        Py_RETURN_NONE;
    }
    Py_ssize_t d = PyDict_GET_SIZE(index) + 1; /* the features, then the bias */
    PyObject *held[STACK_ARMS];
    PyObject **pairs = n <= STACK_ARMS ? held : PyMem_Calloc((size_t)n, sizeof(PyObject *));
    double *numbers = PyMem_Malloc((size_t)(n + 1) * (size_t)(d + 3) * sizeof(double));
    PyObject *result = NULL;
    Py_ssize_t found = 0;
    if (pairs == NULL || numbers == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* each arm's solved (a_inv, theta), kept while the rows are read; one not solved yet:
     * the Python path solves it (and keeps it for the next choice) */
    for (; found < n; found++) {
        PyObject *pair = PyDict_GetItemWithError(posterior, PyList_GET_ITEM(arms, found));
        if (pair == NULL) {
            if (!PyErr_Occurred()) {
                result = Py_None;
                Py_INCREF(result);
            }
            goto done;
        }
        Py_INCREF(pair);
        pairs[found] = pair;
    }
    double *rows = numbers, *means = rows + (n + 1) * d, *widths = means + n, *ucb = widths + n;
    int read = offered_rows(context, index, arms, arm_features, n, d, rows);
    if (read > 0 && PyList_GET_SIZE(arms) != n) {
        read = 0; /* changed by code a lookup ran */
    }
    if (read <= 0) {
        if (read == 0) {
            result = Py_None;
            Py_INCREF(result);
        }
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (pair_moment(pairs[k], rows + k * d, d, &means[k], &widths[k]) < 0) {
            goto done;
        }
    }
    result = chosen(arms, n, means, widths, parameters, draw, ucb);
done:
    for (Py_ssize_t k = 0; k < found; k++) {
        Py_DECREF(pairs[k]);
    }
    if (pairs != held) {
        PyMem_Free(pairs);
    }
    PyMem_Free(numbers);
    return result;
}
