/* Sums over rows of coefficients, for the dense and the n-gram parts of the linear models,
 * compiled for AVX2 too (WIDE_VECTORS, native.h). */
#include "native.h"

/* acc += factor * row: inlined into each clone, which compiles it for its own target */
static inline void scaled_into(double *acc, const float *row, double factor, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) {
        acc[k] += factor * (double)row[k];
    }
}

WIDE_VECTORS void add_scaled(double *acc, const float *row, double factor, Py_ssize_t n) {
    scaled_into(acc, row, factor, n);
}

/* A block of 16 of acc's columns is held in registers (4 of AVX2's) across all the rows,
 * where a row at a time loads and stores all of acc for every row. Each acc[j] adds the
 * same products in the same order either way (k ascending, zero factors skipped): the same
 * sums, bit for bit (but for a NaN's payload: which of two NaNs an addition keeps is the
 * compiler's choice of operand order). */
enum { ROW_BLOCK = 16 };

/* out[0:16] += factors[k] * rows[k][start:start + 16] for k in [0, count) */
static inline void rows_into_block(double *out, const float *rows, const float *factors,
                                   Py_ssize_t count, Py_ssize_t n, Py_ssize_t start) {
    double block[ROW_BLOCK]; /* a local of fixed size: the compiler keeps it in registers */
    memcpy(block, out, sizeof block);
    for (Py_ssize_t k = 0; k < count; k++) {
        if (factors[k] != 0.0f) {
            double factor = (double)factors[k];
            const float *row = rows + k * n + start;
            for (Py_ssize_t j = 0; j < ROW_BLOCK; j++) {
                block[j] += factor * (double)row[j];
            }
        }
    }
    memcpy(out, block, sizeof block);
}

WIDE_VECTORS void add_rows(double *acc, const float *rows, const float *factors,
                           Py_ssize_t count, Py_ssize_t n) {
    Py_ssize_t start = 0;
    for (; start + ROW_BLOCK <= n; start += ROW_BLOCK) {
        rows_into_block(acc + start, rows, factors, count, n, start);
    }
    if (start == n || count == 0) {
        return;
    }
    if (n < ROW_BLOCK) { /* too narrow to read a block's width past a row: a row at a time */
        for (Py_ssize_t k = 0; k < count; k++) {
            if (factors[k] != 0.0f) {
                scaled_into(acc, rows + k * n, (double)factors[k], n);
            }
        }
        return;
    }
    /* the last, narrower block: read as wide as the others in every row but the last (its
     * lanes past n read the next row's first values, fewer than n of them, and are
     * discarded), the last row's own columns added alone, after them */
    Py_ssize_t width = n - start;
    double block[ROW_BLOCK] = {0.0};
    memcpy(block, acc + start, (size_t)width * sizeof(double));
    rows_into_block(block, rows, factors, count - 1, n, start);
    if (factors[count - 1] != 0.0f) {
        scaled_into(block, rows + (count - 1) * n + start, (double)factors[count - 1], width);
    }
    memcpy(acc + start, block, (size_t)width * sizeof(double));
}

WIDE_VECTORS void add_values(double *acc, const double *values, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) {
        acc[k] += values[k];
    }
}
