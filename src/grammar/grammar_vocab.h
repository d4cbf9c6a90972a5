/*
 * grammar_vocab.h — the vocabulary layout the matcher walks (vocab.c builds it).
 */
#ifndef PONDER_GRAMMAR_VOCAB_H
#define PONDER_GRAMMAR_VOCAB_H

#include "grammar/grammar_internal.h"

struct ponder_grammar_vocab {
    int32_t n_vocab;
    char *bytes;       /* every piece, back to back */
    uint32_t *off;     /* token id → offset in bytes */
    uint32_t *len;     /* token id → piece length */
    bool *is_eog;
    int32_t *order;    /* walked tokens (non-empty, not end-of-generation), sorted by bytes */
    uint32_t *lcp;     /* lcp[i]: bytes order[i] shares with order[i - 1] (0 for i = 0) */
    int32_t n_sorted;
    int32_t first[257]; /* first index in order[] whose first byte is >= b */
    uint32_t max_len;   /* longest walked piece */
    int32_t *eog;       /* end-of-generation token ids */
    int32_t n_eog;
};

#endif /* PONDER_GRAMMAR_VOCAB_H */
