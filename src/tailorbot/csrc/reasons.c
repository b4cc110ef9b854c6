/* article_reasons: the reasons of one recommended article in one call
 * (ReasonWriter.reasons_in_python in models/recommend/reasons.py, its reference): the
 * signals whose weighted contribution reaches the minimum, strongest first, equal ones in the
 * weighted dict's order. The text signal's words are matched here; a signal whose text every
 * article of the answer shares is read from `worded`; any other is worded by the Python
 * callback, which runs after the words are matched (it may run any Python code). */
#include "native.h"

static PyObject *text_name, *prefix, *separator;
enum { MOST_MENTIONED = 16 }; /* the words a text reason may name: more go to Python */

/* A strong signal: its name (a new reference), its strength, its text (a new reference,
 * NULL: none). */
typedef struct {
    PyObject *name;
    double strength;
    PyObject *text;
} Strong;

/* whether `words` is a list of (word, term) pairs of str, as terms_and_words makes it */
static int word_pairs(PyObject *words) {
    if (!PyList_CheckExact(words)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(words); i++) {
        PyObject *pair = PyList_GET_ITEM(words, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 0)) ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 1))) {
            return 0;
        }
    }
    return 1;
}

/* "your message mentions a, b" for the first `most` words whose term the article has; NULL
 * with no error set when none has */
static PyObject *mentions(PyObject *terms, PyObject *words, Py_ssize_t most) {
    PyObject *matched[MOST_MENTIONED];
    Py_ssize_t n = 0;
    /* each pair held while the set is asked: a set holding other objects than str may run
     * their __eq__, which may change the list */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(words) && n < most; i++) {
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(words, i));
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) { /* changed so */
            Py_DECREF(pair);
            continue;
        }
        int found = PySet_Contains(terms, PyTuple_GET_ITEM(pair, 1));
        if (found > 0) {
            matched[n++] = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
        }
        Py_DECREF(pair);
        if (found < 0) {
            for (Py_ssize_t k = 0; k < n; k++) {
                Py_DECREF(matched[k]);
            }
            return NULL;
        }
    }
    if (n == 0) {
        return NULL;
    }
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        for (Py_ssize_t k = 0; k < n; k++) {
            Py_DECREF(matched[k]);
        }
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyList_SET_ITEM(list, i, matched[i]); /* the reference held above */
    }
    PyObject *joined = PyUnicode_Join(separator, list);
    Py_DECREF(list);
    if (joined == NULL) {
        return NULL;
    }
    PyObject *text = PyUnicode_Concat(prefix, joined);
    Py_DECREF(joined);
    return text;
}

static void release(Strong *strong, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(strong[i].name);
        Py_XDECREF(strong[i].text);
    }
    PyMem_Free(strong);
}

/* the texts of `strong[0:n]`, strongest first (a stable insertion sort: a handful of signals) */
static PyObject *in_order(Strong *strong, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        Strong item = strong[i];
        Py_ssize_t j = i;
        for (; j > 0 && strong[j - 1].strength < item.strength; j--) {
            strong[j] = strong[j - 1];
        }
        strong[j] = item;
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        count += strong[i].text != NULL;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0, k = 0; i < n; i++) {
        if (strong[i].text != NULL) {
            Py_INCREF(strong[i].text);
            PyList_SET_ITEM(out, k++, strong[i].text);
        }
    }
    return out;
}

/* article_reasons(weighted, terms, words, worded, word_one, extra, minimum, mentioned): see
 * module.c */
PyObject *article_reasons(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "article_reasons";
    double minimum;
    Py_ssize_t mentioned;
    if (!arity(name, nargs, 8) || !arg_typed(name, 6, args[5], &PyTuple_Type) ||
        !arg_double(args[6], &minimum) || !arg_ssize(args[7], &mentioned)) {
        return NULL;
    }
    PyObject *weighted = args[0], *terms = args[1], *words = args[2], *worded = args[3];
    PyObject *word_one = args[4], *extra = args[5];
    /* what the Python path reads through methods another type may change: left to it */
    if (!PyDict_CheckExact(weighted) || !PyAnySet_CheckExact(terms) || !word_pairs(words) ||
        !PyDict_CheckExact(worded) || mentioned < 1 || mentioned > MOST_MENTIONED) {
        Py_RETURN_NONE;
    }
    if (text_name == NULL) {
        if ((text_name = PyUnicode_InternFromString("text")) == NULL ||
            (prefix = PyUnicode_FromString("your message mentions ")) == NULL ||
            (separator = PyUnicode_FromString(", ")) == NULL) {
            Py_CLEAR(text_name);
            Py_CLEAR(prefix);
            return NULL;
        }
    }
    Py_ssize_t size = PyDict_GET_SIZE(weighted), n = 0, pos = 0;
    Strong *strong = PyMem_Calloc(size > 0 ? (size_t)size : 1, sizeof(Strong));
    if (strong == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *key, *value;
    while (PyDict_Next(weighted, &pos, &key, &value)) {
        if (!PyFloat_CheckExact(value) || !PyUnicode_CheckExact(key)) {
            release(strong, n);
            Py_RETURN_NONE;
        }
        double strength = fabs(PyFloat_AS_DOUBLE(value));
        if (strength >= minimum) { /* a NaN is not */
            strong[n].name = Py_NewRef(key);
            strong[n++].strength = strength;
        }
    }
    /* the words first: the callbacks below may change the list */
    for (Py_ssize_t i = 0; i < n; i++) {
        int is_text = strong[i].name == text_name ||
                      PyUnicode_Compare(strong[i].name, text_name) == 0;
        if (is_text) {
            strong[i].text = mentions(terms, words, mentioned);
            if (strong[i].text == NULL && PyErr_Occurred()) {
                release(strong, n);
                return NULL;
            }
            Py_CLEAR(strong[i].name); /* worded */
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (strong[i].name == NULL) {
            continue;
        }
        PyObject *text = PyDict_GetItemWithError(worded, strong[i].name);
        if (text != NULL && text != Py_None) {
            Py_INCREF(text);
        } else if (PyErr_Occurred()) {
            release(strong, n);
            return NULL;
        } else { /* word_one(name, *extra) */
            PyObject *call[8];
            Py_ssize_t count = PyTuple_GET_SIZE(extra);
            if (count > 7) {
                PyErr_SetString(PyExc_ValueError, "article_reasons takes at most 7 extra");
                release(strong, n);
                return NULL;
            }
            call[0] = strong[i].name;
            for (Py_ssize_t k = 0; k < count; k++) {
                call[k + 1] = PyTuple_GET_ITEM(extra, k);
            }
            text = PyObject_Vectorcall(word_one, call, (size_t)count + 1, NULL);
            if (text == NULL) {
                release(strong, n);
                return NULL;
            }
            if (text == Py_None) {
                Py_CLEAR(text);
            }
        }
        strong[i].text = text;
    }
    PyObject *out = in_order(strong, n);
    release(strong, n);
    return out;
}
