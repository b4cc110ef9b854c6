/* A user's memory of each variant and article as of now: features/memory.py's
 * memory_view, summed up in one pass.
 *
 * It reads what the stream worker writes: the folded totals as exact dicts of str to
 * [count, sum] lists, the outcomes as an exact list of [time, variant, article, reward]
 * lists (times as floats, names as str, numbers as floats or ints within 2^31: a double
 * holds them, and sums of a million of them, exactly); anything else and it answers None,
 * and the Python pass, the reference, reads the state.
 *
 * An allocation may start a collection, and a collection may run finalizers that change
 * the state: every value is read first, into Entries (their keys held), before anything is
 * allocated; the state is not looked at again. */
#include "native.h"

typedef struct {
    PyObject *key; /* held */
    double n, total, weight, weighted;
} Entry;

typedef struct {
    Entry *entries;
    Py_ssize_t used;
    Py_ssize_t *slots; /* an open-addressing table of indexes into entries; -1 free */
    Py_ssize_t mask;
} Table;

enum { MOST_ENTRIES = 1 << 20 }; /* a longer state is left to Python (see EXACT) */
static const long long EXACT = 1LL << 31;

/* `value` as a double, 1, when it is a float or an int within 2^31 (a bool is an int
 * subclass, left to Python); 0 for anything else. Allocates nothing. */
static int plain_double(PyObject *value, double *out) {
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred()) || v > EXACT || v < -EXACT) {
            PyErr_Clear();
            return 0;
        }
        *out = (double)v;
        return 1;
    }
    return 0;
}

static int table_init(Table *t, Py_ssize_t capacity) {
    Py_ssize_t size = 8;
    while (size < 2 * capacity) {
        size *= 2;
    }
    t->entries = PyMem_Calloc((size_t)(capacity > 0 ? capacity : 1), sizeof(Entry));
    t->slots = PyMem_Malloc((size_t)size * sizeof(Py_ssize_t));
    if (t->entries == NULL || t->slots == NULL) {
        return -1;
    }
    memset(t->slots, 0xff, (size_t)size * sizeof(Py_ssize_t)); /* every slot -1 */
    t->used = 0;
    t->mask = size - 1;
    return 0;
}

static void table_free(Table *t) {
    if (t->entries != NULL) {
        for (Py_ssize_t k = 0; k < t->used; k++) {
            Py_DECREF(t->entries[k].key);
        }
    }
    PyMem_Free(t->entries);
    PyMem_Free(t->slots);
}

/* the entry of `key` (an exact str), added with zeros when new (*added set): a dict's
 * lookup, without a dict (no allocation); comparing two str runs no Python code */
static Entry *table_entry(Table *t, PyObject *key, int *added) {
    Py_hash_t hash = PyObject_Hash(key); /* a str's: cached, or computed; never fails */
    size_t i = (size_t)hash & (size_t)t->mask;
    for (;;) {
        Py_ssize_t at = t->slots[i];
        if (at < 0) {
            break;
        }
        PyObject *other = t->entries[at].key;
        if (other == key || PyUnicode_Compare(other, key) == 0) {
            *added = 0;
            return &t->entries[at];
        }
        i = (i + 1) & (size_t)t->mask;
    }
    Entry *entry = &t->entries[t->used];
    t->slots[i] = t->used++;
    Py_INCREF(key);
    entry->key = key;
    *added = 1;
    return entry;
}

/* a totals dict ({key: [count, sum]}) into `t`: 1, or 0 for a value left to Python */
static int read_totals(PyObject *totals, Table *t) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(totals, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !(PyList_CheckExact(value) || PyTuple_CheckExact(value)) ||
            PySequence_Fast_GET_SIZE(value) < 2) {
            return 0;
        }
        PyObject **items = PySequence_Fast_ITEMS(value);
        double n, total;
        /* a count int() cannot read raises in Python (counts from outcomes stay finite) */
        if (!plain_double(items[0], &n) || !isfinite(n) || !plain_double(items[1], &total)) {
            return 0;
        }
        int added;
        Entry *entry = table_entry(t, key, &added); /* keys of a dict: each new */
        entry->n = n;
        entry->total = total;
    }
    return 1;
}

/* memory.py's _count: a new entry holds the values themselves (0.0 + -0.0 is not -0.0) */
static void count(Table *t, PyObject *key, double reward, double weight) {
    int added;
    Entry *entry = table_entry(t, key, &added);
    if (added) {
        entry->n = 1.0;
        entry->total = reward;
        entry->weight = weight;
        entry->weighted = weight * reward;
        return;
    }
    entry->n += 1.0;
    entry->total += reward;
    entry->weight += weight;
    entry->weighted += weight * reward;
}

static int by_key(const void *a, const void *b) {
    return PyUnicode_Compare((*(Entry *const *)a)->key, (*(Entry *const *)b)->key);
}

/* the summary's keys, interned once */
enum { K_N, K_MEAN, K_RECENT_WEIGHT, K_RECENT_MEAN, N_KEYS };
static const char *const KEYS[] = {"n", "mean", "recent_weight", "recent_mean"};
static PyObject *keys[N_KEYS];

