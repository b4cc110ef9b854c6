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

/* map[key] as a new reference, NULL when it has none or None (as `.get()` and `is None`
 * read it: check PyErr_Occurred); a NULL map holds nothing. Held, since the calls that
 * follow may run Python code that changes the map. */
static PyObject *fetch(PyObject *map, PyObject *key) {
    PyObject *found = map == NULL ? NULL : PyDict_GetItemWithError(map, key);
    if (found == NULL || found == Py_None) {
        return NULL;
    }
    Py_INCREF(found);
    return found;
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

/* The rate of evidence `found` (an ArticleEvidence) for `part` (A_RESOLUTION or
 * A_FEEDBACK): 1, 0 (not an exact float), -1 (an error) */
static int evidence_rate(PyObject *found, int part, double *out) {
    PyObject *rate = PyObject_GetAttr(found, attributes[part]);
    if (rate == NULL) {
        return -1;
    }
    int got = float_attr(rate, attributes[A_RATE], out);
    Py_DECREF(rate);
    return got;
}

/* One article's weighted signals into `weighted` and their sum into *sum, in the order and
 * by the rules of HybridRecommender._weighted. 1: done; 0: a value that is not an exact
 * float (the Python path scores this call); -1: an error. */
static int weigh(PyObject *weighted, double *sum, PyObject *article, PyObject *article_id,
                 PyObject *text, PyObject *intent, double confidence, PyObject *history,
                 PyObject *const *maps, const double *w) {
    int topical = 0; /* a text or an intent signal, whatever its weight */
    double x;
    PyObject *found = fetch(text, article_id);
    if (found != NULL) {
        int plain = exact_float(found, &x);
        Py_DECREF(found);
        if (!plain) {
            return 0;
        }
        topical = 1;
        if (put(weighted, TEXT, w[TEXT], x, sum) < 0) {
            return -1;
        }
    } else if (PyErr_Occurred()) {
        return -1;
    }
    int wanted = intent == Py_None ? 0 : PyObject_IsTrue(intent);
    if (wanted < 0) {
        return -1;
    }
    if (wanted) {
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
        } else {
            int helpful = PySequence_Contains(PyTuple_GET_ITEM(history, 1), article_id);
            if (helpful < 0) {
                return -1;
            }
            earned = helpful && topical ? 0.5 : -1.0;
        }
        if (earned >= 0.0 && put(weighted, HISTORY, w[HISTORY], earned, sum) < 0) {
            return -1;
        }
    }
    found = fetch(maps[0], article_id); /* rates */
    if (found != NULL) {
        int got = 1;
        for (int k = 0; got > 0 && k < 2; k++) {
            got = evidence_rate(found, A_RESOLUTION + k, &x);
            if (got > 0 && put(weighted, RESOLUTION + k, w[RESOLUTION + k], x, sum) < 0) {
                got = -1;
            }
        }
        Py_DECREF(found);
        if (got <= 0) {
            return got;
        }
    } else if (PyErr_Occurred()) {
        return -1;
    }
    found = fetch(maps[1], article_id); /* links: (strength, partner) */
    if (found != NULL) {
        int plain = PyTuple_CheckExact(found) && PyTuple_GET_SIZE(found) >= 1 &&
                    exact_float(PyTuple_GET_ITEM(found, 0), &x);
        Py_DECREF(found);
        if (!plain) {
            return 0;
        }
        if (put(weighted, COOCCURRENCE, w[COOCCURRENCE], x, sum) < 0) {
            return -1;
        }
    } else if (PyErr_Occurred()) {
        return -1;
    }
    for (int k = 0; k < 2; k++) { /* similar, popularity */
        found = fetch(maps[2 + k], article_id);
        if (found != NULL) {
            int plain = exact_float(found, &x);
            Py_DECREF(found);
            if (!plain) {
                return 0;
            }
            if (put(weighted, ITEM_KNN + k, w[ITEM_KNN + k], x, sum) < 0) {
                return -1;
            }
        } else if (PyErr_Occurred()) {
            return -1;
        }
    }
    return 1;
}

