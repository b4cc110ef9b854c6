/* The compiled hot loops of the serving path, one extension module `tailorbot._native`
 * built from this folder by setup.py. Each loop has a pure-Python reference it is tested
 * against (tests/test_native.py and the callers' tests), and the Python path serves where
 * the module is missing.
 *
 *   ngrams.c   NgramScorer: one TF-IDF block of a linear model (the intent model's word
 *              and char_wb n-grams), looked up by code points, no string per n-gram; its
 *              layout in ngrams.h, its scoring in ngram_scores.c
 *   wordsums.c a char_wb block's per-word sums, kept (NgramScorer's word_cache)
 *   points.c   growable code-point buffers and id lists for both
 *   terms.c    TermIndex: a term-document index's query scores (the recommender's BM25)
 *   dense.c    float16 embedding rows: their mean, and a linear model's part from it,
 *              from each token's projection through the model, kept
 *   ranking.c  softmax_top (the intent ranking), posterior_moment (a bandit arm's)
 *   bandit.c   arm_moments: the offered arms' rows and moments in one call
 *   ucb.c      ucb_select: LinUCB's choice among the offered arms in one call
 *   scoring.c  score_articles: the recommender's candidates, weighted and summed
 *   reasons.c  article_reasons: a recommended article's reasons, worded and ordered
 *   similar.c  top_similar: item-kNN's best articles for a user's basket
 *   evidence.c intent_evidence: an intent's collaborative evidence, every article's
 *   checked.c  checked_model: an event model holding values checked already
 *   render.c   fill_template: a response template's placeholders filled
 *   words.c    word_runs: a text's words by scikit-learn's word pattern, no regex;
 *              cached_piece_ids: a text's token ids from its pieces' kept ids;
 *              unknown_words: a text's words a vocabulary lacks (the typo corrector's);
 *              stemmed_terms: a text's stemmed content words (the recommender's tokenize)
 *              message_terms: the same, and the message's words that are one term each
 *   sessions.c session_summary: the feature view's pass over a user's sessions
 *   memory.c   memory_summaries: the feature view's memory of each variant and article
 *   language.c language_scores: a message's language, py3langid's model in one call;
 *              language_scores_ascii: the same for ASCII text, its DFA packed smaller
 *   windows.c  window_counts: a sorted timestamp list's counts in event-time windows
 *   messages.c message_features: the feature view's windows' counts and intents in one call
 *   view.c     feature_view: the feature view in one call, with the passes of messages.c,
 *              sessions.c and memory.c; its other parts in view_parts.c and view_articles.c
 *              (their names and signatures in view.h)
 *   user_context.c user_context: the recommender's slice of a feature view in one call
 *   context.c  context_vector: the bandit's numeric context of a feature view in one call;
 *              action_features: the customer's memory of each offered variant in one call
 *   payload.c  answer_payload: the personalize answer as JSON-ready data in one call
 *   vectors.c  sums over coefficient rows, compiled for AVX2 too
 *   arrays.c   typed views of numpy arrays through the buffer protocol (no numpy headers)
 *   tallies.c  TallyCounter, TallyHistogram: the per-thread Prometheus figures' inc and
 *              observe (_tallies.py's children), handing what they do not add to Python
 *   slotted.c  slot_layout, build_slotted: a frozen dataclass's instance without its
 *              __init__, its fields written into their slots; tuple_of, a named tuple's
 *   args.c     the arguments of the module's functions, as the array a call hands over,
 *              and the names they read, interned once
 *   module.c   the module
 *
 * The GIL is held throughout: no call lets another thread run (test_serving.py probes
 * it), so a scorer's scratch arrays are its current call's; no Python code runs inside a
 * loop (containers are checked or copied first), and the arrays read are held by buffer
 * views. Some calls run Python code they are given: stemmed_terms' and message_terms'
 * `stem` on each word (a cache miss runs the stemmer), ucb_select's `draw`, last,
 * article_reasons' `word_one` for a signal it does not word itself, after its loops, and the
 * tally children's `fallback`, instead of adding anything themselves. The interpreter may
 * switch threads there, as on their Python paths; they keep no scratch but their own
 * locals.
 */
