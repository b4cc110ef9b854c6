/* Code-point buffers and id lists for the n-gram loops (points.c): growable, on the stack
 * while small. */
#ifndef TAILORBOT_POINTS_H
#define TAILORBOT_POINTS_H

#include "native.h"

/* a growable array of ids, on the stack while it is small */
typedef struct {
    int32_t *items;
    Py_ssize_t size;
    Py_ssize_t capacity;
    int32_t local[256];
} Ids;

/* a growable code-point buffer, on the stack while it is small */
typedef struct {
    Py_UCS4 *points;
    Py_ssize_t capacity;
    Py_UCS4 local[512];
} Points;


uint64_t hash_points(const Py_UCS4 *points, Py_ssize_t length);
/* the same hash from another basis (a seed: slots that input cannot be chosen to crowd) */
uint64_t hash_points_from(uint64_t basis, const Py_UCS4 *points, Py_ssize_t length);
int ids_push(Ids *ids, int32_t id);
void ids_free(Ids *ids);
int points_reserve(Points *buf, Py_ssize_t needed);
void points_free(Points *buf);
/* writes the code points of `text` at `out` (room for its length is the caller's) */
void copy_points(PyObject *text, Py_UCS4 *out);

#endif
