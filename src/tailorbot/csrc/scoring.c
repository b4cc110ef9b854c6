/* The hybrid recommender's candidates scored in one call: each article's weighted signals
 * and their sum (HybridRecommender._weighted and the loop of recommend(), its Python path,
 * in models/recommend/hybrid.py, which documents the signals), and the best k of them in
 * order. A candidate's signals stay C doubles until it is among the k returned: a decision
 * scores dozens of candidates and answers with three. */
#include "native.h"

/* the signal names in hybrid.SIGNAL_ORDER: the weighted dict's order, the sum's order */
enum { TEXT, INTENT, HISTORY, RESOLUTION, HELPFULNESS, COOCCURRENCE, ITEM_KNN, POPULARITY };
static const char *const SIGNALS[] = {
    "text", "intent", "history", "segment_resolution_rate", "segment_helpfulness",
    "cooccurrence", "item_knn", "popularity",
};
#define N_SIGNALS 8
static PyObject *names[N_SIGNALS];
/* the attributes read, interned once. An article's id and intents are not among them: the
 * id is its key in the articles' dict, its intents' ids the set `on_intent` (a KB article
 * is a pydantic model, whose every attribute read from C goes through its __getattr__ hook
 * at some 300 instructions) */
enum { A_AUDIENCE, A_TIERS, A_LANGUAGES, A_RESOLUTION, A_FEEDBACK, A_RATE };
static const char *const ATTRIBUTES[] = {
    "audience", "tiers", "languages", "resolution", "feedback", "rate",
};
#define N_ATTRIBUTES 6
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

/* products[signal] = weight * value; the sum goes on when the product is not zero (a zero
 * product is no signal: left out of the weighted dict, as the Python loop leaves it) */
