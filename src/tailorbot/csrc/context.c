/* The bandit's inputs from a feature view, each in one call with the same operations in the
 * same order as its Python reference: context_vector (features/context_vector.py), its
 * numeric context; action_features (features/context.py), the customer's memory of each
 * offered variant. */
#include "native.h"

/* the view's keys read, interned once */
enum {
    K_CSAT, K_RESOLUTION, K_HANDOFF, K_SINCE, K_TIER, K_EVENTS, K_SESSIONS, K_SEGMENTS,
    K_LOWER, K_STANDARD, K_VIP, K_OTHER, K_REWARDS, K_RECENT_MEAN, K_RECENT_WEIGHT, N_KEYS
};
static const char *const KEYS[] = {
    "csat_ewma", "resolution_rate_30d", "handoff_rate_30d", "time_since_last_contact_s",
    "tier", "events_24h", "sessions_30d", "segments", "lower", "standard", "vip", "other",
    "variant_rewards", "recent_mean", "recent_weight",
};
static PyObject *keys[N_KEYS];
/* the constants' items: see context_vector in module.c */
enum { C_NAMES, C_SEGMENTS, C_TIER_GROUPS, C_EVENTS_CAP, C_SESSIONS_CAP, C_RECENCY, N_CONSTANTS };
enum { N_SEGMENTS = 5, N_GROUPS = 3, N_VALUES = 8 + N_SEGMENTS + N_GROUPS };
enum { MOST_VARIANTS = 64 }; /* a template's variants action_features reads; more: Python's */

/* min(1.0, log1p(max(0.0, count)) / log1p(cap)) */
static double log_scaled(double count, double cap) {
    double scaled = log1p(count > 0.0 ? count : 0.0) / log1p(cap);
    return scaled < 1.0 ? scaled : 1.0;
}

