/* NgramScorer's scoring: a text's known n-grams, their l2-normalized tf-idf weights times
 * their coefficient rows added to the scores, row by row or through the kept per-word sums
 * (wordsums.h) of a char_wb block. */
#include "ngrams.h"

int32_t ngram_lookup(const NgramScorer *self, const Py_UCS4 *points, Py_ssize_t length) {
    uint64_t h = hash_points(points, length);
    for (size_t i = (size_t)h & self->mask;; i = (i + 1) & self->mask) {
        const Slot *slot = &self->slots[i];
        if (slot->id < 0) {
            return -1;
        }
        if (slot->hash == h && (Py_ssize_t)slot->length == length &&
            memcmp(self->pool + slot->start, points, (size_t)length * sizeof(Py_UCS4)) == 0) {
            return slot->id;
        }
    }
}

static int found(const NgramScorer *self, Ids *ids, const Py_UCS4 *points, Py_ssize_t length) {
    int32_t id = ngram_lookup(self, points, length);
    return id < 0 ? 0 : ids_push(ids, id);
}

/* " word " in `buf`: its length, or -1 */
static Py_ssize_t padded(PyObject *word, Points *buf) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(word) + 2;
    if (points_reserve(buf, length) < 0) {
        return -1;
    }
    buf->points[0] = ' ';
    copy_points(word, buf->points + 1);
    buf->points[length - 1] = ' ';
    return length;
}

/* scikit-learn's char_wb n-grams of one padded word `w`: cut into min_n..max_n grams; a word
 * shorter than n yields itself once, and then no longer n-grams */
