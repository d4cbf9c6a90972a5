/*
 * grammar_fuzz.c — libFuzzer harness for the grammar module's two parsers: GBNF text
 * and JSON Schema. The first input byte picks the mode (even: GBNF, odd: JSON Schema);
 * the rest is the grammar or schema, and, after a NUL, bytes to feed the matcher.
 *
 * Promises checked (a broken one traps): a parse either succeeds or fails with a
 * non-empty one-line message and no grammar; a schema that compiles to GBNF compiles to
 * a grammar that parses (the converter never emits invalid text); on a grammar that
 * parsed, feeding bytes one at a time over a byte vocabulary, every byte is in the mask
 * exactly when the matcher accepts it, the end-of-generation token is in the mask
 * exactly when the grammar is complete, and rollback returns to the same mask.
 * Also compiled into the corpus replay test (tests/grammar/test_grammar_corpus.c).
 */
#include "grammar/grammar_internal.h"
#include "ponder/grammar.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "grammar_fuzz.c:%d: check failed: %s\n", __LINE__, #cond); \
            __builtin_trap();                                                           \
        }                                                                               \
    } while (0)

#define N_BYTES_MAX 256 /* matcher bytes fed per input */

static ponder_grammar_vocab *g_vocab; /* 256 single bytes + end-of-generation (256) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ponder_error err;
    CHECK(gr_vocab_bytes(&g_vocab, &err) == PONDER_OK);
    return 0;
}

static bool bit(const uint32_t *mask, int t)
{
    return mask[t >> 5] >> (t & 31) & 1u;
}

static void run_bytes(const ponder_grammar *g, const uint8_t *in, size_t n)
{
    ponder_grammar_matcher *m = NULL;
    ponder_error err;
    if (ponder_grammar_matcher_create(g, g_vocab, &m, &err) != PONDER_OK) {
        CHECK(err.msg[0] != '\0');
        return;
    }
    for (size_t i = 0; i < n && i < N_BYTES_MAX; i++) {
        const uint32_t *mask = ponder_grammar_matcher_mask(m, &err);
        CHECK(mask != NULL);
        CHECK(bit(mask, 256) == ponder_grammar_matcher_is_complete(m));
        uint32_t copy[9];
        memcpy(copy, mask, sizeof copy);
        const bool in_mask = bit(copy, in[i]);
        const bool ok = ponder_grammar_matcher_accept(m, in[i]);
        CHECK(in_mask == ok);
        if (!ok)
            break;
        if (i % 7 == 3) { /* rollback gives the same state back */
            ponder_grammar_matcher_rollback(m, 1);
            const uint32_t *again = ponder_grammar_matcher_mask(m, &err);
            CHECK(again && memcmp(again, copy, sizeof copy) == 0);
            CHECK(ponder_grammar_matcher_accept(m, in[i]));
        }
    }
    ponder_grammar_matcher_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!g_vocab)
        LLVMFuzzerInitialize(NULL, NULL);
    const bool schema = data[0] & 1;
    const uint8_t *text = data + 1;
    size_t n = size - 1;
    const uint8_t *nul = memchr(text, 0, n);
    const uint8_t *feed = nul ? nul + 1 : NULL;
    const size_t n_feed = nul ? (size_t)(text + n - feed) : 0;
    if (nul)
        n = (size_t)(nul - text);
    char *copy = malloc(n + 1); /* exact size: sanitizers see over-reads */
    if (!copy)
        return 0;
    memcpy(copy, text, n);
    copy[n] = '\0';
    ponder_grammar *g = NULL;
    ponder_error err = { 0 };
    ponder_status st;
    if (schema) {
        char *gbnf = NULL;
        st = ponder_json_schema_to_gbnf(copy, n, &gbnf, &err);
        if (st == PONDER_OK) {
            ponder_error e2 = { 0 };
            ponder_status s2 = ponder_grammar_parse(gbnf, strlen(gbnf), &g, &e2);
            if (s2 != PONDER_OK)
                fprintf(stderr, "schema compiled to bad GBNF: %s\n%s\n", e2.msg, gbnf);
            CHECK(s2 == PONDER_OK || s2 == PONDER_ERR_NOMEM);
            free(gbnf);
        } else {
            CHECK(gbnf == NULL);
        }
    } else {
        st = ponder_grammar_parse(copy, n, &g, &err);
    }
    if (st != PONDER_OK) {
        CHECK(g == NULL);
        CHECK(err.code == st && err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
    }
    if (g)
        run_bytes(g, feed ? feed : (const uint8_t *)"", n_feed);
    ponder_grammar_free(g);
    free(copy);
    return 0;
}
