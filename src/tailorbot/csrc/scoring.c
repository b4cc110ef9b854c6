/* The hybrid recommender's candidates scored in one call: each article's weighted signals
 * and their sum (HybridRecommender._weighted and the loop of recommend(), its Python path,
 * in models/recommend/hybrid.py, which documents the signals). */
#include "native.h"

/* the signal names in hybrid.SIGNAL_ORDER: the weighted dict's order, the sum's order */
enum { TEXT, INTENT, HISTORY, RESOLUTION, HELPFULNESS, COOCCURRENCE, ITEM_KNN, POPULARITY };
static const char *const SIGNALS[] = {
    "text", "intent", "history", "segment_resolution_rate", "segment_helpfulness",
    "cooccurrence", "item_knn", "popularity",
};
#define N_SIGNALS 8
static PyObject *names[N_SIGNALS];
/* the attributes read, interned once */
enum { A_ID, A_INTENTS, A_AUDIENCE, A_TIERS, A_LANGUAGES, A_RESOLUTION, A_FEEDBACK, A_RATE };
static const char *const ATTRIBUTES[] = {
    "id", "intents", "audience", "tiers", "languages", "resolution", "feedback", "rate",
};
#define N_ATTRIBUTES 8
static PyObject *attributes[N_ATTRIBUTES];

/* *out = the float `value` (1); 0: not an exact float (the Python path multiplies it) */
static int exact_float(PyObject *value, double *out) {
    if (!PyFloat_CheckExact(value)) {
        return 0;
    }
    *out = PyFloat_AS_DOUBLE(value);
    return 1;
}

/* a float attribute `name` of `obj` into *out: 1, 0 (not an exact float), -1 (error) */
static int float_attr(PyObject *obj, PyObject *name, double *out) {
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int found = exact_float(value, out);
    Py_DECREF(value);
    return found;
}

/* map[key] (borrowed), NULL for none; a NULL map holds nothing */
static PyObject *lookup(PyObject *map, PyObject *key) {
    return map == NULL ? NULL : PyDict_GetItemWithError(map, key);
}

/* weighted[signal] = weight * value when the product is not zero; the sum goes on */
static int put(PyObject *weighted, int signal, double weight, double value, double *sum) {
    double product = weight * value;
    if (product == 0.0) {
        return 0;
    }
    *sum += product;
    PyObject *number = PyFloat_FromDouble(product);
    if (number == NULL) {
        return -1;
    }
    int failed = PyDict_SetItem(weighted, names[signal], number);
    Py_DECREF(number);
    return failed;
}

/* whether `value` (None: not known) passes a list of allowed values (empty: any), as
 * Audience.matches reads its tiers and its languages: 1, 0, or -1 (an error) */
static int allowed(PyObject *audience, PyObject *attribute, PyObject *value) {
    if (value == Py_None) {
        return 1;
    }
    PyObject *values = PyObject_GetAttr(audience, attribute);
    if (values == NULL) {
        return -1;
    }
    int ok = PyObject_Not(values);
    if (ok == 0) {
        ok = PySequence_Contains(values, value);
    }
    Py_DECREF(values);
    return ok;
}

/* Audience.matches(tier, language) of the article's audience: 1, 0, or -1 (an error) */
static int suits(PyObject *article, PyObject *tier, PyObject *language) {
    PyObject *audience = PyObject_GetAttr(article, attributes[A_AUDIENCE]);
    if (audience == NULL) {
        return -1;
    }
    int ok = allowed(audience, attributes[A_TIERS], tier);
    if (ok > 0) {
        ok = allowed(audience, attributes[A_LANGUAGES], language);
    }
    Py_DECREF(audience);
    return ok;
}

/* One article's weighted signals into `weighted` and their sum into *sum. 1: done; 0: a
 * value that is not an exact float (the Python path scores this call); -1: an error. */
