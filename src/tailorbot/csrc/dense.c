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

/* a static embedding's part of a linear model's scores: the mean of the float16 rows
 * `table[ids]`, l2-normalized, times `weight` (float32, as the numpy path computes it) into
 * `dense`, and its product with `coef` (float32, one row per dimension) added to `scores` */
PyObject *embedding_scores(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    double weight;
    Py_buffer table, coef, dense, scores;
    int held = 0;
    PyObject *result = NULL;
    if (!arity("embedding_scores", nargs, 6) ||
        !arg_typed("embedding_scores", 2, args[1], &PyList_Type) || !arg_double(args[2], &weight)) {
        return NULL;
    }
    PyObject *table_obj = args[0], *ids = args[1], *coef_obj = args[3], *dense_obj = args[4];
    PyObject *scores_obj = args[5];
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
    add_rows(scores.buf, coef.buf, unit, width, n_classes);
    result = Py_None;
    Py_INCREF(result);
done:
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
