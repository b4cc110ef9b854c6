/* Static embeddings: the mean of float16 rows, and a linear model's part from it. */
#include "native.h"

/* the float32 mean of the float16 rows `table[ids]` into `out` (`width` values), summed in
 * the order of `ids` from the first row on, as numpy sums axis 0 (a lone -0.0 stays);
 * zeros for no ids. -1 with an exception set for a bad id. */
WIDE_VECTORS static int mean_of_rows(const Py_buffer *table, PyObject *ids, float *out) {
    Py_ssize_t rows = table->shape[0], width = table->shape[1];
    Py_ssize_t count = PyList_GET_SIZE(ids);
    const uint16_t *halves = table->buf;
    if (count == 0) {
        memset(out, 0, (size_t)width * sizeof(float));
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(ids, i);
        if (!PyLong_Check(item)) { /* no __index__: no Python code may change the list */
            PyErr_SetString(PyExc_TypeError, "ids must be a list of int");
            return -1;
        }
        Py_ssize_t token = PyLong_AsSsize_t(item);
        if (token == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (token < 0 || token >= rows) {
            PyErr_Format(PyExc_IndexError, "token %zd out of range", token);
            return -1;
        }
        const uint16_t *row = halves + token * width;
        if (i == 0) {
            for (Py_ssize_t k = 0; k < width; k++) {
                out[k] = half_to_float(row[k]);
            }
        } else {
            for (Py_ssize_t k = 0; k < width; k++) {
                out[k] += half_to_float(row[k]);
            }
        }
    }
    float n = (float)count;
    for (Py_ssize_t k = 0; k < width; k++) {
        out[k] /= n;
    }
    return 0;
}

PyObject *mean_rows(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    Py_buffer view, out;
    if (!arity("mean_rows", nargs, 3) || !arg_typed("mean_rows", 2, args[1], &PyList_Type)) {
        return NULL;
    }
    PyObject *table = args[0], *ids = args[1], *out_obj = args[2];
    if (get_array(table, &view, 0, 'e', 2, "table") < 0) {
        return NULL;
    }
    if (get_array(out_obj, &out, 1, 'f', 1, "out") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    PyObject *result = NULL;
    if (out.shape[0] != view.shape[1]) {
        PyErr_Format(PyExc_ValueError, "out must hold %zd float32 values", view.shape[1]);
    } else if (mean_of_rows(&view, ids, out.buf) == 0) {
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&out);
    return result;
}

/* one token's projection: its float16 row of `table` times `coef` (one row per dimension,
 * `classes` columns), summed in doubles in row order, zero values skipped, into `out`
 * (`factors`: scratch of one row's width) */
static void token_projection(const Py_buffer *table, const Py_buffer *coef, Py_ssize_t token,
                             float *factors, double *out) {
    Py_ssize_t width = table->shape[1], classes = coef->shape[1];
    const uint16_t *row = (const uint16_t *)table->buf + token * width;
    for (Py_ssize_t k = 0; k < width; k++) {
        factors[k] = half_to_float(row[k]);
    }
    memset(out, 0, (size_t)classes * sizeof(double));
    add_rows(out, coef->buf, factors, width, classes);
}

/* the tokens' product with `coef` into `acc` (`classes` doubles, zeroed here): the sum of
 * each token's projection, made the first time the token is met and kept in `projections`
 * (token -> bytes of `classes` doubles). The ids were checked by mean_of_rows. A kept
 * projection is the one made: the same doubles whatever the dict held before. The dict
 * holds a projection per table row at most (some 24 MB at 32,000 x 84), each made once:
 * a message of thousands of tokens never met costs a pass over `coef` for each, once. */
static int projection_sum(const Py_buffer *table, const Py_buffer *coef, PyObject *ids,
                          PyObject *projections, float *factors, double *acc) {
    Py_ssize_t classes = coef->shape[1], size = classes * (Py_ssize_t)sizeof(double);
    memset(acc, 0, (size_t)size);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ids); i++) {
        PyObject *token = PyList_GET_ITEM(ids, i);
        PyObject *kept = PyDict_GetItemWithError(projections, token); /* borrowed */
        if (kept != NULL) {
            if (!PyBytes_CheckExact(kept) || PyBytes_GET_SIZE(kept) != size) {
                PyErr_Format(PyExc_ValueError,
                             "projections must map a token to bytes of %zd doubles", classes);
                return -1;
            }
            add_values(acc, (const double *)PyBytes_AS_STRING(kept), classes);
            continue;
        }
        if (PyErr_Occurred()) {
            return -1;
        }
        PyObject *projection = PyBytes_FromStringAndSize(NULL, size);
        if (projection == NULL) {
            return -1;
        }
        double *values = (double *)PyBytes_AS_STRING(projection);
        token_projection(table, coef, PyLong_AsSsize_t(token), factors, values);
        add_values(acc, values, classes);
        int failed = PyDict_SetItem(projections, token, projection);
        Py_DECREF(projection);
        if (failed < 0) {
            return -1;
        }
    }
    return 0;
}

