/* Typed views of numpy arrays through the buffer protocol. */
#include "native.h"

static int format_is(const Py_buffer *view, char code) {
    const char *format = view->format;
    if (format == NULL) {
        return 0;
    }
    if (format[0] == '@' || format[0] == '=') {
        format++; /* native order */
    }
#if PY_LITTLE_ENDIAN
    else if (format[0] == '<') {
        format++; /* little-endian, this machine's order */
    }
#endif
    return format[0] == code && format[1] == '\0';
}

int get_array(PyObject *obj, Py_buffer *view, int writable, char code, int ndim,
              const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    int refused = PyObject_GetBuffer(obj, view, flags) < 0;
    if (refused) {
        PyErr_Clear(); /* numpy's own words do not name the argument */
    }
    if (refused || view->ndim != ndim || !format_is(view, code)) {
        if (!refused) {
            PyBuffer_Release(view);
        }
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous %d-d array of '%c' values",
                     name, ndim, code);
        return -1;
    }
    return 0;
}
