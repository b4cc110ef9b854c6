/* answer_payload: the personalize answer as JSON-ready data (services/decisions/records.py,
 * personalize_payload) in one call: the same nested dicts and lists, keys in the same order,
 * each dict made at its final size. A part of another shape than the decision service makes
 * (a ranking's item that is no pair, a cited article that is no triple) leaves the whole
 * answer to the Python path: each maker then answers NULL with no error set, and the makers
 * after a failure make nothing. */
#include "native.h"

/* the names read and written, interned once */
enum {
    K_DECISION_ID, K_INTENT, K_NAME, K_CONFIDENCE, K_RANKING, K_LANGUAGE, K_FOLLOW_UP,
    K_FALLBACK, K_TRIGGERED, K_REASON, K_ARTICLES, K_ID, K_TITLE, K_SCORE, K_REASONS, K_URL,
    K_SNIPPET, K_RESPONSE, K_TEMPLATE_ID, K_VARIANT, K_TEXT, K_PROPENSITY, K_USER, K_SEGMENT,
    K_CONSENT, K_PERSONALIZED, K_EXPERIMENT_ARM, K_ARM, K_MODEL_VERSIONS, K_TIMINGS_MS,
    K_RECORD, K_ARTICLE_ID, N_KEYS
};
static const char *const KEYS[] = {
    "decision_id", "intent", "name", "confidence", "ranking", "language", "follow_up",
    "fallback", "triggered", "reason", "articles", "id", "title", "score", "reasons", "url",
    "snippet", "response", "template_id", "variant", "text", "propensity", "user", "segment",
    "consent", "personalized", "experiment_arm", "arm", "model_versions", "timings_ms",
    "record", "article_id",
};
static PyObject *keys[N_KEYS];

/* float(value) as a new reference (the float itself when it is one); `value` is stolen */
static PyObject *as_float(PyObject *value) {
    if (value == NULL || PyFloat_CheckExact(value)) {
        return value;
    }
    PyObject *out = PyErr_Occurred() ? NULL : PyNumber_Float(value);
    Py_DECREF(value);
    return out;
}

/* a new dict of `n` (key, value) pairs, each value a new reference (stolen, NULL: failed) */
static PyObject *dict_of(int n, const int *names, PyObject **values) {
    PyObject *out = NULL;
    int failed = 0;
    for (int k = 0; k < n; k++) {
        failed = failed || values[k] == NULL;
    }
    if (!failed) {
        out = NEW_SIZED_DICT(n);
    }
    for (int k = 0; out != NULL && k < n; k++) {
        if (PyDict_SetItem(out, keys[names[k]], values[k]) < 0) {
            Py_CLEAR(out);
        }
    }
    for (int k = 0; k < n; k++) {
        Py_XDECREF(values[k]);
    }
    return out;
}

/* getattr(obj, name) */
static PyObject *attr(PyObject *obj, int name) {
    return obj == NULL || PyErr_Occurred() ? NULL : PyObject_GetAttr(obj, keys[name]);
}

/* mapping[name] of a dict (KeyError when missing) */
static PyObject *item(PyObject *dict, int name) {
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(dict, keys[name]);
    if (found == NULL && !PyErr_Occurred()) {
        PyErr_SetObject(PyExc_KeyError, keys[name]);
    }
    return Py_XNewRef(found);
}

/* [{"name": n, "confidence": float(p)} for n, p in ranking] */
static PyObject *ranking_of(PyObject *ranking) {
    if (ranking == NULL || !PyList_CheckExact(ranking) || PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(ranking);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(ranking, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_CLEAR(out);
            break;
        }
        static const int names[] = {K_NAME, K_CONFIDENCE};
        PyObject *values[] = {Py_NewRef(PyTuple_GET_ITEM(pair, 0)),
                              as_float(Py_NewRef(PyTuple_GET_ITEM(pair, 1)))};
        PyObject *one = dict_of(2, names, values);
        if (one == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, one);
    }
    return out;
}

