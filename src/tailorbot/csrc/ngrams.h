/* NgramScorer's layout, shared by its type (ngrams.c) and its scoring (ngram_scores.c). */
#ifndef TAILORBOT_NGRAMS_H
#define TAILORBOT_NGRAMS_H

#include "points.h"
#include "wordsums.h"

typedef struct {
    uint64_t hash;
    uint32_t start; /* into the code-point pool */
    uint32_t length;
    int32_t id; /* -1: empty slot */
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t mask;
    Py_UCS4 *pool;
    int32_t *counts; /* per id, zero between calls: a call's scratch */
    WordSums *words; /* char_wb with a word cache: its words' sums; else NULL */
    double *acc;     /* n_classes: the word path's scratch */
    Py_buffer idf;  /* float64 (n_features,) */
    Py_buffer coef; /* float32 (n_features, n_classes), C-contiguous */
    Py_ssize_t n_features;
    Py_ssize_t n_classes;
    int min_n;
    int max_n;
    int sublinear;
    int char_wb;
    int have_idf;
    int have_coef;
    int started; /* __init__ ran (once only) */
    int ready;   /* __init__ succeeded */
} NgramScorer;

/* the vocabulary id of `points[0:length]`, or -1 */
int32_t ngram_lookup(const NgramScorer *self, const Py_UCS4 *points, Py_ssize_t length);
/* add_scores(units, scores) of an initialized scorer */
PyObject *ngram_add_scores(NgramScorer *self, FASTCALL_ARGS);

#endif
