/* intent_evidence: an intent's collaborative evidence, every article's in one call
 * (CollaborativeStats.evidence_in_python, models/recommend/collaborative.py).
 *
 * A decision computes it whenever the statistics' memo misses its (intent, groups): a
 * rebuild of the statistics drops the intents whose counters changed, most of them each
 * second under steady feedback. In Python it took some 270 k instructions for an intent of
 * the demo's, two rate tuples and a call per article. */
#include "native.h"

enum { RES, UP, DOWN, VIEW, N_COUNTS, MAX_ENTRIES = 16 };
static PyObject *count_names[N_COUNTS];
static const char *const COUNT_TEXTS[N_COUNTS] = {"res", "up", "down", "view"};

static PyObject *defaultdict_type = NULL; /* collections.defaultdict, found once */

/* a mapping the statistics make: a dict, or a collections.defaultdict (whose `get` is the
 * dict's: a missing key is not made) */
static int stats_mapping(PyObject *obj) {
    return PyDict_CheckExact(obj) || (PyObject *)Py_TYPE(obj) == defaultdict_type;
}

static int find_defaultdict(void) {
    if (defaultdict_type != NULL) {
        return 0;
    }
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) {
        return -1;
    }
    defaultdict_type = PyObject_GetAttrString(collections, "defaultdict");
    Py_DECREF(collections);
    return defaultdict_type == NULL ? -1 : 0;
}

/* a finite exact float as a double; 0 for anything else (the Python path reads those) */
static int finite_float(PyObject *value, double *out) {
    if (!PyFloat_CheckExact(value) || !isfinite(PyFloat_AS_DOUBLE(value))) {
        return 0;
    }
    *out = PyFloat_AS_DOUBLE(value);
    return 1;
}

/* An article's four counts in one entry's table (zeros where it has none): 1, 0 for a value
 * the Python path reads, -1 with an error set. Makes no object. */
static int article_counts(PyObject *table, PyObject *article, double *counts) {
    PyObject *found = PyDict_GetItemWithError(table, article);
    for (int j = 0; j < N_COUNTS; j++) {
        counts[j] = 0.0;
    }
    if (found == NULL) {
        return PyErr_Occurred() ? -1 : 1;
    }
    if (!stats_mapping(found)) {
        return 0;
    }
    for (int j = 0; j < N_COUNTS; j++) {
        PyObject *value = PyDict_GetItemWithError(found, count_names[j]);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
        } else if (!finite_float(value, &counts[j])) {
            return 0;
        }
    }
    return 1;
}

/* GroupRate(rate, group, hits, trials) */
static PyObject *group_rate(PyObject *type, double rate, PyObject *group, double hits,
                            double trials) {
    PyObject *fields[4] = {PyFloat_FromDouble(rate), Py_NewRef(group), PyFloat_FromDouble(hits),
                           PyFloat_FromDouble(trials)};
    return tuple_of(type, fields, 4);
}

static int tuple_type(PyObject *type) {
    return PyType_Check(type) && PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type);
}

/* One article's (resolution, feedback) as doubles and groups, as _evidence computes them:
 * 1, or 0 where a denominator is zero (Python raises there). */
typedef struct {
    double rate, hits, trials;
    Py_ssize_t group; /* the entry whose group it is: 0 for all customers */
} Rate;

static int article_rates(const double counts[][N_COUNTS], const double *issues, Py_ssize_t n,
                         double m, Rate *resolution, Rate *feedback) {
    double hits = counts[0][RES], trials = issues[0];
    double up = counts[0][UP], down = counts[0][DOWN], view = counts[0][VIEW];
    double net = up - down, readers = up + down > view ? up + down : view;
    if (trials + m == 0.0 || readers + m == 0.0) {
        return 0;
    }
    Rate overall = {(hits + m * 0.0) / (trials + m), hits, trials, 0};
    Rate votes = {(net + m * 0.0) / (readers + m), net, readers, 0};
    if (n == 1) {
        *resolution = overall;
        *feedback = votes;
        return 1;
    }
    double rates = 0.0, helpfulness = 0.0; /* the groups' sums, added in their order */
    Py_ssize_t best_rate = -1, best_votes = -1;
    Rate found_rate = overall, found_votes = votes;
    for (Py_ssize_t k = 1; k < n; k++) {
        hits = counts[k][RES];
        trials = issues[k];
        if (trials + m == 0.0) {
            return 0;
        }
        double rate = (hits + m * overall.rate) / (trials + m);
        rates += rate;
        if (hits != 0.0 && (best_rate < 0 || rate > found_rate.rate ||
                            (rate == found_rate.rate && trials > found_rate.trials))) {
            best_rate = k;
            found_rate = (Rate){rate, hits, trials, k};
        }
        up = counts[k][UP];
        down = counts[k][DOWN];
        view = counts[k][VIEW];
        net = up - down;
        readers = up + down > view ? up + down : view;
        if (readers + m == 0.0) {
            return 0;
        }
        rate = (net + m * votes.rate) / (readers + m);
        helpfulness += rate;
        if (net != 0.0 && (best_votes < 0 || rate > found_votes.rate ||
                           (rate == found_votes.rate && readers > found_votes.trials))) {
            best_votes = k;
            found_votes = (Rate){rate, net, readers, k};
        }
    }
    Rate group_of_rates = best_rate >= 0 ? found_rate : overall;
    Rate group_of_votes = best_votes >= 0 ? found_votes : votes;
    group_of_rates.rate = rates / (double)(n - 1);
    group_of_votes.rate = helpfulness / (double)(n - 1);
    *resolution = group_of_rates;
    *feedback = group_of_votes;
    return 1;
}