/* memory.py's _summary of one entry (NULL with an error) */
static PyObject *summary(const Entry *e) {
    PyObject *values[N_KEYS] = {
        PyLong_FromDouble(e->n),
        e->n != 0.0 ? PyFloat_FromDouble(e->total / e->n) : Py_NewRef(Py_None),
        PyFloat_FromDouble(e->weight),
        e->weight > 0.0 ? PyFloat_FromDouble(e->weighted / e->weight) : Py_NewRef(Py_None),
    };
    PyObject *out = NULL;
    if (values[0] != NULL && values[1] != NULL && values[2] != NULL && values[3] != NULL) {
        out = PyDict_New();
    }
    for (int k = 0; out != NULL && k < N_KEYS; k++) {
        if (PyDict_SetItem(out, keys[k], values[k]) < 0) {
            Py_CLEAR(out);
        }
    }
    for (int k = 0; k < N_KEYS; k++) {
        Py_XDECREF(values[k]);
    }
    return out;
}

/* {key: summary} in key order (NULL with an error) */
static PyObject *summaries(Table *t) {
    Entry **order = PyMem_Malloc((size_t)(t->used > 0 ? t->used : 1) * sizeof(Entry *));
    if (order == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < t->used; k++) {
        order[k] = &t->entries[k];
    }
    qsort(order, (size_t)t->used, sizeof(Entry *), by_key); /* distinct keys: no ties */
    PyObject *out = PyDict_New();
    for (Py_ssize_t k = 0; out != NULL && k < t->used; k++) {
        PyObject *one = summary(order[k]);
        if (one == NULL || PyDict_SetItem(out, order[k]->key, one) < 0) {
            Py_XDECREF(one);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(one);
    }
    PyMem_Free(order);
    return out;
}

PyObject *memory_summaries(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    if (!arity("memory_summaries", nargs, 6) || intern_names(keys, KEYS, N_KEYS) < 0) {
        return NULL;
    }
    PyObject *outcomes = args[0], *totals_v = args[1], *totals_a = args[2], *now_obj = args[3];
    PyObject *oldest_obj = args[4], *decay_obj = args[5];
    /* an int compares exactly in Python: left to it, as are subclasses */
    if (!(PyList_CheckExact(outcomes) || PyTuple_CheckExact(outcomes)) ||
        !PyDict_CheckExact(totals_v) || !PyDict_CheckExact(totals_a) ||
        !PyFloat_CheckExact(now_obj) || !PyFloat_CheckExact(oldest_obj) ||
        !PyFloat_CheckExact(decay_obj)) {
        Py_RETURN_NONE;
    }
    double now = PyFloat_AS_DOUBLE(now_obj), oldest = PyFloat_AS_DOUBLE(oldest_obj);
    double decay = PyFloat_AS_DOUBLE(decay_obj);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(outcomes);
    if (n + PyDict_GET_SIZE(totals_v) + PyDict_GET_SIZE(totals_a) > MOST_ENTRIES) {
        Py_RETURN_NONE;
    }
    Table variants = {0}, articles = {0};
    PyObject *result = NULL;
    int plain = 0;
    if (table_init(&variants, PyDict_GET_SIZE(totals_v) + n) < 0 ||
        table_init(&articles, PyDict_GET_SIZE(totals_a) + n) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (!read_totals(totals_v, &variants) || !read_totals(totals_a, &articles)) {
        goto done;
    }
    PyObject **items = PySequence_Fast_ITEMS(outcomes);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *outcome = items[k];
        if (!(PyList_CheckExact(outcome) || PyTuple_CheckExact(outcome)) ||
            PySequence_Fast_GET_SIZE(outcome) != 4) {
            goto done;
        }
        PyObject **f = PySequence_Fast_ITEMS(outcome);
        double ts, reward;
        if (!PyFloat_CheckExact(f[0]) || !PyUnicode_CheckExact(f[1]) ||
            !PyUnicode_CheckExact(f[2]) || !plain_double(f[3], &reward)) {
            goto done;
        }
        ts = PyFloat_AS_DOUBLE(f[0]);
        /* the same operations as math.exp((ts - now) * DECAY_PER_S) in the same order */
        double weight = (oldest < ts && ts <= now) ? exp((ts - now) * decay) : 0.0;
        if (PyUnicode_GET_LENGTH(f[1]) > 0) {
            count(&variants, f[1], reward, weight);
        }
        if (PyUnicode_GET_LENGTH(f[2]) > 0) {
            count(&articles, f[2], reward, weight);
        }
    }
    plain = 1;
    /* everything read: from here on allocations may run a collection */
    PyObject *by_variant = summaries(&variants);
    PyObject *by_article = by_variant != NULL ? summaries(&articles) : NULL;
    if (by_article != NULL) {
        result = PyTuple_Pack(2, by_variant, by_article);
    }
    Py_XDECREF(by_variant);
    Py_XDECREF(by_article);
done:
    table_free(&variants);
    table_free(&articles);
    if (!plain && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}
