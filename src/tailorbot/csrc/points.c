/* Code-point buffers and id lists (see points.h). */
#include "points.h"

uint64_t hash_points(const Py_UCS4 *points, Py_ssize_t length) {
    return hash_points_from(1469598103934665603ULL, points, length); /* FNV-1a's basis */
}

uint64_t hash_points_from(uint64_t basis, const Py_UCS4 *points, Py_ssize_t length) {
    uint64_t h = basis; /* FNV-1a over 32-bit code points */
    for (Py_ssize_t i = 0; i < length; i++) {
        h ^= (uint64_t)points[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

int ids_push(Ids *ids, int32_t id) {
    if (ids->size == ids->capacity) {
        Py_ssize_t grown = ids->capacity * 2;
        int32_t *items;
        if (ids->items == ids->local) {
            items = PyMem_Malloc((size_t)grown * sizeof(int32_t));
            if (items != NULL) {
                memcpy(items, ids->local, (size_t)ids->size * sizeof(int32_t));
            }
        } else {
            items = PyMem_Realloc(ids->items, (size_t)grown * sizeof(int32_t));
        }
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        ids->items = items;
        ids->capacity = grown;
    }
    ids->items[ids->size++] = id;
    return 0;
}

void ids_free(Ids *ids) {
    if (ids->items != ids->local) {
        PyMem_Free(ids->items);
    }
}

int points_reserve(Points *buf, Py_ssize_t needed) {
    if (needed <= buf->capacity) {
        return 0;
    }
    Py_UCS4 *grown = buf->points == buf->local
                         ? PyMem_Malloc((size_t)needed * sizeof(Py_UCS4))
                         : PyMem_Realloc(buf->points, (size_t)needed * sizeof(Py_UCS4));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->points = grown;
    buf->capacity = needed;
    return 0;
}

void points_free(Points *buf) {
    if (buf->points != buf->local) {
        PyMem_Free(buf->points);
    }
}

void copy_points(PyObject *text, Py_UCS4 *out) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < length; i++) {
        out[i] = PyUnicode_READ(kind, data, i);
    }
}