/* the cited articles, (recommendation, url, snippet) each, as the answer's dicts */
static PyObject *articles_of(PyObject *cited) {
    if (!PyList_CheckExact(cited) || PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(cited);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(cited, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
            Py_CLEAR(out);
            break;
        }
        PyObject *article = PyTuple_GET_ITEM(entry, 0);
        PyObject *reasons = attr(article, K_REASONS);
        PyObject *title = attr(article, K_TITLE);
        static const int names[] = {K_ID, K_TITLE, K_SCORE, K_REASONS, K_URL, K_SNIPPET};
        PyObject *values[] = {
            attr(article, K_ARTICLE_ID),
            title,
            as_float(attr(article, K_SCORE)),
            reasons == NULL || PyErr_Occurred() ? NULL : PySequence_List(reasons),
            Py_NewRef(PyTuple_GET_ITEM(entry, 1)),
            Py_NewRef(PyTuple_GET_ITEM(entry, 2)),
        };
        Py_XDECREF(reasons);
        PyObject *one = dict_of(6, names, values);
        if (one == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, one);
    }
    return out;
}

/* answer_payload(decision, prediction, cited, segment, consent, timings): see module.c */
PyObject *answer_payload(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("answer_payload", nargs, 6) || intern_names(keys, KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *decision = args[0], *prediction = args[1];
    PyObject *record = PyDict_CheckExact(decision) && PyBool_Check(args[4])
                           ? PyDict_GetItemWithError(decision, keys[K_RECORD])
                           : NULL;
    if (record == NULL || !PyDict_CheckExact(record)) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE; /* the Python path reads (or refuses) it */
    }
    Py_INCREF(record);
    PyObject *fallback = attr(prediction, K_FALLBACK), *triggered = attr(fallback, K_TRIGGERED);
    int fired = triggered == NULL ? -1 : PyObject_IsTrue(triggered);
    Py_XDECREF(triggered);
    static const int intent_names[] = {K_NAME, K_CONFIDENCE, K_RANKING, K_LANGUAGE, K_FOLLOW_UP};
    PyObject *ranking = attr(prediction, K_RANKING);
    PyObject *intent_values[] = {
        attr(prediction, K_NAME),
        as_float(attr(prediction, K_CONFIDENCE)),
        ranking_of(ranking),
        attr(prediction, K_LANGUAGE),
        attr(prediction, K_FOLLOW_UP),
    };
    Py_XDECREF(ranking);
    static const int fallback_names[] = {K_TRIGGERED, K_REASON};
    PyObject *fallback_values[] = {
        fired < 0 ? NULL : Py_NewRef(fired ? Py_True : Py_False),
        attr(fallback, K_REASON),
    };
    Py_XDECREF(fallback);
    static const int response_names[] = {K_TEMPLATE_ID, K_VARIANT, K_TEXT, K_PROPENSITY};
    PyObject *response_values[] = {
        item(record, K_TEMPLATE_ID),
        item(record, K_VARIANT),
        item(decision, K_TEXT),
        as_float(item(record, K_PROPENSITY)),
    };
    static const int user_names[] = {K_SEGMENT, K_CONSENT, K_PERSONALIZED};
    PyObject *user_values[] = {
        Py_NewRef(args[3]),
        Py_NewRef(args[4]),
        item(record, K_PERSONALIZED),
    };
    static const int names[] = {K_DECISION_ID, K_INTENT,   K_FALLBACK,       K_ARTICLES,
                                K_RESPONSE,    K_USER,     K_EXPERIMENT_ARM, K_MODEL_VERSIONS,
                                K_TIMINGS_MS};
    PyObject *values[] = {
        item(record, K_DECISION_ID),
        dict_of(5, intent_names, intent_values),
        dict_of(2, fallback_names, fallback_values),
        articles_of(args[2]),
        dict_of(4, response_names, response_values),
        dict_of(3, user_names, user_values),
        item(record, K_ARM),
        item(record, K_MODEL_VERSIONS),
        Py_NewRef(args[5]),
    };
    Py_DECREF(record);
    PyObject *out = dict_of(9, names, values);
    if (out == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE; /* a part of another shape: the Python path reads it */
    }
    return out;
}
