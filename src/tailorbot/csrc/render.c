/* fill_template: a response template's pieces filled in one call (kb/render.py, render's
 * loop, its reference): literal pieces as they are, each placeholder from the context, else
 * the KB's defaults, else the built-in text, a value made one line of at most `max_chars`
 * characters as _clean makes it (" ".join(str(value).split())[:max_chars]). */
#include "native.h"

static PyObject *space, *nothing;

/* whether " ".join(text.split()) is `text` itself: no whitespace but single spaces between
 * words (str.split's whitespace, Py_UNICODE_ISSPACE) */
static int one_line(PyObject *text) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 before = ' '; /* a space "before" the start: a leading space is not one line */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == ' ' ? before == ' ' : Py_UNICODE_ISSPACE(ch)) {
            return 0;
        }
        before = ch;
    }
    return n == 0 || before != ' ';
}

/* _clean(value) as a new reference: "" for None */
static PyObject *cleaned(PyObject *value, Py_ssize_t max_chars) {
    if (value == NULL || value == Py_None) {
        return Py_NewRef(nothing);
    }
    PyObject *text = PyObject_Str(value), *line;
    if (text == NULL) {
        return NULL;
    }
    if (one_line(text)) {
        line = text;
    } else {
        PyObject *words = PyUnicode_Split(text, NULL, -1);
        Py_DECREF(text);
        if (words == NULL) {
            return NULL;
        }
        line = PyUnicode_Join(space, words);
        Py_DECREF(words);
        if (line == NULL) {
            return NULL;
        }
    }
    if (PyUnicode_GET_LENGTH(line) <= max_chars) {
        return line;
    }
    PyObject *cut = PyUnicode_Substring(line, 0, max_chars);
    Py_DECREF(line);
    return cut;
}

/* mapping.get(name) cleaned, as a new reference ("" for none) */
static PyObject *cleaned_from(PyObject *mapping, PyObject *name, Py_ssize_t max_chars) {
    PyObject *value = PyDict_GetItemWithError(mapping, name);
    if (value == NULL && PyErr_Occurred()) {
        return NULL;
    }
    Py_XINCREF(value); /* held: str() of it may run Python code */
    PyObject *line = cleaned(value, max_chars);
    Py_XDECREF(value);
    return line;
}

/* one placeholder's text, as a new reference */
static PyObject *filled(PyObject *name, PyObject *context, PyObject *defaults,
                        PyObject *builtins, Py_ssize_t max_chars) {
    PyObject *maps[] = {context, defaults};
    for (int m = 0; m < 2; m++) {
        PyObject *line = cleaned_from(maps[m], name, max_chars);
        if (line == NULL || PyUnicode_GET_LENGTH(line) > 0) {
            return line;
        }
        Py_DECREF(line);
    }
    PyObject *fallback = PyDict_GetItemWithError(builtins, name);
    if (fallback == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(nothing);
    }
    return Py_NewRef(fallback);
}

/* fill_template(pieces, context, defaults, builtins, max_chars): see module.c */
PyObject *fill_template(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "fill_template";
    Py_ssize_t max_chars;
    if (!arity(name, nargs, 5) || !arg_typed(name, 1, args[0], &PyTuple_Type) ||
        !arg_ssize(args[4], &max_chars)) {
        return NULL;
    }
    PyObject *pieces = args[0], *context = args[1], *defaults = args[2], *builtins = args[3];
    /* what the Python loop reads through a method another type may change: left to it */
    if (!PyDict_CheckExact(context) || !PyDict_CheckExact(defaults) ||
        !PyDict_CheckExact(builtins) || max_chars < 0) {
        Py_RETURN_NONE;
    }
    if (space == NULL) {
        if ((space = PyUnicode_InternFromString(" ")) == NULL ||
            (nothing = PyUnicode_InternFromString("")) == NULL) {
            Py_CLEAR(space);
            return NULL;
        }
    }
    Py_ssize_t n = PyTuple_GET_SIZE(pieces);
    for (Py_ssize_t i = 0; i < n; i++) { /* checked first: None before any Python runs */
        PyObject *piece = PyTuple_GET_ITEM(pieces, i);
        if (!PyUnicode_CheckExact(piece) &&
            !(PyTuple_CheckExact(piece) && PyTuple_GET_SIZE(piece) == 1 &&
              PyUnicode_CheckExact(PyTuple_GET_ITEM(piece, 0)))) {
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, i), *text;
        if (PyUnicode_CheckExact(piece)) {
            text = Py_NewRef(piece);
        } else {
            text = filled(PyTuple_GET_ITEM(piece, 0), context, defaults, builtins, max_chars);
            if (text == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        PyList_SET_ITEM(out, i, text);
    }
    PyObject *joined = PyUnicode_Join(nothing, out);
    Py_DECREF(out);
    return joined;
}