static int char_wb_ids(const NgramScorer *self, const Py_UCS4 *w, Py_ssize_t length, Ids *ids) {
    for (int n = self->min_n; n <= self->max_n; n++) {
        if (found(self, ids, w, n < length ? n : length) < 0) {
            return -1;
        }
        if (n >= length) {
            break; /* offset 0 was the whole word: sklearn stops here */
        }
        for (Py_ssize_t offset = 1; offset + n <= length; offset++) {
            if (found(self, ids, w + offset, n) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* scikit-learn's word n-grams: tokens[i:i+n] joined by one space, n in min_n..max_n */
static int word_ids(const NgramScorer *self, PyObject *tokens, Points *buf, Ids *ids) {
    Py_ssize_t count = PyList_GET_SIZE(tokens);
    for (int n = self->min_n; n <= self->max_n && n <= count; n++) {
        for (Py_ssize_t i = 0; i + n <= count; i++) {
            Py_ssize_t length = n - 1;
            for (int k = 0; k < n; k++) {
                length += PyUnicode_GET_LENGTH(PyList_GET_ITEM(tokens, i + k));
            }
            if (points_reserve(buf, length) < 0) {
                return -1;
            }
            Py_ssize_t at = 0;
            for (int k = 0; k < n; k++) {
                PyObject *token = PyList_GET_ITEM(tokens, i + k);
                if (k > 0) {
                    buf->points[at++] = ' ';
                }
                copy_points(token, buf->points + at);
                at += PyUnicode_GET_LENGTH(token);
            }
            if (found(self, ids, buf->points, length) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* term frequency of an n-gram seen `count` times (1 + ln count when sublinear) */
static double tf(const NgramScorer *self, int32_t count) {
    if (count == 1) {
        return 1.0; /* the usual case, without a log */
    }
    return self->sublinear ? 1.0 + log((double)count) : (double)count;
}

/* counts each id of `ids` in the scorer's scratch array (all zeros between calls; the GIL
 * makes it this call's) and moves the distinct ids to the front, in order of first
 * occurrence, with no sort: their number. The caller zeroes their counts again. */
static Py_ssize_t count_distinct(NgramScorer *self, Ids *ids) {
    Py_ssize_t distinct = 0;
    int32_t *seen = self->counts;
    for (Py_ssize_t i = 0; i < ids->size; i++) {
        int32_t id = ids->items[i];
        if (seen[id]++ == 0) {
            ids->items[distinct++] = id;
        }
    }
    return distinct;
}

/* acc += factor * the coefficient row of `id` */
static void add_row(const NgramScorer *self, double *acc, int32_t id, double factor) {
    const float *row = (const float *)self->coef.buf + (Py_ssize_t)id * self->n_classes;
    add_scaled(acc, row, factor, self->n_classes);
}

/* The char_wb block through the word cache (wordsums.h): per word its kept u and q (made
 * on a miss), then the n-grams held more than once corrected: the numerator loses
 * (c - tf) * idf * row and the squared norm (c - tf^2) * idf^2 for an n-gram seen c times.
 * Returns the number of distinct known n-grams (a new int), or NULL. */
static PyObject *add_by_word(NgramScorer *self, PyObject *units, Points *buf, Ids *ids,
                             double *out) {
    const double *idf = self->idf.buf;
    Py_ssize_t n_classes = self->n_classes;
    double *acc = self->acc, squared = 0.0;
    memset(acc, 0, (size_t)n_classes * sizeof(double));
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(units); i++) {
        Py_ssize_t length = padded(PyList_GET_ITEM(units, i), buf);
        if (length < 0) {
            return NULL;
        }
        uint64_t hash = word_sums_hash(self->words, buf->points, length);
        WordView word;
        Py_ssize_t start = ids->size;
        if (word_sums_find(self->words, buf->points, length, hash, &word)) {
            for (Py_ssize_t k = 0; k < word.count; k++) {
                if (ids_push(ids, word.ids[k]) < 0) {
                    return NULL;
                }
            }
            add_values(acc, word.sums, n_classes);
            squared += word.q;
            continue;
        }
        if (char_wb_ids(self, buf->points, length, ids) < 0) {
            return NULL;
        }
        double *sums = self->acc + n_classes; /* the word's own u, then kept */
        double q = 0.0;
        memset(sums, 0, (size_t)n_classes * sizeof(double));
        for (Py_ssize_t k = start; k < ids->size; k++) {
            double value = idf[ids->items[k]];
            q += value * value;
            add_row(self, sums, ids->items[k], value);
        }
        word = (WordView){ids->items + start, ids->size - start, sums, q};
        word_sums_store(self->words, buf->points, length, hash, &word);
        add_values(acc, sums, n_classes);
        squared += q;
    }
    /* then the repeated n-grams fixed */
    Py_ssize_t distinct = count_distinct(self, ids);
    int32_t *seen = self->counts;
    for (Py_ssize_t i = 0; i < distinct; i++) {
        int32_t id = ids->items[i], c = seen[id];
        seen[id] = 0;
        if (c > 1) {
            double t = tf(self, c);
            squared += (t * t - (double)c) * idf[id] * idf[id];
            add_row(self, acc, id, (t - (double)c) * idf[id]);
        }
    }
    if (squared > 0.0) {
        double norm = sqrt(squared);
        for (Py_ssize_t k = 0; k < n_classes; k++) {
            out[k] += acc[k] / norm;
        }
    }
    return PyLong_FromSsize_t(distinct);
}

PyObject *ngram_add_scores(NgramScorer *self, FASTCALL_ARGS) {
    Py_buffer scores;
    if (!arity("add_scores", nargs, 2) || !arg_typed("add_scores", 1, args[0], &PyList_Type) ||
        get_array(args[1], &scores, 1, 'd', 1, "scores") < 0) {
        return NULL;
    }
    PyObject *units = args[0];
    PyObject *result = NULL;
    Ids ids = {.size = 0, .capacity = 256};
    ids.items = ids.local;
    Points buf = {.capacity = 512};
    buf.points = buf.local;
    if (scores.shape[0] != self->n_classes) {
        PyErr_Format(PyExc_ValueError, "scores must hold %zd float64 values", self->n_classes);
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(units);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyUnicode_Check(PyList_GET_ITEM(units, i))) {
            PyErr_SetString(PyExc_TypeError, "units must be a list of str");
            goto done;
        }
    }
    if (self->words != NULL) {
        result = add_by_word(self, units, &buf, &ids, scores.buf);
        goto done;
    }
    if (self->char_wb) {
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_ssize_t length = padded(PyList_GET_ITEM(units, i), &buf);
            if (length < 0 || char_wb_ids(self, buf.points, length, &ids) < 0) {
                goto done;
            }
        }
    } else if (word_ids(self, units, &buf, &ids) < 0) {
        goto done;
    }
    Py_ssize_t distinct = count_distinct(self, &ids);
    int32_t *seen = self->counts;
    const double *idf = self->idf.buf;
    double squared = 0.0;
    for (Py_ssize_t i = 0; i < distinct; i++) {
        double value = tf(self, seen[ids.items[i]]) * idf[ids.items[i]];
        squared += value * value;
    }
    if (squared > 0.0) {
        double norm = sqrt(squared);
        for (Py_ssize_t i = 0; i < distinct; i++) {
            int32_t id = ids.items[i];
            add_row(self, scores.buf, id, tf(self, seen[id]) * idf[id] / norm);
        }
    }
    for (Py_ssize_t i = 0; i < distinct; i++) {
        seen[ids.items[i]] = 0;
    }
    result = PyLong_FromSsize_t(distinct);
done:
    ids_free(&ids);
    points_free(&buf);
    PyBuffer_Release(&scores);
    return result;
}
