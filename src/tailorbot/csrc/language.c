/* A message's language: py3langid's naive Bayes over byte n-grams, in one call.
 *
 * py3langid walks the text's UTF-8 bytes through a DFA in Python (a few interpreter steps a
 * byte), counts the n-gram features it reaches, and scores them with a dozen numpy calls on
 * seven values: some 150 k instructions a message, more than the intent model's own n-grams.
 * The same steps here: log1p of each feature's count times the feature's float16 row (float32
 * products, as numpy's), summed in the order the features were first reached, in doubles
 * rounded to float32 once, plus the class priors; scaled by 1 / sqrt(bytes) and normalized
 * by a softmax in float32. numpy's float32 vector product rounds as it goes, differently,
 * so a probability can differ from py3langid's in its last digits
 * (tests/models/intent/test_language_compiled.py bounds it). */
#include "native.h"

enum { MAX_CLASSES = 64, LOCAL_FEATURES = 256, SMALL_COUNTS = 16 };

/* log1pf of a feature's count: most features are reached once or a few times in a message,
 * so those are computed once (the same floats: log1pf is a function of its argument) */
static float log1p_count(Py_ssize_t count) {
    static float small[SMALL_COUNTS + 1];
    static int ready = 0;
    if (!ready) { /* the GIL is held: one thread fills it */
        for (int n = 0; n <= SMALL_COUNTS; n++) {
            small[n] = log1pf((float)n);
        }
        ready = 1;
    }
    return count <= SMALL_COUNTS ? small[count] : log1pf((float)count);
}

/* A feature reached by the walk and how often, in first-reached order; `slots` maps a
 * feature to its place among them (open addressing; -1 empty). */
typedef struct {
    Py_ssize_t *ids, *counts, *slots;
    Py_ssize_t n, mask;
} Visits;

static void visit(Visits *v, Py_ssize_t feature) {
    size_t h = ((size_t)feature * 0x9E3779B97F4A7C15ull) & (size_t)v->mask;
    while (v->slots[h] >= 0) {
        if (v->ids[v->slots[h]] == feature) {
            v->counts[v->slots[h]]++;
            return;
        }
        h = (h + 1) & (size_t)v->mask;
    }
    v->slots[h] = v->n;
    v->ids[v->n] = feature;
    v->counts[v->n] = 1;
    v->n++;
}

/* a state's `feature` counted in `v` (none where negative): -1 with ValueError (`refusal`)
 * where it is not a row of the table's `n_features` */
static int reached(Visits *v, Py_ssize_t feature, Py_ssize_t n_features, const char *refusal) {
    if (feature < 0) {
        return 0;
    }
    if (feature >= n_features) {
        PyErr_SetString(PyExc_ValueError, refusal);
        return -1;
    }
    visit(v, feature);
    return 0;
}

/* the walk over `data` (len bytes) into `v`; -1 with an exception set where the tables do
 * not fit each other */
static int walk(const unsigned char *data, Py_ssize_t len, const Py_buffer *nextmove,
                const Py_buffer *row, const Py_buffer *output, Py_ssize_t n_features,
                Visits *v) {
    const uint32_t *next = nextmove->buf;
    const uint16_t *rows = row->buf;
    const int32_t *out = output->buf;
    Py_ssize_t n_next = nextmove->shape[0], n_states = row->shape[0];
    Py_ssize_t state = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_ssize_t at = ((Py_ssize_t)rows[state] << 8) + data[i];
        if (at >= n_next || (state = (Py_ssize_t)next[at]) >= n_states) {
            PyErr_SetString(PyExc_ValueError, "the DFA's tables do not fit each other");
            return -1;
        }
        if (reached(v, out[state], n_features, "a DFA output is not a row of the table") < 0) {
            return -1;
        }
    }
    return 0;
}