static int weigh(PyObject *weighted, double *sum, PyObject *article, PyObject *article_id,
                 PyObject *args_text, PyObject *intent, double confidence, PyObject *history,
                 PyObject *rates, PyObject *links, PyObject *similar, PyObject *popularity,
                 const double *w) {
    int topical = 0; /* a text or an intent signal, whatever its weight */
    double x;
    PyObject *found = PyDict_GetItemWithError(args_text, article_id);
    if (found == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (found != NULL) {
        if (!exact_float(found, &x)) {
            return 0;
        }
        topical = 1;
        if (put(weighted, TEXT, w[TEXT], x, sum) < 0) {
            return -1;
        }
    }
    if (intent != Py_None && PyObject_IsTrue(intent)) {
        PyObject *intents = PyObject_GetAttr(article, attributes[A_INTENTS]);
        if (intents == NULL) {
            return -1;
        }
        int in = PySequence_Contains(intents, intent);
        Py_DECREF(intents);
        if (in < 0) {
            return -1;
        }
        if (in) {
            topical = 1;
            if (put(weighted, INTENT, w[INTENT], confidence, sum) < 0) {
                return -1;
            }
        }
    }
    if (history != Py_None) { /* (resolved, helpful): the user is personalized */
        int resolved = PySequence_Contains(PyTuple_GET_ITEM(history, 0), article_id);
        if (resolved < 0) {
            return -1;
        }
        double earned = -1.0;
        if (resolved) {
            earned = 1.0;
        } else if (topical) {
            int helpful = PySequence_Contains(PyTuple_GET_ITEM(history, 1), article_id);
            if (helpful < 0) {
                return -1;
            }
            earned = helpful ? 0.5 : -1.0;
        }
        if (earned >= 0.0 && put(weighted, HISTORY, w[HISTORY], earned, sum) < 0) {
            return -1;
        }
    }
    found = lookup(rates, article_id);
    if (found == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (found != NULL) {
        for (int k = 0; k < 2; k++) {
            PyObject *rate = PyObject_GetAttr(found, attributes[A_RESOLUTION + k]);
            if (rate == NULL) {
                return -1;
            }
            int got = float_attr(rate, attributes[A_RATE], &x);
            Py_DECREF(rate);
            if (got <= 0) {
                return got;
            }
            if (put(weighted, RESOLUTION + k, w[RESOLUTION + k], x, sum) < 0) {
                return -1;
            }
        }
    }
    found = lookup(links, article_id);
    if (found == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (found != NULL) {
        if (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) < 1 ||
            !exact_float(PyTuple_GET_ITEM(found, 0), &x)) {
            return 0;
        }
        if (put(weighted, COOCCURRENCE, w[COOCCURRENCE], x, sum) < 0) {
            return -1;
        }
    }
    PyObject *last[2] = {similar, popularity};
    for (int k = 0; k < 2; k++) {
        found = lookup(last[k], article_id);
        if (found == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (found != NULL) {
            if (!exact_float(found, &x)) {
                return 0;
            }
            if (put(weighted, ITEM_KNN + k, w[ITEM_KNN + k], x, sum) < 0) {
                return -1;
            }
        }
    }
    return 1;
}

/* score_articles(candidates, articles, unhelpful, for_all, tier, language, text, intent,
 * confidence, history, evidence, weights): see module.c */
PyObject *score_articles(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *candidates, *articles, *unhelpful, *for_all, *tier, *language, *text, *intent;
    PyObject *history, *evidence, *weights;
    double confidence;
    if (!PyArg_ParseTuple(args, "OO!OOOOO!OdOO!O!", &candidates, &PyDict_Type, &articles,
                          &unhelpful, &for_all, &tier, &language, &PyDict_Type, &text, &intent,
                          &confidence, &history, &PyTuple_Type, &evidence, &PyTuple_Type,
                          &weights)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(weights) != N_SIGNALS || PyTuple_GET_SIZE(evidence) != 4 ||
        (history != Py_None && (!PyTuple_Check(history) || PyTuple_GET_SIZE(history) != 2))) {
        PyErr_SetString(PyExc_ValueError, "8 weights, 4 evidence maps, history None or a pair");
        return NULL;
    }
    double w[N_SIGNALS];
    for (int k = 0; k < N_SIGNALS; k++) {
        if (!exact_float(PyTuple_GET_ITEM(weights, k), &w[k])) {
            Py_RETURN_NONE;
        }
    }
    PyObject *maps[4]; /* NULL: an empty mapping that is not a dict (a shared empty proxy) */
    for (int k = 0; k < 4; k++) {
        maps[k] = PyTuple_GET_ITEM(evidence, k);
        if (!PyDict_Check(maps[k])) {
            Py_ssize_t size = PyObject_Length(maps[k]);
            if (size < 0) {
                return NULL;
            }
            if (size > 0) {
                Py_RETURN_NONE;
            }
            maps[k] = NULL;
        }
    }
    for (int k = 0; k < N_SIGNALS; k++) {
        if (names[k] == NULL && (names[k] = PyUnicode_InternFromString(SIGNALS[k])) == NULL) {
            return NULL;
        }
    }
    for (int k = 0; k < N_ATTRIBUTES; k++) {
        if (attributes[k] == NULL &&
            (attributes[k] = PyUnicode_InternFromString(ATTRIBUTES[k])) == NULL) {
            return NULL;
        }
    }
    PyObject *ranked = PyList_New(0);
    PyObject *iterator = PyObject_GetIter(candidates);
    if (ranked == NULL || iterator == NULL) {
        goto fail;
    }
    PyObject *article_id;
    while ((article_id = PyIter_Next(iterator)) != NULL) {
        PyObject *article = PyDict_GetItemWithError(articles, article_id);
        int keep = article != NULL;
        if (keep) {
            int vetoed = PySequence_Contains(unhelpful, article_id);
            keep = vetoed == 0 ? 1 : (vetoed < 0 ? -1 : 0);
        }
        if (keep > 0) {
            int everyone = PySequence_Contains(for_all, article_id);
            if (everyone == 0) {
                keep = suits(article, tier, language);
            } else if (everyone < 0) {
                keep = -1;
            }
        }
        if (keep == 0 && article == NULL && PyErr_Occurred()) {
            keep = -1;
        }
        PyObject *weighted = NULL, *entry = NULL;
        double sum = 0.0;
        int weighed = keep;
        if (keep > 0) {
            weighted = PyDict_New();
            weighed = weighted == NULL ? -1
                                       : weigh(weighted, &sum, article, article_id, text, intent,
                                               confidence, history, maps[0], maps[1], maps[2],
                                               maps[3], w);
        }
        if (weighed > 0 && sum > 0.0) {
            PyObject *id = PyObject_GetAttr(article, attributes[A_ID]);
            entry = id == NULL ? NULL : Py_BuildValue("(dNOO)", -sum, id, article, weighted);
            weighed = entry == NULL || PyList_Append(ranked, entry) < 0 ? -1 : 1;
        }
        Py_XDECREF(entry);
        Py_XDECREF(weighted);
        Py_DECREF(article_id);
        if (weighed < 0) {
            goto fail;
        }
        if (keep > 0 && weighed == 0) { /* a value the Python path must multiply */
            Py_DECREF(iterator);
            Py_DECREF(ranked);
            Py_RETURN_NONE;
        }
    }
    if (PyErr_Occurred()) {
        goto fail;
    }
    Py_DECREF(iterator);
    return ranked;
fail:
    Py_XDECREF(iterator);
    Py_XDECREF(ranked);
    return NULL;
}
