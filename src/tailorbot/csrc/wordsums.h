/* WordSums (wordsums.c): what one word contributes to a char_wb TF-IDF block, kept per
 * word. char_wb n-grams never cross a word, so a word's n-gram ids, u = sum of idf * coef
 * row and q = sum of idf^2 over them (repeats included) are the same in every message; a
 * message then adds one row per word instead of one per n-gram, and corrects only the
 * n-grams it holds more than once (ngrams.c). At most `max_words` words are kept; past
 * that the cache starts empty again. Keys are the padded word " word " as code points. */
#ifndef TAILORBOT_WORDSUMS_H
#define TAILORBOT_WORDSUMS_H

#include "points.h"

#define WORD_SUMS_MAX_KEY 64 /* longer words are not kept (a URL, a pasted blob) */
#define WORD_SUMS_MAX_IDS 4096 /* nor words of more n-grams (with a wide n-gram range) */
#define WORD_SUMS_MAX_WORDS (1 << 20)

typedef struct WordSums WordSums;

typedef struct {
    const int32_t *ids; /* the word's known n-gram ids, repeats included */
    Py_ssize_t count;
    const double *sums; /* u: n_classes values */
    double q;
} WordView;

/* `seed` keys the hash (word_sums_hash): slots that input cannot be chosen to crowd */
WordSums *word_sums_new(Py_ssize_t n_classes, Py_ssize_t max_words, uint64_t seed);
uint64_t word_sums_hash(const WordSums *cache, const Py_UCS4 *key, Py_ssize_t length);
void word_sums_free(WordSums *cache);
Py_ssize_t word_sums_count(const WordSums *cache);
/* 1 and `view` filled when `key` is kept, else 0; the view is valid until the next store */
int word_sums_find(const WordSums *cache, const Py_UCS4 *key, Py_ssize_t length, uint64_t hash,
                   WordView *view);
/* keeps a copy of `view` under `key`: 1, or 0 when not kept (too long, no memory) */
int word_sums_store(WordSums *cache, const Py_UCS4 *key, Py_ssize_t length, uint64_t hash,
                    const WordView *view);

#endif
