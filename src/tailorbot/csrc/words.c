/* word_runs: the tokens of scikit-learn's default word pattern, without the regex engine. */
#include "native.h"

/* Python's \w for a str pattern (Modules/_sre: SRE_UNI_IS_WORD): alphanumeric or '_'. */
static inline int is_word(Py_UCS4 ch) {
    return ch == '_' || Py_UNICODE_ISALNUM(ch);
}

PyObject *word_runs(PyObject *module, PyObject *args) {
    PyObject *text;
    Py_ssize_t min_len;
    if (!PyArg_ParseTuple(args, "Un", &text, &min_len)) {
        return NULL;
    }
    if (min_len < 1) {
        PyErr_SetString(PyExc_ValueError, "min_len must be at least 1");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    /* `\b\w{min_len,}\b` matches the maximal runs of word characters at least min_len long
     * (a run is bounded by non-word characters or the text's ends): found left to right,
     * as re.findall finds them. */
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_word(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        while (i < n && is_word(PyUnicode_READ(kind, data, i))) {
            i++;
        }
        if (i - start < min_len) {
            continue;
        }
        PyObject *run = PyUnicode_Substring(text, start, i);
        if (run == NULL || PyList_Append(out, run) < 0) {
            Py_XDECREF(run);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(run);
    }
    return out;
}