#ifndef TAILORBOT_NATIVE_H
#define TAILORBOT_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A function compiled twice, for AVX2 and for the baseline, the one the CPU runs picked at
 * load (GCC's target_clones, glibc's ifunc): its loops over float and double arrays take 4
 * doubles a step instead of 2. The same operations in the same order per element (no fused
 * multiply-add either way), so the same sums bit for bit. Elsewhere, the baseline alone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define WIDE_VECTORS __attribute__((target_clones("avx2", "default")))
#else
#define WIDE_VECTORS
#endif

/* IEEE half -> single, exactly (every float16 value is a float32 value): the half's
 * exponent and mantissa bits placed in a float32 and scaled by 2^112 (exact for normal and
 * subnormal halves alike); infinities and NaNs keep an all-ones exponent. Without a branch
 * (the special case is a mask), so that the loops over a row vectorize. */
static inline float half_to_float(uint16_t h) {
    uint32_t magnitude = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    float scaled;
    uint32_t bits;
    memcpy(&scaled, &magnitude, sizeof scaled);
    scaled *= 0x1p112f;
    memcpy(&bits, &scaled, sizeof bits);
    uint32_t special = 0u - (uint32_t)((h & 0x7c00u) == 0x7c00u); /* all ones or zero */
    bits = (bits & ~special) | ((magnitude | 0x7f800000u) & special);
    bits |= sign;
    memcpy(&scaled, &bits, sizeof scaled);
    return scaled;
}

/* A new dict sized for `n` items at once (grown from empty, a view of 49 keys was resized four
 * times): CPython's own call, exported since 3.6 and in the headers through 3.13; a plain
 * dict where a later version no longer offers it. */
#if PY_VERSION_HEX < 0x030E0000
#define NEW_SIZED_DICT(n) _PyDict_NewPresized(n)
#else
#define NEW_SIZED_DICT(n) PyDict_New()
#endif

/* a float, or an int a double holds exactly (|n| <= 2^53), as a double: 0 for anything else
 * (a bool, a subclass, a larger int: the Python paths compare those exactly themselves) */
static inline int exact_double(PyObject *value, double *out) {
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 1;
    }
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || n > (1LL << 53) || n < -(1LL << 53)) {
        return 0; /* no error is set for an exact int */
    }
    *out = (double)n;
    return 1;
}

/* a C-contiguous view of `obj` as `ndim`-d values of struct code `code` (ValueError naming
 * `name` otherwise) */
int get_array(PyObject *obj, Py_buffer *view, int writable, char code, int ndim,
              const char *name);

extern PyTypeObject NgramScorerType;
extern PyTypeObject TermIndexType;
extern PyTypeObject TallyCounterType;
extern PyTypeObject TallyHistogramType;

/* The arguments of a METH_FASTCALL function (args.c), the module's calling convention: a
 * call hands over its argument array as it is, where METH_VARARGS packs a tuple that
 * PyArg_ParseTuple reads through its format string (some 600 instructions a call, in a
 * decision that makes some twenty). Each fails with a TypeError worded as PyArg_ParseTuple's:
 * `arity` unless exactly `n` came; `arg_typed` unless argument `position` (from 1) is a
 * `type` or a subclass ("O!", "U"); `arg_ssize` and `arg_double` convert as "n" and "d". */
int arity(const char *name, Py_ssize_t nargs, Py_ssize_t n);
int arg_typed(const char *name, int position, PyObject *arg, PyTypeObject *type);
int arg_ssize(PyObject *arg, Py_ssize_t *out);
int arg_double(PyObject *arg, double *out);
/* `texts` interned into `names` where not yet (the names a file reads or writes, made at its
 * first call): 0, or -1 with an error set */
int intern_names(PyObject **names, const char *const *texts, int n);
/* a METH_FASTCALL function's signature, and its entry in a method table */
#define FASTCALL_ARGS PyObject *const *args, Py_ssize_t nargs
#define FASTCALL(function) ((PyCFunction)(void (*)(void))(function)), METH_FASTCALL

/* in doubles (vectors.c): acc += factor * row; acc += the sum over k < count of
 * factors[k] * rows[k] (rows of n floats; zero factors skipped); acc += values */
void add_scaled(double *acc, const float *row, double factor, Py_ssize_t n);
void add_rows(double *acc, const float *rows, const float *factors, Py_ssize_t count,
              Py_ssize_t n);
void add_values(double *acc, const double *values, Py_ssize_t n);

