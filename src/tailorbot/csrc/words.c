/* The intent step's text passes without the regex engine: word_runs (scikit-learn's word
 * tokens), cached_piece_ids (the embedding's token ids from kept pieces), unknown_words (the
 * typo corrector's candidates). Each gives what the regex and Python code it replaces give. */
#include "native.h"

/* Python's \w for a str pattern (Modules/_sre: SRE_UNI_IS_WORD): alphanumeric or '_'. */
static inline int is_word(Py_UCS4 ch) {
    return ch == '_' || Py_UNICODE_ISALNUM(ch);
}

/* Appends text[start:end] to `out` unless it is a key of `skip` (NULL: none); -1 on error. */
static int append_run(PyObject *out, PyObject *text, Py_ssize_t start, Py_ssize_t end,
                      PyObject *skip) {
    PyObject *run = PyUnicode_Substring(text, start, end);
    if (run == NULL) {
        return -1;
    }
    int found = skip == NULL ? 0 : PyDict_Contains(skip, run);
    int failed = found < 0 || (found == 0 && PyList_Append(out, run) < 0);
    Py_DECREF(run);
    return failed ? -1 : 0;
}

PyObject *word_runs(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    Py_ssize_t min_len;
    if (!arity("word_runs", nargs, 2) || !arg_typed("word_runs", 1, args[0], &PyUnicode_Type) ||
        !arg_ssize(args[1], &min_len)) {
        return NULL;
    }
    PyObject *text = args[0];
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
        if (i - start >= min_len && append_run(out, text, start, i, NULL) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* SentencePiece's mark for a space (U+2581) */
#define SPACE_MARK 0x2581

/* cached_piece_ids: a text's token ids from the ids kept for its pieces (token_pieces.py).
 * The text is read as "▁" + text with every " " as "▁"; a piece is a run of "▁" and the
 * characters up to the next "▁" (re.findall("▁+[^▁]*") over it). None as soon as a piece
 * is not in `kept` (or its ids are not a list): the caller tokenizes and keeps it. */
PyObject *cached_piece_ids(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "cached_piece_ids";
    if (!arity(name, nargs, 2) || !arg_typed(name, 1, args[0], &PyUnicode_Type) ||
        !arg_typed(name, 2, args[1], &PyDict_Type)) {
        return NULL;
    }
    PyObject *text = args[0], *kept = args[1];
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS4 maxchar = PyUnicode_MAX_CHAR_VALUE(text);
    PyObject *marked = PyUnicode_New(n + 1, maxchar > SPACE_MARK ? maxchar : SPACE_MARK);
    if (marked == NULL) {
        return NULL;
    }
    int kind = PyUnicode_KIND(text), marked_kind = PyUnicode_KIND(marked);
    const void *data = PyUnicode_DATA(text);
    void *marked_data = PyUnicode_DATA(marked);
    PyUnicode_WRITE(marked_kind, marked_data, 0, SPACE_MARK);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        PyUnicode_WRITE(marked_kind, marked_data, i + 1, ch == ' ' ? SPACE_MARK : ch);
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(marked);
        return NULL;
    }
    Py_ssize_t size = n + 1, i = 0;
    while (i < size) { /* marked[i] is a mark here: the text starts with one, and each
                          piece ends where the next run of marks begins */
        Py_ssize_t start = i;
        while (i < size && PyUnicode_READ(marked_kind, marked_data, i) == SPACE_MARK) {
            i++;
        }
        while (i < size && PyUnicode_READ(marked_kind, marked_data, i) != SPACE_MARK) {
            i++;
        }
        PyObject *piece = PyUnicode_Substring(marked, start, i);
        if (piece == NULL) {
            goto fail;
        }
        PyObject *ids = PyDict_GetItemWithError(kept, piece); /* borrowed */
        Py_DECREF(piece);
        if (ids == NULL) {
            if (PyErr_Occurred()) {
                goto fail;
            }
            goto missing;
        }
        if (!PyList_CheckExact(ids)) {
            goto missing;
        }
        Py_ssize_t end = PyList_GET_SIZE(out);
        if (PyList_SetSlice(out, end, end, ids) < 0) {
            goto fail;
        }
    }
    Py_DECREF(marked);
    return out;
missing:
    Py_DECREF(marked);
    Py_DECREF(out);
    Py_RETURN_NONE;
fail:
    Py_DECREF(marked);
    Py_DECREF(out);
    return NULL;
}

static inline int is_ascii_lower(Py_UCS4 ch) {
    return ch >= 'a' && ch <= 'z';
}

/* unknown_words: the words of `text` that `known` lacks, in order, repeats kept (the typo
 * corrector's candidates, spelling.py): `text` cut into runs of a-z and runs of anything
 * else (re.findall("[a-z]+|[^a-z]+")), the runs that are letters (str.isalpha) and not
 * keys of `known`. */
PyObject *unknown_words(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "unknown_words";
    if (!arity(name, nargs, 2) || !arg_typed(name, 1, args[0], &PyUnicode_Type) ||
        !arg_typed(name, 2, args[1], &PyDict_Type)) {
        return NULL;
    }
    PyObject *text = args[0], *known = args[1];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t start = i;
        int letters = 1;
        if (is_ascii_lower(PyUnicode_READ(kind, data, i))) {
            while (i < n && is_ascii_lower(PyUnicode_READ(kind, data, i))) {
                i++;
            }
        } else {
            while (i < n) {
                Py_UCS4 ch = PyUnicode_READ(kind, data, i);
                if (is_ascii_lower(ch)) {
                    break;
                }
                letters = letters && Py_UNICODE_ISALPHA(ch);
                i++;
            }
        }
        if (letters && append_run(out, text, start, i, known) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* the recommender's term characters: [a-z0-9] (its `[a-z0-9]+`; '_' is none of them) */
static inline int term_char(Py_UCS4 ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* the terms of lowered[start:end]: its runs of term characters, each not in `stop_words`
 * given to `stem`, appended to `terms`; how many (-1 with an error set), the first of them
 * in *first (borrowed: `terms` holds it). Where `whole` is given and the first term's run is
 * all of lowered[start:end], that run's string goes to *whole (a new reference, its hash
 * made by the stop-word test; else NULL), for the caller to use rather than a copy. `stem`
 * runs Python code: `lowered`, a str, cannot change under it. */
static Py_ssize_t append_terms(PyObject *lowered, Py_ssize_t start, Py_ssize_t end,
                               PyObject *stop_words, PyObject *stem, PyObject *terms,
                               PyObject **first, PyObject **whole) {
    int kind = PyUnicode_KIND(lowered);
    const void *data = PyUnicode_DATA(lowered);
    Py_ssize_t found = 0, i = start;
    while (i < end) {
        if (!term_char(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t run = i;
        while (i < end && term_char(PyUnicode_READ(kind, data, i))) {
            i++;
        }
        PyObject *word = PyUnicode_Substring(lowered, run, i);
        int stop = word == NULL ? -1 : PySet_Contains(stop_words, word);
        PyObject *term = stop == 0 ? PyObject_CallOneArg(stem, word) : NULL;
        if (stop < 0 || (stop == 0 && (term == NULL || PyList_Append(terms, term) < 0))) {
            Py_XDECREF(word);
            Py_XDECREF(term);
            return -1;
        }
        if (term != NULL) {
            if (found++ == 0) {
                *first = term;
                if (whole != NULL && run == start && i == end) {
                    Py_INCREF(word);
                    *whole = word;
                }
            }
            Py_DECREF(term);
        }
        Py_DECREF(word);
    }
    return found;
}

/* text.lower(), checked to be a str (a subclass's lower may answer anything) */
static PyObject *lowered_text(PyObject *text) {
    PyObject *lowered = PyObject_CallMethod(text, "lower", NULL);
    if (lowered != NULL && !PyUnicode_Check(lowered)) {
        PyErr_SetString(PyExc_TypeError, "text.lower() must return a str");
        Py_CLEAR(lowered);
    }
    return lowered;
}

/* stemmed_terms(text, stop_words, stem): see module.c. The runs of [a-z0-9] in
 * text.lower() (what the recommender's `[a-z0-9]+` finds; '_' is no letter of it), each
 * not in `stop_words` given to `stem`, whose answers are the terms. */
PyObject *stemmed_terms(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "stemmed_terms";
    if (!arity(name, nargs, 3) || !arg_typed(name, 1, args[0], &PyUnicode_Type) ||
        !arg_typed(name, 2, args[1], &PyFrozenSet_Type)) {
        return NULL;
    }
    PyObject *lowered = lowered_text(args[0]);
    if (lowered == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0), *first = NULL;
    if (out != NULL && append_terms(lowered, 0, PyUnicode_GET_LENGTH(lowered), args[1],
                                    args[2], out, &first, NULL) < 0) {
        Py_CLEAR(out);
    }
    Py_DECREF(lowered);
    return out;
}

/* what str.strip takes off each end of a message's piece for its word (text.py's WORD_EDGES) */
static inline int word_edge(Py_UCS4 ch) {
    return ch != 0 && ch < 128 && strchr(".,!?;:'\"()[]", (int)ch) != NULL;
}

/* message_terms(text, stop_words, stem): see module.c. One pass over text.lower(): its
 * pieces between whitespace (str.split's) and '_', each stripped of word_edge characters
 * for its word; every piece's terms, and each distinct word that is exactly one term. A
 * stripped character is no term character, so a piece's terms are its word's. */
PyObject *message_terms(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "message_terms";
    if (!arity(name, nargs, 3) || !arg_typed(name, 1, args[0], &PyUnicode_Type) ||
        !arg_typed(name, 2, args[1], &PyFrozenSet_Type)) {
        return NULL;
    }
    PyObject *lowered = lowered_text(args[0]);
    if (lowered == NULL) {
        return NULL;
    }
    PyObject *terms = PyList_New(0), *words = PyDict_New(), *result = NULL;
    if (terms == NULL || words == NULL) {
        goto done;
    }
    int kind = PyUnicode_KIND(lowered);
    const void *data = PyUnicode_DATA(lowered);
    Py_ssize_t n = PyUnicode_GET_LENGTH(lowered), i = 0;
    while (i < n) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISSPACE(ch) || ch == '_') {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        while (i < n && !Py_UNICODE_ISSPACE(ch = PyUnicode_READ(kind, data, i)) && ch != '_') {
            i++;
        }
        Py_ssize_t end = i;
        while (start < end && word_edge(PyUnicode_READ(kind, data, start))) {
            start++;
        }
        while (end > start && word_edge(PyUnicode_READ(kind, data, end - 1))) {
            end--;
        }
        PyObject *first = NULL, *whole = NULL;
        Py_ssize_t found =
            append_terms(lowered, start, end, args[1], args[2], terms, &first, &whole);
        if (found == 1) { /* first kept: the dict keeps a word where it first appears */
            PyObject *word = whole != NULL ? whole : PyUnicode_Substring(lowered, start, end);
            if (word == NULL || PyDict_SetDefault(words, word, first) == NULL) {
                Py_XDECREF(word);
                goto done;
            }
            Py_DECREF(word);
        } else {
            Py_XDECREF(whole);
            if (found < 0) {
                goto done;
            }
        }
    }
    PyObject *pairs = PyDict_Items(words);
    if (pairs != NULL) {
        result = PyTuple_Pack(2, terms, pairs);
        Py_DECREF(pairs);
    }
done:
    Py_XDECREF(terms);
    Py_XDECREF(words);
    Py_DECREF(lowered);
    return result;
}