/* intent_evidence(entries, articles, prior_strength, rate_type, evidence_type, all_group):
 * see module.c */
PyObject *intent_evidence(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("intent_evidence", nargs, 6) ||
        intern_names(count_names, COUNT_TEXTS, N_COUNTS) < 0 || find_defaultdict() < 0) {
        return NULL;
    }
    PyObject *entries = args[0], *articles = args[1], *rate_type = args[3];
    PyObject *evidence_type = args[4], *all_group = args[5];
    double m;
    if (!PyList_CheckExact(entries) || !PyList_CheckExact(articles) ||
        !exact_double(args[2], &m) || !tuple_type(rate_type) || !tuple_type(evidence_type) ||
        PyList_GET_SIZE(entries) < 1 || PyList_GET_SIZE(entries) > MAX_ENTRIES) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(entries);
    PyObject *groups[MAX_ENTRIES] = {NULL}, *tables[MAX_ENTRIES] = {NULL};
    double issues[MAX_ENTRIES];
    PyObject *out = NULL, *article = NULL;
    int readable = 1;
    for (Py_ssize_t k = 0; k < n; k++) { /* held: a collection may run a finalizer below */
        PyObject *entry = PyList_GET_ITEM(entries, k);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3 ||
            !finite_float(PyTuple_GET_ITEM(entry, 1), &issues[k]) ||
            !stats_mapping(PyTuple_GET_ITEM(entry, 2))) {
            readable = 0;
            break;
        }
        groups[k] = Py_NewRef(PyTuple_GET_ITEM(entry, 0));
        tables[k] = Py_NewRef(PyTuple_GET_ITEM(entry, 2));
    }
    if (!readable) {
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(articles);
    if ((out = NEW_SIZED_DICT(count)) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(articles); i++) {
        article = Py_NewRef(PyList_GET_ITEM(articles, i));
        double counts[MAX_ENTRIES][N_COUNTS];
        Rate resolution, feedback;
        if (!PyUnicode_CheckExact(article)) {
            readable = 0;
            goto done;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            int read = article_counts(tables[k], article, counts[k]);
            if (read <= 0) {
                readable = read == 0 ? 0 : -1;
                goto done;
            }
        }
        if (!article_rates((const double(*)[N_COUNTS])counts, issues, n, m, &resolution,
                           &feedback)) {
            readable = 0; /* a zero denominator: Python raises it */
            goto done;
        }
        PyObject *rates[2] = {
            group_rate(rate_type, resolution.rate,
                       resolution.group > 0 ? groups[resolution.group] : all_group,
                       resolution.hits, resolution.trials),
            group_rate(rate_type, feedback.rate,
                       feedback.group > 0 ? groups[feedback.group] : all_group, feedback.hits,
                       feedback.trials),
        };
        PyObject *evidence = tuple_of(evidence_type, rates, 2);
        if (evidence == NULL || PyDict_SetItem(out, article, evidence) < 0) {
            Py_XDECREF(evidence);
            readable = -1;
            goto done;
        }
        Py_DECREF(evidence);
        Py_CLEAR(article);
    }
done:
    Py_XDECREF(article);
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_XDECREF(groups[k]);
        Py_XDECREF(tables[k]);
    }
    if (readable <= 0 || PyErr_Occurred()) {
        Py_CLEAR(out);
        if (readable == 0 && !PyErr_Occurred()) {
            Py_RETURN_NONE;
        }
    }
    return out;
}
