/* WordSums: a char_wb block's per-word sums, kept (see wordsums.h). Arrays grow by
 * doubling up to the bound; at the bound everything is dropped at once and refilled. */
#include "wordsums.h"

typedef struct {
    uint64_t hash;
    int32_t entry; /* -1: empty */
} WordSlot;

typedef struct {
    uint32_t key_start, key_length, ids_start, ids_count;
    double q;
} Entry;

struct WordSums {
    Py_ssize_t n_classes, max_words;
    uint64_t seed; /* mixed into every key's hash: slots no one can aim at from outside */
    WordSlot *slots; /* 2 * max_words (a power of two), open addressing */
    size_t mask;
    Entry *entries;
    Py_ssize_t count;
    Py_UCS4 *keys;
    Py_ssize_t keys_size, keys_capacity;
    int32_t *ids;
    Py_ssize_t ids_size, ids_capacity;
    double *sums; /* count * n_classes */
    Py_ssize_t sums_capacity; /* in entries */
};

WordSums *word_sums_new(Py_ssize_t n_classes, Py_ssize_t max_words, uint64_t seed) {
    WordSums *cache = PyMem_Calloc(1, sizeof(WordSums));
    if (cache == NULL) {
        return NULL;
    }
    size_t capacity = 16;
    while (capacity < (size_t)max_words * 2) {
        capacity <<= 1;
    }
    cache->n_classes = n_classes;
    cache->max_words = max_words;
    cache->mask = capacity - 1;
    cache->seed = seed;
    cache->slots = PyMem_Malloc(capacity * sizeof(WordSlot));
    cache->entries = PyMem_Malloc((size_t)max_words * sizeof(Entry));
    /* never NULL, even while empty: no arithmetic on a null pointer */
    cache->keys_capacity = cache->ids_capacity = 64;
    cache->sums_capacity = 1;
    cache->keys = PyMem_Malloc(64 * sizeof(Py_UCS4));
    cache->ids = PyMem_Malloc(64 * sizeof(int32_t));
    cache->sums = PyMem_Malloc((size_t)(n_classes > 0 ? n_classes : 1) * sizeof(double));
    if (cache->slots == NULL || cache->entries == NULL || cache->keys == NULL ||
        cache->ids == NULL || cache->sums == NULL) {
        word_sums_free(cache);
        return NULL;
    }
    for (size_t i = 0; i < capacity; i++) {
        cache->slots[i].entry = -1;
    }
    return cache;
}

void word_sums_free(WordSums *cache) {
    if (cache == NULL) {
        return;
    }
    PyMem_Free(cache->slots);
    PyMem_Free(cache->entries);
    PyMem_Free(cache->keys);
    PyMem_Free(cache->ids);
    PyMem_Free(cache->sums);
    PyMem_Free(cache);
}

Py_ssize_t word_sums_count(const WordSums *cache) { return cache->count; }

static void forget_all(WordSums *cache) {
    for (size_t i = 0; i <= cache->mask; i++) {
        cache->slots[i].entry = -1;
    }
    cache->count = cache->keys_size = cache->ids_size = 0;
}

uint64_t word_sums_hash(const WordSums *cache, const Py_UCS4 *key, Py_ssize_t length) {
    return hash_points_from(cache->seed, key, length);
}

int word_sums_find(const WordSums *cache, const Py_UCS4 *key, Py_ssize_t length, uint64_t hash,
                   WordView *view) {
    for (size_t i = (size_t)hash & cache->mask;; i = (i + 1) & cache->mask) {
        const WordSlot *slot = &cache->slots[i];
        if (slot->entry < 0) {
            return 0;
        }
        const Entry *e = &cache->entries[slot->entry];
        if (slot->hash == hash && (Py_ssize_t)e->key_length == length &&
            memcmp(cache->keys + e->key_start, key, (size_t)length * sizeof(Py_UCS4)) == 0) {
            view->ids = cache->ids + e->ids_start;
            view->count = e->ids_count;
            view->sums = cache->sums + (Py_ssize_t)slot->entry * cache->n_classes;
            view->q = e->q;
            return 1;
        }
    }
}

/* room for `needed` items of `size` bytes in `*array` (capacity in items); 0, or -1 */
static int reserve(void **array, Py_ssize_t *capacity, Py_ssize_t needed, size_t size) {
    if (needed <= *capacity) {
        return 0;
    }
    Py_ssize_t grown = *capacity > 0 ? *capacity : 64;
    while (grown < needed) {
        grown *= 2;
    }
    void *bigger = PyMem_Realloc(*array, (size_t)grown * size);
    if (bigger == NULL) {
        return -1;
    }
    *array = bigger;
    *capacity = grown;
    return 0;
}

int word_sums_store(WordSums *cache, const Py_UCS4 *key, Py_ssize_t length, uint64_t hash,
                    const WordView *view) {
    if (length > WORD_SUMS_MAX_KEY || view->count > WORD_SUMS_MAX_IDS) {
        return 0;
    }
    if (cache->count == cache->max_words ||
        cache->ids_size + view->count > (Py_ssize_t)UINT32_MAX ||
        cache->keys_size + length > (Py_ssize_t)UINT32_MAX) {
        forget_all(cache); /* full, or its offsets would pass 32 bits */
    }
    if (reserve((void **)&cache->keys, &cache->keys_capacity, cache->keys_size + length,
                sizeof(Py_UCS4)) < 0 ||
        reserve((void **)&cache->ids, &cache->ids_capacity, cache->ids_size + view->count,
                sizeof(int32_t)) < 0 ||
        reserve((void **)&cache->sums, &cache->sums_capacity, cache->count + 1,
                (size_t)cache->n_classes * sizeof(double)) < 0) {
        return 0; /* no memory: the word is simply not kept */
    }
    Py_ssize_t index = cache->count++;
    Entry *e = &cache->entries[index];
    e->key_start = (uint32_t)cache->keys_size;
    e->key_length = (uint32_t)length;
    e->ids_start = (uint32_t)cache->ids_size;
    e->ids_count = (uint32_t)view->count;
    e->q = view->q;
    memcpy(cache->keys + cache->keys_size, key, (size_t)length * sizeof(Py_UCS4));
    cache->keys_size += length;
    memcpy(cache->ids + cache->ids_size, view->ids, (size_t)view->count * sizeof(int32_t));
    cache->ids_size += view->count;
    memcpy(cache->sums + index * cache->n_classes, view->sums,
           (size_t)cache->n_classes * sizeof(double));
    size_t i = (size_t)hash & cache->mask;
    while (cache->slots[i].entry >= 0) {
        i = (i + 1) & cache->mask;
    }
    cache->slots[i] = (WordSlot){hash, (int32_t)index};
    return 1;
}