/* context_vector(view, vip_tiers, constants): see module.c */
PyObject *context_vector(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("context_vector", nargs, 3) || intern_names(keys, KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *view = args[0], *vip_tiers = args[1], *constants = args[2];
    if (!PyDict_CheckExact(view) || !PyFrozenSet_CheckExact(vip_tiers) ||
        !PyTuple_CheckExact(constants) || PyTuple_GET_SIZE(constants) != N_CONSTANTS) {
        Py_RETURN_NONE;
    }
    PyObject **c = ((PyTupleObject *)constants)->ob_item;
    if (!PyTuple_CheckExact(c[C_NAMES]) || PyTuple_GET_SIZE(c[C_NAMES]) != N_VALUES ||
        !PyTuple_CheckExact(c[C_SEGMENTS]) || PyTuple_GET_SIZE(c[C_SEGMENTS]) != N_SEGMENTS ||
        !PyTuple_CheckExact(c[C_TIER_GROUPS]) ||
        PyTuple_GET_SIZE(c[C_TIER_GROUPS]) != N_GROUPS || !PyFloat_CheckExact(c[C_EVENTS_CAP]) ||
        !PyFloat_CheckExact(c[C_SESSIONS_CAP]) || !PyFloat_CheckExact(c[C_RECENCY])) {
        Py_RETURN_NONE;
    }
    PyObject *v[K_LOWER]; /* the view's values, borrowed: read before any allocation */
    for (int k = 0; k < K_LOWER; k++) {
        v[k] = PyDict_GetItemWithError(view, keys[k]);
        /* view[key] but for the tier (view.get): a missing one is Python's KeyError */
        if (v[k] == NULL && (PyErr_Occurred() || k != K_TIER)) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    double values[N_VALUES], x;
    values[0] = 1.0;
    if (!exact_double(v[K_EVENTS], &x)) {
        Py_RETURN_NONE;
    }
    values[1] = log_scaled(x, PyFloat_AS_DOUBLE(c[C_EVENTS_CAP]));
    if (!exact_double(v[K_SESSIONS], &x)) {
        Py_RETURN_NONE;
    }
    values[2] = log_scaled(x, PyFloat_AS_DOUBLE(c[C_SESSIONS_CAP]));
    if (v[K_SINCE] == Py_None) {
        values[3] = 0.0;
    } else if (exact_double(v[K_SINCE], &x)) {
        values[3] = exp(-x / PyFloat_AS_DOUBLE(c[C_RECENCY]));
    } else {
        Py_RETURN_NONE;
    }
    if (v[K_CSAT] == Py_None) {
        values[4] = 0.5;
        values[5] = 0.0;
    } else if (exact_double(v[K_CSAT], &x)) {
        values[4] = (x - 1.0) / 4.0;
        values[5] = 1.0;
    } else {
        Py_RETURN_NONE;
    }
    if (v[K_RESOLUTION] == Py_None) {
        values[6] = 0.5;
    } else if (!exact_double(v[K_RESOLUTION], &values[6])) {
        Py_RETURN_NONE;
    }
    if (v[K_HANDOFF] == Py_None) {
        values[7] = 0.0;
    } else if (!exact_double(v[K_HANDOFF], &values[7])) {
        Py_RETURN_NONE;
    }
    PyObject *matched = v[K_SEGMENTS], *tier = v[K_TIER] != NULL ? v[K_TIER] : Py_None;
    if (!PyList_CheckExact(matched) || (tier != Py_None && !PyUnicode_CheckExact(tier))) {
        Py_RETURN_NONE;
    }
    for (int s = 0; s < N_SEGMENTS; s++) {
        PyObject *segment = PyTuple_GET_ITEM(c[C_SEGMENTS], s);
        int found = 0;
        if (!PyUnicode_CheckExact(segment)) {
            Py_RETURN_NONE;
        }
        for (Py_ssize_t i = 0; !found && i < PyList_GET_SIZE(matched); i++) {
            PyObject *item = PyList_GET_ITEM(matched, i);
            if (!PyUnicode_CheckExact(item)) {
                Py_RETURN_NONE;
            }
            found = PyUnicode_Compare(item, segment) == 0;
        }
        values[8 + s] = found ? 1.0 : 0.0;
    }
    /* the tier's group: "vip" for a VIP tier (any case), "standard", else "other" */
    PyObject *group = keys[K_OTHER];
    if (tier != Py_None) {
        Py_INCREF(tier); /* held: lower() allocates, which may run a collection */
        PyObject *lowered = PyObject_CallMethodNoArgs(tier, keys[K_LOWER]);
        int vip = lowered == NULL ? -1 : PySet_Contains(vip_tiers, lowered);
        Py_XDECREF(lowered);
        if (vip >= 0) {
            group = vip                                                ? keys[K_VIP]
                    : PyUnicode_Compare(tier, keys[K_STANDARD]) == 0 ? keys[K_STANDARD]
                                                                     : keys[K_OTHER];
        }
        Py_DECREF(tier);
        if (vip < 0) {
            return NULL;
        }
    }
    for (int g = 0; g < N_GROUPS; g++) {
        PyObject *name = PyTuple_GET_ITEM(c[C_TIER_GROUPS], g);
        if (!PyUnicode_CheckExact(name)) {
            Py_RETURN_NONE;
        }
        values[8 + N_SEGMENTS + g] = PyUnicode_Compare(name, group) == 0 ? 1.0 : 0.0;
    }
    PyObject *out = NEW_SIZED_DICT(N_VALUES);
    for (int k = 0; out != NULL && k < N_VALUES; k++) {
        PyObject *value = PyFloat_FromDouble(values[k]);
        if (value == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(c[C_NAMES], k), value) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(value);
    }
    return out;
}

/* action_features(view, variants, priors, names, prior_weight): see module.c */
PyObject *action_features(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("action_features", nargs, 5) || intern_names(keys, KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *view = args[0], *variants = args[1], *priors = args[2], *names = args[3];
    if (!PyDict_CheckExact(view) || !(PyList_CheckExact(variants) || PyTuple_CheckExact(variants)) ||
        !PyTuple_CheckExact(priors) ||
        PyTuple_GET_SIZE(priors) != PySequence_Fast_GET_SIZE(variants) ||
        !PyTuple_CheckExact(names) || PyTuple_GET_SIZE(names) != 3 ||
        !PyFloat_CheckExact(args[4])) {
        Py_RETURN_NONE;
    }
    double held = PyFloat_AS_DOUBLE(args[4]); /* the prior's weight in pseudo-outcomes */
    /* `view.get("variant_rewards") or {}`: a dict (empty when missing or None) */
    PyObject *memory = PyDict_GetItemWithError(view, keys[K_REWARDS]);
    if (memory == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (memory != NULL && memory != Py_None && !PyDict_CheckExact(memory)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(variants);
    PyObject **offered = PySequence_Fast_ITEMS(variants);
    double figures[3 * MOST_VARIANTS]; /* read first: nothing below runs Python code */
    if (n > MOST_VARIANTS) {
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *variant = offered[i], *prior = PyTuple_GET_ITEM(priors, i);
        double weight = 0.0, mean, p;
        if (!PyUnicode_CheckExact(variant) || !exact_double(prior, &p)) {
            Py_RETURN_NONE;
        }
        /* `memory.get(variant) or {}`, its recent mean and (with one) its recent weight */
        PyObject *own = memory == NULL || memory == Py_None
                            ? NULL
                            : PyDict_GetItemWithError(memory, variant);
        if (own == NULL && PyErr_Occurred()) {
            return NULL;
        }
        if (own != NULL && own != Py_None && !PyDict_CheckExact(own)) {
            Py_RETURN_NONE;
        }
        PyObject *recent = own == NULL || own == Py_None ? NULL
                                                         : PyDict_GetItemWithError(own, keys[K_RECENT_MEAN]);
        if (recent == NULL && PyErr_Occurred()) {
            return NULL;
        }
        if (recent == NULL || recent == Py_None) {
            mean = p;
        } else {
            PyObject *w = PyDict_GetItemWithError(own, keys[K_RECENT_WEIGHT]);
            if (w == NULL || !exact_double(w, &weight) || !exact_double(recent, &mean)) {
                if (PyErr_Occurred()) {
                    return NULL;
                }
                Py_RETURN_NONE; /* a missing weight raises there: the Python path's */
            }
        }
        figures[3 * i] = (weight * mean + held * p) / (weight + held);
        figures[3 * i + 1] = weight / (weight + held);
        figures[3 * i + 2] = p;
    }
    PyObject *out = NEW_SIZED_DICT(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *one = NEW_SIZED_DICT(3);
        for (int k = 0; one != NULL && k < 3; k++) {
            PyObject *value = PyFloat_FromDouble(figures[3 * i + k]);
            if (value == NULL || PyDict_SetItem(one, PyTuple_GET_ITEM(names, k), value) < 0) {
                Py_CLEAR(one);
            }
            Py_XDECREF(value);
        }
        if (one == NULL || PyDict_SetItem(out, offered[i], one) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(one);
    }
    return out;
}