PyObject *mean_rows(PyObject *module, FASTCALL_ARGS);
PyObject *word_runs(PyObject *module, FASTCALL_ARGS);
PyObject *cached_piece_ids(PyObject *module, FASTCALL_ARGS);
PyObject *unknown_words(PyObject *module, FASTCALL_ARGS);
PyObject *stemmed_terms(PyObject *module, FASTCALL_ARGS);
PyObject *message_terms(PyObject *module, FASTCALL_ARGS);
PyObject *embedding_scores(PyObject *module, FASTCALL_ARGS);
PyObject *posterior_moment(PyObject *module, FASTCALL_ARGS);
PyObject *arm_moments(PyObject *module, FASTCALL_ARGS);
PyObject *ucb_select(PyObject *module, FASTCALL_ARGS);
/* the offered arms' rows and one arm's moments (bandit.c, shared with ucb.c): see there */
int offered_rows(PyObject *context, PyObject *index, PyObject *arms, PyObject *arm_features,
                 Py_ssize_t n, Py_ssize_t d, double *rows);
int pair_moment(PyObject *pair, const double *row, Py_ssize_t d, double *mean, double *width);
PyObject *score_articles(PyObject *module, FASTCALL_ARGS);
PyObject *article_reasons(PyObject *module, FASTCALL_ARGS);
PyObject *top_similar(PyObject *module, FASTCALL_ARGS);
PyObject *intent_evidence(PyObject *module, FASTCALL_ARGS);
PyObject *checked_model(PyObject *module, FASTCALL_ARGS);
PyObject *fill_template(PyObject *module, FASTCALL_ARGS);
PyObject *session_summary(PyObject *module, FASTCALL_ARGS);
PyObject *memory_summaries(PyObject *module, FASTCALL_ARGS);
PyObject *window_counts(PyObject *module, FASTCALL_ARGS);
/* the windows' widths (windows.c, shared with sessions.c): a tuple of at most MAX_WIDTHS
 * exact floats read into `out`, their number; -1 for anything else (a subclass, an int,
 * more windows), which the callers leave to the Python path */
enum { MAX_WIDTHS = 16 };
Py_ssize_t float_widths(PyObject *widths, double *out);
/* counts[0:n] as a list of ints (NULL with an exception set) */
PyObject *count_list(const Py_ssize_t *counts, Py_ssize_t n);
/* bisect.bisect_right(items, x) probing the same items in the same order; -1 when a probed
 * item is not a float (the Python path compares those) */
Py_ssize_t float_bisect_right(PyObject *const *items, Py_ssize_t n, double x);
/* the counts of the exact list `sorted_ts` in each window (now - width, now] into `counts`
 * (windows.c, shared with messages.c); -1 where a probed item is not a float. Makes no
 * object: call it before any allocation that could let a finalizer change the list */
int window_counts_of(PyObject *sorted_ts, double now, const double *widths, Py_ssize_t windows,
                     Py_ssize_t *counts);
PyObject *message_features(PyObject *module, FASTCALL_ARGS);
PyObject *feature_view(PyObject *module, FASTCALL_ARGS);
PyObject *user_context(PyObject *module, FASTCALL_ARGS);
PyObject *context_vector(PyObject *module, FASTCALL_ARGS);
PyObject *action_features(PyObject *module, FASTCALL_ARGS);
PyObject *answer_payload(PyObject *module, FASTCALL_ARGS);
/* a linear bandit arm's `x . theta` and `sqrt(max(x A^-1 x, 0))`, x of d values */
void linear_moment(const double *x, const double *a, const double *t, Py_ssize_t d,
                   double *mean, double *width);
/* (index, value) as a new tuple (ranking.c; NULL with an exception set) */
PyObject *index_value_pair(Py_ssize_t index, double value);
PyObject *softmax_top(PyObject *module, FASTCALL_ARGS);
PyObject *language_scores(PyObject *module, FASTCALL_ARGS);
PyObject *language_scores_ascii(PyObject *module, FASTCALL_ARGS);
/* `type`(*fields) for `type` a tuple subclass (a named tuple), as tuple.__new__ builds it,
 * without the intermediate tuple (slotted.c); steals every field, even on failure (NULL: a
 * field was NULL, or the instance could not be made) */
PyObject *tuple_of(PyObject *type, PyObject **fields, Py_ssize_t n);
PyObject *slot_layout(PyObject *module, FASTCALL_ARGS);
PyObject *build_slotted(PyObject *module, FASTCALL_ARGS);

#endif
