/* user_context: the recommender's slice of a feature view (models/recommend/base.py,
 * UserContext.from_view) in one call, its named tuple built without its __new__. */
#include "native.h"

/* the view's keys read, interned once */
enum {
    K_RECENT, K_RESOLVED_BY_INTENT, K_PERSONALIZATION, K_TIER, K_SEGMENT, K_LANGUAGE,
    K_VIEWED, K_HELPFUL, K_UNHELPFUL, K_RESOLVED, N_KEYS
};
static const char *const KEYS[] = {
    "recent_intents", "articles_resolved_by_intent", "personalization", "tier", "segment",
    "language", "articles_viewed", "articles_helpful", "articles_unhelpful", "articles_resolved",
};
static PyObject *keys[N_KEYS];
enum { N_FIELDS = 10 }; /* UserContext's fields */

/* _text(value): None for None or "", the str itself otherwise; NULL with no error set for a
 * value of another type (Python's str() may run its code) */
static PyObject *text_of(PyObject *value) {
    if (value == NULL || value == Py_None ||
        (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) == 0)) {
        Py_RETURN_NONE;
    }
    return PyUnicode_CheckExact(value) ? Py_NewRef(value) : NULL;
}

/* frozenset(value or ()) of a list of str; NULL with no error set for another type */
static PyObject *id_set(PyObject *value) {
    if (value == NULL || value == Py_None ||
        (PyList_CheckExact(value) && PyList_GET_SIZE(value) == 0)) {
        return PyFrozenSet_New(NULL);
    }
    if (!PyList_CheckExact(value)) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
        if (!PyUnicode_CheckExact(PyList_GET_ITEM(value, i))) {
            return NULL; /* hashed by Python code, maybe */
        }
    }
    return PyFrozenSet_New(value);
}

/* {str(k): tuple(v) for k, v in dict(value or {}).items()} of str keys and list values;
 * NULL with no error set for another type */
static PyObject *lists_as_tuples(PyObject *value) {
    if (value != NULL && value != Py_None && !PyDict_CheckExact(value)) {
        return NULL;
    }
    PyObject *out = PyDict_New(), *key, *list;
    Py_ssize_t pos = 0;
    while (out != NULL && value != NULL && value != Py_None &&
           PyDict_Next(value, &pos, &key, &list)) {
        if (!PyUnicode_CheckExact(key) || !PyList_CheckExact(list)) {
            Py_CLEAR(out);
            return NULL;
        }
        PyObject *items = PyList_AsTuple(list);
        if (items == NULL || PyDict_SetItem(out, key, items) < 0) {
            Py_XDECREF(items);
            Py_CLEAR(out);
            return NULL;
        }
        Py_DECREF(items);
    }
    return out;
}

/* user_context(cls, view): see module.c */
PyObject *user_context(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("user_context", nargs, 2) || intern_names(keys, KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *cls = args[0], *view = args[1];
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type) ||
        !PyDict_CheckExact(view) || PyDict_GET_SIZE(view) == 0) {
        Py_RETURN_NONE; /* no view, or another mapping: the Python path reads it */
    }
    PyObject *v[N_KEYS]; /* held while the fields are made: each may allocate */
    for (int k = 0; k < N_KEYS; k++) {
        v[k] = Py_XNewRef(PyDict_GetItemWithError(view, keys[k]));
    }
    PyObject *fields[N_FIELDS] = {NULL}, *result = NULL;
    if (PyErr_Occurred()) {
        goto done;
    }
    PyObject *personalization = v[K_PERSONALIZATION] != NULL ? v[K_PERSONALIZATION] : Py_True;
    PyObject *recent = v[K_RECENT];
    if (!PyBool_Check(personalization) ||
        (recent != NULL && recent != Py_None && !PyList_CheckExact(recent))) {
        goto done;
    }
    fields[0] = Py_NewRef(personalization);
    fields[4] = recent != NULL && recent != Py_None && PyList_GET_SIZE(recent) > 0
                    ? text_of(PyList_GET_ITEM(recent, PyList_GET_SIZE(recent) - 1))
                    : Py_NewRef(Py_None);
    if (fields[4] == NULL || (fields[1] = text_of(v[K_TIER])) == NULL ||
        (fields[2] = text_of(v[K_SEGMENT])) == NULL ||
        (fields[3] = text_of(v[K_LANGUAGE])) == NULL ||
        (fields[5] = id_set(v[K_VIEWED])) == NULL || (fields[6] = id_set(v[K_HELPFUL])) == NULL ||
        (fields[7] = id_set(v[K_UNHELPFUL])) == NULL ||
        (fields[8] = id_set(v[K_RESOLVED])) == NULL ||
        (fields[9] = lists_as_tuples(v[K_RESOLVED_BY_INTENT])) == NULL) {
        goto done;
    }
    result = tuple_of(cls, fields, N_FIELDS); /* it took the fields, made or not */
    for (int k = 0; k < N_FIELDS; k++) {
        fields[k] = NULL;
    }
done:
    if (result == NULL && !PyErr_Occurred()) {
        result = Py_NewRef(Py_None);
    }
    for (int k = 0; k < N_FIELDS; k++) {
        Py_XDECREF(fields[k]);
    }
    for (int k = 0; k < N_KEYS; k++) {
        Py_XDECREF(v[k]);
    }
    return result;
}