enum { STACK_VALUES = 1024 }; /* scratch on the stack up to this many doubles */

/* a static embedding's part of a linear model's scores: the mean of the float16 rows
 * `table[ids]`, l2-normalized, times `weight` (float32, as the numpy path computes it) into
 * `dense`; and the same vector's product with `coef` (float32, one row per dimension) added
 * to `scores`, as the sum of the tokens' projections through `coef` (projection_sum) scaled
 * by weight / (count * norm). A message's dozen kept projections add a few hundred values,
 * where the product of its mean took a whole pass over `coef` (some 40 k instructions at
 * 256 x 84). The same product as the mean's but for rounding: the rows are summed in doubles
 * here, where the mean is a float32 sum. */
PyObject *embedding_scores(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    double weight;
    Py_buffer table, coef, dense, scores;
    int held = 0;
    PyObject *result = NULL;
    double stack[STACK_VALUES], *scratch = NULL;
    if (!arity("embedding_scores", nargs, 7) ||
        !arg_typed("embedding_scores", 2, args[1], &PyList_Type) ||
        !arg_double(args[2], &weight) ||
        !arg_typed("embedding_scores", 7, args[6], &PyDict_Type)) {
        return NULL;
    }
    PyObject *table_obj = args[0], *ids = args[1], *coef_obj = args[3], *dense_obj = args[4];
    PyObject *scores_obj = args[5], *projections = args[6];
    if (get_array(table_obj, &table, 0, 'e', 2, "table") < 0) {
        goto done;
    }
    held = 1;
    if (get_array(coef_obj, &coef, 0, 'f', 2, "coef") < 0) {
        goto done;
    }
    held = 2;
    if (get_array(dense_obj, &dense, 1, 'f', 1, "dense") < 0) {
        goto done;
    }
    held = 3;
    if (get_array(scores_obj, &scores, 1, 'd', 1, "scores") < 0) {
        goto done;
    }
    held = 4;
    Py_ssize_t width = table.shape[1], n_classes = scores.shape[0];
    if (dense.shape[0] != width || coef.shape[0] != width || coef.shape[1] != n_classes) {
        PyErr_SetString(PyExc_ValueError,
                        "dense must have one value per table column, coef one row per value "
                        "and one column per score");
        goto done;
    }
    float *unit = dense.buf;
    if (mean_of_rows(&table, ids, unit) < 0) {
        goto done;
    }
    double squared = 0.0;
    for (Py_ssize_t k = 0; k < width; k++) {
        squared += (double)unit[k] * (double)unit[k];
    }
    float norm = (float)sqrt(squared);
    float scale = (float)weight;
    for (Py_ssize_t k = 0; k < width; k++) {
        unit[k] = (norm > 0.0f ? unit[k] / norm : unit[k]) * scale;
    }
    if (norm > 0.0f) { /* else no tokens, or rows that cancel: nothing to add */
        /* acc (classes doubles), then a row's float factors */
        Py_ssize_t needed = n_classes + (width + 1) / 2;
        scratch = needed <= STACK_VALUES ? stack : PyMem_Malloc((size_t)needed * sizeof(double));
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        double *acc = scratch;
        float *factors = (float *)(scratch + n_classes);
        if (projection_sum(&table, &coef, ids, projections, factors, acc) < 0) {
            goto done;
        }
        double factor = weight / ((double)PyList_GET_SIZE(ids) * sqrt(squared));
        double *out = scores.buf;
        for (Py_ssize_t c = 0; c < n_classes; c++) {
            out[c] += acc[c] * factor;
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (scratch != NULL && scratch != stack) {
        PyMem_Free(scratch);
    }
    if (held >= 4) {
        PyBuffer_Release(&scores);
    }
    if (held >= 3) {
        PyBuffer_Release(&dense);
    }
    if (held >= 2) {
        PyBuffer_Release(&coef);
    }
    if (held >= 1) {
        PyBuffer_Release(&table);
    }
    return result;
}
