/* The arguments of the module's METH_FASTCALL functions (see native.h), checked and
 * converted as PyArg_ParseTuple's codes do, with its error messages; and the names the
 * functions read, interned once. */
#include "native.h"

int arity(const char *name, Py_ssize_t nargs, Py_ssize_t n) {
    if (nargs == n) {
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)", name, n,
                 nargs);
    return 0;
}

int arg_typed(const char *name, int position, PyObject *arg, PyTypeObject *type) {
    if (PyObject_TypeCheck(arg, type)) {
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "%s() argument %d must be %s, not %s", name, position,
                 type->tp_name, Py_TYPE(arg)->tp_name);
    return 0;
}

int arg_ssize(PyObject *arg, Py_ssize_t *out) {
    PyObject *index = PyNumber_Index(arg);
    if (index == NULL) {
        return 0;
    }
    *out = PyLong_AsSsize_t(index);
    Py_DECREF(index);
    return !(*out == -1 && PyErr_Occurred());
}

int intern_names(PyObject **names, const char *const *texts, int n) {
    for (int k = 0; k < n; k++) {
        if (names[k] == NULL && (names[k] = PyUnicode_InternFromString(texts[k])) == NULL) {
            return -1;
        }
    }
    return 0;
}

int arg_double(PyObject *arg, double *out) {
    *out = PyFloat_AsDouble(arg);
    return !(*out == -1.0 && PyErr_Occurred());
}