/* score_articles(candidates, articles, unhelpful, for_all, tier, language, text, intent,
 * confidence, history, evidence, weights): see module.c */
PyObject *score_articles(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *candidates, *articles, *unhelpful, *for_all, *tier, *language, *text, *intent;
    PyObject *confidence_obj, *history, *evidence, *weights;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO!O!", &candidates, &articles, &unhelpful, &for_all,
                          &tier, &language, &text, &intent, &confidence_obj, &history,
                          &PyTuple_Type, &evidence, &PyTuple_Type, &weights)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(weights) != N_SIGNALS || PyTuple_GET_SIZE(evidence) != 4 ||
        (history != Py_None && (!PyTuple_Check(history) || PyTuple_GET_SIZE(history) != 2))) {
        PyErr_SetString(PyExc_ValueError, "8 weights, 4 evidence maps, history None or a pair");
        return NULL;
    }
    /* what the Python loop reads through a method another type may change (a dict
     * subclass's get) or multiplies as it is (a numpy scalar, a Decimal): left to it */
    double confidence, w[N_SIGNALS];
    if (!PyDict_CheckExact(articles) || !PyDict_CheckExact(text) ||
        !exact_float(confidence_obj, &confidence)) {
        Py_RETURN_NONE;
    }
    for (int k = 0; k < N_SIGNALS; k++) {
        if (!exact_float(PyTuple_GET_ITEM(weights, k), &w[k])) {
            Py_RETURN_NONE;
        }
    }
    PyObject *maps[4]; /* NULL: an empty mapping that is not a dict (a shared empty proxy) */
    for (int k = 0; k < 4; k++) {
        maps[k] = PyTuple_GET_ITEM(evidence, k);
        if (!PyDict_CheckExact(maps[k])) {
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
    PyObject *iterator = ranked == NULL ? NULL : PyObject_GetIter(candidates);
    if (iterator == NULL) {
        Py_XDECREF(ranked);
        return NULL;
    }
    PyObject *article_id;
    int done = 1; /* 1: go on; 0: leave the call to the Python loop; -1: an error */
    while (done > 0 && (article_id = PyIter_Next(iterator)) != NULL) {
        PyObject *article = fetch(articles, article_id);
        int keep = article != NULL ? 1 : (PyErr_Occurred() ? -1 : 0);
        if (keep > 0) {
            int vetoed = PySequence_Contains(unhelpful, article_id);
            keep = vetoed < 0 ? -1 : !vetoed;
        }
        if (keep > 0) {
            int everyone = PySequence_Contains(for_all, article_id);
            keep = everyone < 0 ? -1 : (everyone ? 1 : suits(article, tier, language));
        }
        done = keep < 0 ? -1 : 1;
        if (keep > 0) {
            double sum = 0.0;
            PyObject *weighted = PyDict_New();
            done = weighted == NULL ? -1
                                    : weigh(weighted, &sum, article, article_id, text, intent,
                                            confidence, history, maps, w);
            if (done > 0 && sum > 0.0) { /* nothing speaks for it: left out */
                /* (-sum, article.id, article, weighted), packed directly: Py_BuildValue
                 * parses its format for every entry */
                PyObject *id = PyObject_GetAttr(article, attributes[A_ID]);
                PyObject *negative = id == NULL ? NULL : PyFloat_FromDouble(-sum);
                PyObject *entry =
                    negative == NULL ? NULL : PyTuple_Pack(4, negative, id, article, weighted);
                done = entry == NULL || PyList_Append(ranked, entry) < 0 ? -1 : 1;
                Py_XDECREF(entry);
                Py_XDECREF(negative);
                Py_XDECREF(id);
            }
            Py_XDECREF(weighted);
        }
        Py_XDECREF(article);
        Py_DECREF(article_id);
    }
    Py_DECREF(iterator);
    if (done < 0 || PyErr_Occurred()) {
        Py_DECREF(ranked);
        return NULL;
    }
    if (done == 0) { /* a value the Python loop must multiply */
        Py_DECREF(ranked);
        Py_RETURN_NONE;
    }
    return ranked;
}