/* the normalized class probabilities of the visits into `scores` (k values) */
static void probabilities(const Visits *v, const uint16_t *ptc, const float *pc, Py_ssize_t k,
                          Py_ssize_t len, float *scores) {
    double sums[MAX_CLASSES] = {0.0};
    for (Py_ssize_t f = 0; f < v->n; f++) {
        float weight = log1p_count(v->counts[f]);
        const uint16_t *halves = ptc + v->ids[f] * k;
        for (Py_ssize_t j = 0; j < k; j++) {
            sums[j] += (double)(weight * half_to_float(halves[j]));
        }
    }
    for (Py_ssize_t j = 0; j < k; j++) { /* no feature: zeros, which the softmax makes uniform */
        scores[j] = v->n > 0 ? (float)sums[j] + pc[j] : 0.0f;
    }
    float scale = (float)(1.0 / sqrt((double)(len > 0 ? len : 1)));
    float top = -INFINITY;
    for (Py_ssize_t j = 0; j < k; j++) {
        scores[j] *= scale;
        if (scores[j] > top) {
            top = scores[j];
        }
    }
    float total = 0.0f;
    for (Py_ssize_t j = 0; j < k; j++) {
        scores[j] = expf(scores[j] - top);
        total += scores[j];
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        scores[j] /= total;
    }
}

static PyObject *best_of(const float *scores, Py_ssize_t k) {
    Py_ssize_t best = 0;
    for (Py_ssize_t j = 1; j < k; j++) {
        if (scores[j] > scores[best]) { /* the first of equals, as argmax */
            best = j;
        }
    }
    return index_value_pair(best, (double)scores[best]);
}

/* Room for the visits of a text of `len` bytes (one feature a byte at most): on the stack up
 * to LOCAL_FEATURES, else on the heap (`heap`, freed by visits_close). -1 with MemoryError. */
typedef struct {
    Visits v;
    Py_ssize_t *heap;
    Py_ssize_t ids[LOCAL_FEATURES], counts[LOCAL_FEATURES], slots[2 * LOCAL_FEATURES];
} VisitRoom;

static int visits_open(VisitRoom *room, Py_ssize_t len) {
    Py_ssize_t capacity = len > 0 ? len : 1, table = 2;
    while (table < 2 * capacity) {
        table <<= 1;
    }
    room->v = (Visits){room->ids, room->counts, room->slots, 0, table - 1};
    room->heap = NULL;
    if (capacity > LOCAL_FEATURES) {
        room->heap = PyMem_Malloc((size_t)(2 * capacity + table) * sizeof(Py_ssize_t));
        if (room->heap == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        room->v.ids = room->heap;
        room->v.counts = room->heap + capacity;
        room->v.slots = room->heap + 2 * capacity;
    }
    for (Py_ssize_t s = 0; s < table; s++) {
        room->v.slots[s] = -1;
    }
    return 0;
}

static void visits_close(VisitRoom *room) { PyMem_Free(room->heap); }

/* the class priors and float16 feature rows: -1 with ValueError unless `pc` has one value
 * per class of `ptc` (1 to MAX_CLASSES) */
static int check_classes(const Py_buffer *ptc, const Py_buffer *pc) {
    Py_ssize_t k = ptc->shape[1];
    if (pc->shape[0] != k || k < 1 || k > MAX_CLASSES) {
        PyErr_Format(PyExc_ValueError, "pc needs one value per class of ptc (1 to %d)",
                     MAX_CLASSES);
        return -1;
    }
    return 0;
}

/* the best class and its probability from the visits (ptc and pc checked) */
static PyObject *answer(const Visits *v, const Py_buffer *ptc, const Py_buffer *pc,
                        Py_ssize_t len) {
    float scores[MAX_CLASSES];
    probabilities(v, ptc->buf, pc->buf, ptc->shape[1], len, scores);
    return best_of(scores, ptc->shape[1]);
}

PyObject *language_scores(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char codes[5] = {'I', 'H', 'i', 'e', 'f'};
    static const int dims[5] = {1, 1, 1, 2, 1};
    static const char *names[5] = {"nextmove", "row", "output", "ptc", "pc"};
    Py_buffer views[5];
    int held = 0;
    PyObject *result = NULL;
    if (!arity("language_scores", nargs, 6) ||
        !arg_typed("language_scores", 1, args[0], &PyBytes_Type)) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t len = PyBytes_GET_SIZE(args[0]);
    PyObject *const *objs = args + 1;
    for (; held < 5; held++) {
        if (get_array(objs[held], &views[held], 0, codes[held], dims[held], names[held]) < 0) {
            goto done;
        }
    }
    if (views[1].shape[0] < 1 || views[2].shape[0] != views[1].shape[0]) {
        PyErr_SetString(PyExc_ValueError, "output needs one value per state (at least one)");
        goto done;
    }
    if (check_classes(&views[3], &views[4]) < 0) {
        goto done;
    }
    VisitRoom room;
    if (visits_open(&room, len) < 0) {
        goto done;
    }
    if (walk(data, len, &views[0], &views[1], &views[2], views[3].shape[0], &room.v) == 0) {
        result = answer(&room.v, &views[3], &views[4], len);
    }
    visits_close(&room);
done:
    while (held > 0) {
        PyBuffer_Release(&views[--held]);
    }
    return result;
}

/* The walk over ASCII `data` through the same DFA packed for it (language_dfa.py): one
 * entry per (row, byte class) of the rows ASCII text can reach, holding the next state's
 * row shifted left by `shift` and its feature plus one (0: none) below, the features those
 * states reach renumbered (their rows of ptc copied together). One load a byte from a table
 * of a few MB, where the whole DFA is 39 MB and two loads a byte: a server's other work
 * keeps evicting the big one from the caches. -1 with ValueError where the tables do not
 * fit each other or a byte is not ASCII. */
static int walk_ascii(const unsigned char *data, Py_ssize_t len, const unsigned char *classes,
                      const Py_buffer *table, Py_ssize_t row, int shift,
                      Py_ssize_t n_features, Visits *v) {
    const uint32_t *entries = table->buf;
    Py_ssize_t n_rows = table->shape[0], n_classes = table->shape[1];
    uint32_t mask = ((uint32_t)1 << shift) - 1;
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = data[i] < 128 ? classes[data[i]] : (unsigned char)255;
        if (data[i] >= 128 || c >= n_classes || row >= n_rows) {
            PyErr_SetString(PyExc_ValueError,
                            data[i] >= 128 ? "the text is not ASCII"
                                           : "the packed DFA's tables do not fit each other");
            return -1;
        }
        uint32_t entry = entries[row * n_classes + c];
        row = (Py_ssize_t)(entry >> shift);
        Py_ssize_t feature = (Py_ssize_t)(entry & mask) - 1;
        if (reached(v, feature, n_features, "a packed output is not a row of the table") < 0) {
            return -1;
        }
    }
    return 0;
}

