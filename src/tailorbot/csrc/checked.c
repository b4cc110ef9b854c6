/* checked_model: a pydantic model's instance holding values checked already, in one call
 * (events/schema.py, checked_event_in_python, its reference): what BaseModel.model_construct
 * sets, its instance dict the values themselves, without a call of object.__setattr__ per
 * slot (a wrapper's call each, some 1.5 k instructions; a decision builds one message). */
#include "native.h"

/* checked_model(model, values, names, slots): see module.c */
PyObject *checked_model(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "checked_model";
    if (!arity(name, nargs, 4) || !arg_typed(name, 1, args[0], &PyType_Type) ||
        !arg_typed(name, 4, args[3], &PyTuple_Type)) {
        return NULL;
    }
    PyTypeObject *model = (PyTypeObject *)args[0];
    PyObject *values = args[1], *names = args[2], *slots = args[3];
    if (PyTuple_GET_SIZE(slots) != 4) {
        PyErr_SetString(PyExc_ValueError, "checked_model takes 4 slot names");
        return NULL;
    }
    /* exactly the model's fields (else None: the Python path says which are wrong) */
    if (!PyDict_CheckExact(values) || !PyFrozenSet_CheckExact(names) ||
        PyDict_GET_SIZE(values) != PySet_GET_SIZE(names)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(values, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            Py_RETURN_NONE;
        }
        int found = PySet_Contains(names, key);
        if (found <= 0) {
            if (found < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        return NULL;
    }
    PyObject *instance = model->tp_new(model, empty, NULL); /* model.__new__(model) */
    Py_DECREF(empty);
    if (instance == NULL) {
        return NULL;
    }
    /* set(values): the same names, copied from the frozenset's table at once */
    PyObject *fields_set = PySet_New(names);
    if (fields_set == NULL) {
        Py_DECREF(instance);
        return NULL;
    }
    /* object.__setattr__ of each: the generic setter, past the model's own __setattr__ */
    PyObject *set[4] = {values, fields_set, Py_None, Py_None};
    for (int k = 0; k < 4; k++) {
        if (PyObject_GenericSetAttr(instance, PyTuple_GET_ITEM(slots, k), set[k]) < 0) {
            Py_DECREF(fields_set);
            Py_DECREF(instance);
            return NULL;
        }
    }
    Py_DECREF(fields_set);
    return instance;
}