static void put(double *products, int signal, double weight, double value, double *sum) {
    double product = weight * value;
    products[signal] = product;
    if (product != 0.0) {
        *sum += product;
    }
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

/* One article's weighted signals into `products` (zeroed first, in hybrid.SIGNAL_ORDER) and
 * their sum into *sum, in the order and by the rules of HybridRecommender._weighted. 1: done;
 * 0: a value that is not an exact float (the Python path scores this call); -1: an error. */
static int weigh(double *products, double *sum, PyObject *article_id, PyObject *matches,
                 PyObject *relevant, PyObject *on_intent, double confidence, PyObject *history,
                 PyObject *const *maps, const double *w) {
    int topical = 0; /* a text or an intent signal, whatever its weight */
    double x;
    memset(products, 0, N_SIGNALS * sizeof(double));
    int counts = PySet_Contains(relevant, article_id); /* its text match counts */
    if (counts < 0) {
        return -1;
    }
    PyObject *found = counts ? fetch(matches, article_id) : NULL;
    if (found != NULL) {
        int plain = exact_float(found, &x);
        Py_DECREF(found);
        if (!plain) {
            return 0;
        }
        topical = 1;
        put(products, TEXT, w[TEXT], x, sum);
    } else if (PyErr_Occurred()) {
        return -1;
    }
    int in = PySet_Contains(on_intent, article_id);
    if (in < 0) {
        return -1;
    }
    if (in) {
        topical = 1;
        put(products, INTENT, w[INTENT], confidence, sum);
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
        if (earned >= 0.0) {
            put(products, HISTORY, w[HISTORY], earned, sum);
        }
    }
    found = fetch(maps[0], article_id); /* rates */
    if (found != NULL) {
        int got = 1;
        for (int k = 0; got > 0 && k < 2; k++) {
            got = evidence_rate(found, A_RESOLUTION + k, &x);
            if (got > 0) {
                put(products, RESOLUTION + k, w[RESOLUTION + k], x, sum);
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
        put(products, COOCCURRENCE, w[COOCCURRENCE], x, sum);
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
            put(products, ITEM_KNN + k, w[ITEM_KNN + k], x, sum);
        } else if (PyErr_Occurred()) {
            return -1;
        }
    }
    return 1;
}

/* A candidate with a positive score: its sum, its id (an exact str) and article (both held)
 * and its weighted signals */
typedef struct {
    double sum;
    PyObject *id;
    PyObject *article;
    double products[N_SIGNALS];
} Scored;

/* whether `a` ranks before `b`, as the tuples (-sum, id) sort: the higher sum first, then
 * the lower id (candidate ids are unique, so the tuples never compare further) */
static int ranks_before(const Scored *a, const Scored *b) {
    if (a->sum != b->sum) {
        return a->sum > b->sum;
    }
    return PyUnicode_Compare(a->id, b->id) < 0; /* exact str: cannot fail */
}

/* `scored` into `best` (the `kept` best so far, best first, at most `cap`): taken over when
 * it ranks among them (the last one then let go), else let go; the new count */
static Py_ssize_t keep_best(Scored *best, Py_ssize_t kept, Py_ssize_t cap, Scored *scored) {
    if (kept == cap) {
        if (cap == 0 || !ranks_before(scored, &best[cap - 1])) {
            Py_DECREF(scored->id);
            Py_DECREF(scored->article);
            return kept;
        }
        kept--;
        Py_DECREF(best[kept].id);
        Py_DECREF(best[kept].article);
    }
    Py_ssize_t at = kept;
    while (at > 0 && ranks_before(scored, &best[at - 1])) {
        best[at] = best[at - 1];
        at--;
    }
    best[at] = *scored;
    return kept + 1;
}

/* [(-sum, id, article, weighted)] of the kept candidates, best first: weighted holds the
 * non-zero products in hybrid.SIGNAL_ORDER */
static PyObject *ranked_entries(const Scored *best, Py_ssize_t kept) {
    PyObject *ranked = PyList_New(kept);
    for (Py_ssize_t i = 0; ranked != NULL && i < kept; i++) {
        PyObject *weighted = PyDict_New();
        int failed = weighted == NULL;
        for (int s = 0; !failed && s < N_SIGNALS; s++) {
            if (best[i].products[s] != 0.0) {
                PyObject *number = PyFloat_FromDouble(best[i].products[s]);
                failed = number == NULL || PyDict_SetItem(weighted, names[s], number) < 0;
                Py_XDECREF(number);
            }
        }
        PyObject *negative = failed ? NULL : PyFloat_FromDouble(-best[i].sum);
        PyObject *entry = negative == NULL
                              ? NULL
                              : PyTuple_Pack(4, negative, best[i].id, best[i].article, weighted);
        Py_XDECREF(negative);
        Py_XDECREF(weighted);
        if (entry == NULL) {
            Py_CLEAR(ranked);
        } else {
            PyList_SET_ITEM(ranked, i, entry);
        }
    }
    return ranked;
}

/* score_articles(candidates, articles, unhelpful, for_all, tier, language, matches,
 * relevant, on_intent, confidence, history, evidence, weights, k): see module.c */
PyObject *score_articles(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char name[] = "score_articles";
    Py_ssize_t k;
    if (!arity(name, nargs, 14) || !arg_typed(name, 12, args[11], &PyTuple_Type) ||
        !arg_typed(name, 13, args[12], &PyTuple_Type) || !arg_ssize(args[13], &k)) {
        return NULL;
    }
    PyObject *candidates = args[0], *articles = args[1], *unhelpful = args[2];
    PyObject *for_all = args[3], *tier = args[4], *language = args[5], *matches = args[6];
    PyObject *relevant = args[7], *on_intent = args[8], *confidence_obj = args[9];
    PyObject *history = args[10], *evidence = args[11], *weights = args[12];
    if (k < 1) {
        PyErr_SetString(PyExc_ValueError, "k must be >= 1");
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
    if (!PyDict_CheckExact(articles) || !PyDict_CheckExact(matches) ||
        !PyAnySet_CheckExact(relevant) || !PyAnySet_CheckExact(on_intent) ||
        !exact_float(confidence_obj, &confidence)) {
        Py_RETURN_NONE;
    }
    for (int s = 0; s < N_SIGNALS; s++) {
        if (!exact_float(PyTuple_GET_ITEM(weights, s), &w[s])) {
            Py_RETURN_NONE;
        }
    }
    PyObject *maps[4]; /* NULL: an empty mapping that is not a dict (a shared empty proxy) */
    for (int m = 0; m < 4; m++) {
        maps[m] = PyTuple_GET_ITEM(evidence, m);
        if (!PyDict_CheckExact(maps[m])) {
            Py_ssize_t size = PyObject_Length(maps[m]);
            if (size < 0) {
                return NULL;
            }
            if (size > 0) {
                Py_RETURN_NONE;
            }
            maps[m] = NULL;
        }
    }
    if (intern_names(names, SIGNALS, N_SIGNALS) < 0 ||
        intern_names(attributes, ATTRIBUTES, N_ATTRIBUTES) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyObject_Length(candidates);
    if (n < 0) {
        return NULL;
    }
    Py_ssize_t cap = k < n ? k : n;
    /* the best `cap` so far, best first; only they become Python objects at the end */
    Scored *best = PyMem_Calloc(cap > 0 ? (size_t)cap : 1, sizeof(Scored));
    PyObject *iterator = best == NULL ? NULL : PyObject_GetIter(candidates);
    if (iterator == NULL) {
        PyMem_Free(best);
        return best == NULL ? PyErr_NoMemory() : NULL;
    }
    Py_ssize_t kept = 0;
    Scored scored;
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
            scored.sum = 0.0;
            done = weigh(scored.products, &scored.sum, article_id, matches, relevant,
                         on_intent, confidence, history, maps, w);
            if (done > 0 && scored.sum > 0.0) { /* nothing speaks for it: left out */
                if (!PyUnicode_CheckExact(article_id)) {
                    done = 0; /* ordered by its own `<`: Python's sort */
                } else {
                    scored.id = article_id;
                    scored.article = article;
                    Py_INCREF(article_id);
                    Py_INCREF(article);
                    kept = keep_best(best, kept, cap, &scored);
                }
            }
        }
        Py_XDECREF(article);
        Py_DECREF(article_id);
    }
    Py_DECREF(iterator);
    PyObject *ranked = NULL;
    if (done > 0 && !PyErr_Occurred()) {
        ranked = ranked_entries(best, kept);
    } else if (done == 0 && !PyErr_Occurred()) { /* a value the Python loop must read */
        Py_INCREF(Py_None);
        ranked = Py_None;
    }
    for (Py_ssize_t i = 0; i < kept; i++) {
        Py_DECREF(best[i].id);
        Py_DECREF(best[i].article);
    }
    PyMem_Free(best);
    return ranked;
}
