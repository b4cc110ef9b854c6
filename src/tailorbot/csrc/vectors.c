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

WIDE_VECTORS void add_rows(double *acc, const float *rows, const float *factors,
                           Py_ssize_t count, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < count; k++) {
        if (factors[k] != 0.0f) {
            scaled_into(acc, rows + k * n, (double)factors[k], n);
        }
    }
}

WIDE_VECTORS void add_values(double *acc, const double *values, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) {
        acc[k] += values[k];
    }
}