PyObject *language_scores_ascii(PyObject *module, FASTCALL_ARGS) {
    (void)module;
    static const char codes[3] = {'I', 'e', 'f'};
    static const int dims[3] = {2, 2, 1};
    static const char *names[3] = {"table", "ptc", "pc"};
    Py_buffer views[3];
    int held = 0;
    Py_ssize_t start, shift;
    PyObject *result = NULL;
    if (!arity("language_scores_ascii", nargs, 7) ||
        !arg_typed("language_scores_ascii", 1, args[0], &PyBytes_Type) ||
        !arg_typed("language_scores_ascii", 2, args[1], &PyBytes_Type) ||
        arg_ssize(args[3], &start) < 0 || arg_ssize(args[4], &shift) < 0) {
        return NULL;
    }
    if (PyBytes_GET_SIZE(args[1]) != 128 || shift < 1 || shift > 31 || start < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "classes needs 128 bytes, shift 1 to 31 and start a row (>= 0)");
        return NULL;
    }
    PyObject *const arrays[3] = {args[2], args[5], args[6]};
    for (; held < 3; held++) {
        if (get_array(arrays[held], &views[held], 0, codes[held], dims[held], names[held]) < 0) {
            goto done;
        }
    }
    if (check_classes(&views[1], &views[2]) < 0) {
        goto done;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t len = PyBytes_GET_SIZE(args[0]);
    VisitRoom room;
    if (visits_open(&room, len) < 0) {
        goto done;
    }
    const unsigned char *classes = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    if (walk_ascii(data, len, classes, &views[0], start, (int)shift, views[1].shape[0],
                   &room.v) == 0) {
        result = answer(&room.v, &views[1], &views[2], len);
    }
    visits_close(&room);
done:
    while (held > 0) {
        PyBuffer_Release(&views[--held]);
    }
    return result;
}
