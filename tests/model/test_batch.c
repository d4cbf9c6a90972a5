/*
 * test_batch.c — several sequences in one context: a batch of N forked sequences gives the
 * bits of N separate contexts decoding the same tokens one at a time; forks share the
 * prompt's cells; truncate, clear and the error paths leave the KV store consistent.
 *
 * Argument "quant" runs the equality checks on quantized files instead of float ones.
 * Those assert bit-identity too (the model's invariance promise, model.h); they hold only
 * once the quantized matmul gives a token's row the same bits whatever the batch size
 * (being made so in src/tensor at the time of writing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h" /* KV_BLOCK_CELLS, for exact cell counts */
#include "ponder/model.h"
#include "testutil.h"

#define N_SEQ 4
#define N_PROMPT 40 /* more than one block: the forks share a full block and a partial one */
#define N_STEPS 8   /* passes gemma2's 32-position window */

static const char *g_models[8];
static int g_n_models;
/* the cache the contexts use: F16 and exact attention, or ("flash") a Q8_0 K and Q4_0 V
 * cache with attention fused over KV blocks (tiles of several tokens, split head groups) */
static ponder_type g_type_k = PONDER_TYPE_F16, g_type_v = PONDER_TYPE_F16;

static ponder_model *load(const char *ref_path)
{
    const char *path = tu_model_path(ref_path);
    if (!path) {
        print_message("skipping %s: not found (scripts/make-fixtures.sh makes it)\n", ref_path);
        return NULL;
    }
    ponder_model *m = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    return m;
}

static ponder_context *make_ctx(const ponder_model *m, int n_ctx, int n_seq, int n_cells, ponder_pool *pool)
{
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = n_ctx;
    cp.n_seq_max = n_seq;
    cp.n_kv_cells = n_cells;
    cp.pool = pool;
    cp.type_k = g_type_k;
    cp.type_v = g_type_v;
    ponder_context *ctx = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    return ctx;
}

static int32_t tok(const ponder_model *m, int seq, int i)
{
    return (int32_t)((1000003u * (unsigned)(seq + 1) + 7919u * (unsigned)i) % (unsigned)ponder_model_hparams(m)->n_vocab);
}

static void prompt(const ponder_model *m, int32_t *p, int n, int salt)
{
    for (int i = 0; i < n; i++)
        p[i] = tok(m, 100 + salt, i);
}

/* (a) a shared prompt decoded once and forked, then N_STEPS batches of one token per
 * sequence, against N separate single-sequence contexts fed token by token. */
static int check_forked_batch(const ponder_model *m)
{
    ponder_error err = {0};
    const size_t n_vocab = (size_t)ponder_model_hparams(m)->n_vocab;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, &err), PONDER_OK);
    ponder_context *ctx = make_ctx(m, 128, N_SEQ, 0, pool);
    int32_t p[N_PROMPT];
    prompt(m, p, N_PROMPT, 0);
    float *got = malloc((size_t)N_STEPS * N_SEQ * n_vocab * sizeof(float));
    float *first = malloc(n_vocab * sizeof(float));
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT, NULL, &err), PONDER_OK);
    memcpy(first, ponder_context_logits(ctx), n_vocab * sizeof(float));
    for (int s = 1; s < N_SEQ; s++)
        assert_int_equal(ponder_context_seq_fork(ctx, 0, s, &err), PONDER_OK);
    for (int step = 0; step < N_STEPS; step++) {
        int32_t toks[N_SEQ];
        ponder_seq_id seqs[N_SEQ];
        for (int s = 0; s < N_SEQ; s++) {
            seqs[s] = N_SEQ - 1 - s; /* batch order need not be sequence order */
            toks[s] = tok(m, seqs[s], step);
        }
        ponder_batch b = {.n_tokens = N_SEQ, .tokens = toks, .seq = seqs};
        assert_int_equal(ponder_context_decode_batch(ctx, &b, got + (size_t)step * N_SEQ * n_vocab, &err), PONDER_OK);
    }
    for (int s = 0; s < N_SEQ; s++)
        assert_int_equal(ponder_context_seq_len(ctx, s), N_PROMPT + N_STEPS);

    int mismatches = 0;
    for (int s = 0; s < N_SEQ; s++) {
        ponder_context *one = make_ctx(m, 128, 1, 0, NULL);
        assert_int_equal(ponder_context_decode(one, p, N_PROMPT, NULL, &err), PONDER_OK);
        assert_memory_equal(ponder_context_logits(one), first, n_vocab * sizeof(float));
        for (int step = 0; step < N_STEPS; step++) {
            const int32_t t = tok(m, s, step);
            assert_int_equal(ponder_context_decode(one, &t, 1, NULL, &err), PONDER_OK);
            const float *row = got + ((size_t)step * N_SEQ + (size_t)(N_SEQ - 1 - s)) * n_vocab;
            if (memcmp(row, ponder_context_logits(one), n_vocab * sizeof(float)) != 0) {
                double d = 0;
                for (size_t v = 0; v < n_vocab; v++)
                    d = fmax(d, fabs((double)row[v] - ponder_context_logits(one)[v]));
                if (mismatches++ == 0)
                    print_message("  sequence %d step %d: batched logits differ from the lone decode (max %.3g)\n", s,
                                  step, d);
            }
        }
        ponder_context_free(one);
    }
    free(got);
    free(first);
    ponder_context_free(ctx);
    ponder_pool_free(pool);
    return mismatches;
}

/* (c) truncating a sequence (also one whose cells a fork shares) and decoding on gives
 * the bits of a fresh decode of the kept prefix plus the new tokens. */
static void check_truncate(const ponder_model *m)
{
    ponder_error err = {0};
    const size_t n_vocab = (size_t)ponder_model_hparams(m)->n_vocab;
    enum { KEEP = 35, MORE = 6 };
    int32_t p[N_PROMPT + 10];
    prompt(m, p, N_PROMPT + 10, 1);
    ponder_context *ctx = make_ctx(m, 96, 2, 0, NULL);
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT + 10, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_fork(ctx, 0, 1, &err), PONDER_OK);
    /* sequence 1 rewinds into the block sequence 0 still uses in full; the copy on write
     * must leave sequence 0's cells alone */
    assert_int_equal(ponder_context_seq_truncate(ctx, 1, KEEP, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_len(ctx, 1), KEEP);
    float *a = malloc(n_vocab * sizeof(float)), *b = malloc(n_vocab * sizeof(float));
    for (int i = 0; i < MORE; i++) {
        const int32_t t = tok(m, 7, i);
        ponder_batch bt = {.n_tokens = 1, .tokens = &t, .seq = &(ponder_seq_id){1}};
        assert_int_equal(ponder_context_decode_batch(ctx, &bt, a, &err), PONDER_OK);
    }
    ponder_context *fresh = make_ctx(m, 96, 1, 0, NULL);
    assert_int_equal(ponder_context_decode(fresh, p, KEEP, NULL, &err), PONDER_OK);
    for (int i = 0; i < MORE; i++) {
        const int32_t t = tok(m, 7, i);
        assert_int_equal(ponder_context_decode(fresh, &t, 1, NULL, &err), PONDER_OK);
    }
    assert_memory_equal(a, ponder_context_logits(fresh), n_vocab * sizeof(float));

    /* sequence 0 kept its 50 positions: continuing it equals a fresh 51-token decode */
    const int32_t t = tok(m, 8, 0);
    assert_int_equal(ponder_context_decode(ctx, &t, 1, NULL, &err), PONDER_OK);
    memcpy(b, ponder_context_logits(ctx), n_vocab * sizeof(float));
    ponder_context_reset(fresh);
    assert_int_equal(ponder_context_decode(fresh, p, N_PROMPT + 10, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_decode(fresh, &t, 1, NULL, &err), PONDER_OK);
    assert_memory_equal(b, ponder_context_logits(fresh), n_vocab * sizeof(float));

    /* truncating sequence 0 itself and decoding on, in place */
    assert_int_equal(ponder_context_seq_truncate(ctx, 0, KEEP, &err), PONDER_OK);
    for (int i = 0; i < MORE; i++) {
        const int32_t u = tok(m, 7, i);
        assert_int_equal(ponder_context_decode(ctx, &u, 1, NULL, &err), PONDER_OK);
    }
    assert_memory_equal(a, ponder_context_logits(ctx), n_vocab * sizeof(float));
    free(a);
    free(b);
    ponder_context_free(fresh);
    ponder_context_free(ctx);
}

/* (f) one prompt batch interleaving two sequences' prompts equals each decoded alone. */
static void check_mixed_prompts(const ponder_model *m)
{
    ponder_error err = {0};
    const size_t n_vocab = (size_t)ponder_model_hparams(m)->n_vocab;
    enum { N0 = 37, N1 = 21 };
    int32_t p0[N0], p1[N1], toks[N0 + N1];
    ponder_seq_id seqs[N0 + N1];
    bool want[N0 + N1];
    prompt(m, p0, N0, 2);
    prompt(m, p1, N1, 3);
    int n = 0;
    for (int i = 0, j = 0; i < N0 || j < N1;) {
        if (i < N0) {
            toks[n] = p0[i++];
            seqs[n++] = 0;
        }
        if (j < N1 && (i % 3 != 0 || i >= N0)) {
            toks[n] = p1[j++];
            seqs[n++] = 1;
        }
    }
    assert_int_equal(n, N0 + N1);
    for (int i = 0; i < n; i++)
        want[i] = true;
    float *got = malloc((size_t)n * n_vocab * sizeof(float));
    float *alone0 = malloc((size_t)N0 * n_vocab * sizeof(float)), *alone1 = malloc((size_t)N1 * n_vocab * sizeof(float));
    ponder_context *ctx = make_ctx(m, 64, 2, 0, NULL);
    ponder_batch b = {.n_tokens = n, .tokens = toks, .seq = seqs, .want_logits = want};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_len(ctx, 0), N0);
    assert_int_equal(ponder_context_seq_len(ctx, 1), N1);
    ponder_context *one = make_ctx(m, 64, 1, 0, NULL);
    assert_int_equal(ponder_context_decode(one, p0, N0, alone0, &err), PONDER_OK);
    ponder_context_reset(one);
    assert_int_equal(ponder_context_decode(one, p1, N1, alone1, &err), PONDER_OK);
    for (int k = 0, i = 0, j = 0; k < n; k++) {
        const float *ref = seqs[k] == 0 ? alone0 + (size_t)i++ * n_vocab : alone1 + (size_t)j++ * n_vocab;
        assert_memory_equal(got + (size_t)k * n_vocab, ref, n_vocab * sizeof(float));
    }
    /* default want_logits: the last token of each sequence, in batch order */
    ponder_context_reset(ctx);
    b.want_logits = NULL;
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_OK);
    const bool p1_last = seqs[n - 1] == 1; /* which sequence's last token comes last */
    assert_memory_equal(got, (p1_last ? alone0 + (size_t)(N0 - 1) * n_vocab : alone1 + (size_t)(N1 - 1) * n_vocab),
                        n_vocab * sizeof(float));
    assert_memory_equal(got + n_vocab, (p1_last ? alone1 + (size_t)(N1 - 1) * n_vocab : alone0 + (size_t)(N0 - 1) * n_vocab),
                        n_vocab * sizeof(float));
    assert_memory_equal(ponder_context_logits(ctx), got + n_vocab, n_vocab * sizeof(float));
    free(got);
    free(alone0);
    free(alone1);
    ponder_context_free(one);
    ponder_context_free(ctx);
}

/* A prompt decoded as one batch (MoE: each expert once over the tokens routed to it) has
 * the bits of the same tokens decoded one at a time. */
static void check_prompt_batch(const ponder_model *m)
{
    ponder_error err = {0};
    const size_t n_vocab = (size_t)ponder_model_hparams(m)->n_vocab;
    int32_t p[N_PROMPT];
    prompt(m, p, N_PROMPT, 6);
    float *all = malloc((size_t)N_PROMPT * n_vocab * sizeof(float));
    ponder_context *ctx = make_ctx(m, 64, 1, 0, NULL);
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT, all, &err), PONDER_OK);
    ponder_context_reset(ctx);
    for (int i = 0; i < N_PROMPT; i++) {
        assert_int_equal(ponder_context_decode(ctx, &p[i], 1, NULL, &err), PONDER_OK);
        assert_memory_equal(all + (size_t)i * n_vocab, ponder_context_logits(ctx), n_vocab * sizeof(float));
    }
    free(all);
    ponder_context_free(ctx);
}

static void test_equal_to_lone_decodes(void **state)
{
    (void)state;
    int failed = 0, n_run = 0;
    for (int i = 0; i < g_n_models; i++) {
        ponder_model *m = load(g_models[i]);
        if (!m)
            continue;
        n_run++;
        const int bad = check_forked_batch(m);
        print_message("%s: %d of %d batched rows differ from lone decodes\n", g_models[i], bad, N_SEQ * N_STEPS);
        failed += bad > 0;
        if (bad == 0) { /* the other checks would only repeat the same difference */
            check_truncate(m);
            check_mixed_prompts(m);
            check_prompt_batch(m);
        }
        ponder_model_free(m);
    }
    assert_true(n_run >= 2); /* the files in shared/ are always there */
    assert_int_equal(failed, 0);
}

/* (b) forks share the prompt's cells; (d) clear gives them back. */
static void test_fork_shares_cells(void **state)
{
    (void)state;
    ponder_error err = {0};
    ponder_model *m = load("shared/models/synthetic/syn-tiny-F32.gguf");
    assert_non_null(m);
    ponder_context *ctx = make_ctx(m, 128, N_SEQ, 0, NULL);
    const int32_t all = ponder_context_n_free_cells(ctx);
    assert_true(all >= 128 * N_SEQ);
    int32_t p[N_PROMPT];
    prompt(m, p, N_PROMPT, 4);
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT, NULL, &err), PONDER_OK);
    const int32_t prompt_cells = all - ponder_context_n_free_cells(ctx);
    assert_true(prompt_cells >= N_PROMPT && prompt_cells < N_PROMPT + KV_BLOCK_CELLS);
    for (int s = 1; s < N_SEQ; s++) {
        assert_int_equal(ponder_context_seq_fork(ctx, 0, s, &err), PONDER_OK);
        assert_int_equal(ponder_context_seq_len(ctx, s), N_PROMPT);
    }
    assert_int_equal(ponder_context_n_free_cells(ctx), all - prompt_cells); /* the prompt is stored once */
    /* one token each: the shared partial block is copied for all but its last writer */
    int32_t toks[N_SEQ];
    ponder_seq_id seqs[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) {
        toks[s] = tok(m, s, 0);
        seqs[s] = s;
    }
    ponder_batch b = {.n_tokens = N_SEQ, .tokens = toks, .seq = seqs};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_n_free_cells(ctx), all - prompt_cells - (N_SEQ - 1) * KV_BLOCK_CELLS);
    /* clearing a fork frees only its own block; clearing all gives every cell back */
    assert_int_equal(ponder_context_seq_clear(ctx, 2, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_len(ctx, 2), 0);
    assert_int_equal(ponder_context_n_free_cells(ctx), all - prompt_cells - (N_SEQ - 2) * KV_BLOCK_CELLS);
    for (int s = 0; s < N_SEQ; s++)
        assert_int_equal(ponder_context_seq_clear(ctx, s, &err), PONDER_OK);
    assert_int_equal(ponder_context_n_free_cells(ctx), all);
    /* reset empties every sequence too */
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_fork(ctx, 0, 3, &err), PONDER_OK);
    ponder_context_reset(ctx);
    assert_int_equal(ponder_context_n_free_cells(ctx), all);
    assert_int_equal(ponder_context_seq_len(ctx, 3), 0);
    ponder_context_free(ctx);

    /* defaults: one sequence of n_ctx positions */
    ctx = make_ctx(m, 64, 0, 0, NULL);
    assert_int_equal(ponder_context_n_seq_max(ctx), 1);
    assert_int_equal(ponder_context_n_free_cells(ctx), 64);
    assert_int_equal(ponder_context_seq_len(ctx, 1), -1);
    ponder_context_free(ctx);
    ponder_model_free(m);
}

/* (e) every rejected call leaves the context as it was: the same lengths, free cells and
 * the same logits for the call that follows. */
static void test_errors_leave_context_unchanged(void **state)
{
    (void)state;
    ponder_error err = {0};
    ponder_model *m = load("shared/models/synthetic/syn-tiny-F32.gguf");
    assert_non_null(m);
    const size_t n_vocab = (size_t)ponder_model_hparams(m)->n_vocab;
    /* two blocks of cells for three sequences of up to 64 positions */
    ponder_context *ctx = make_ctx(m, 48, 3, 2 * KV_BLOCK_CELLS, NULL);
    int32_t p[N_PROMPT];
    prompt(m, p, N_PROMPT, 5);
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_fork(ctx, 0, 1, &err), PONDER_OK);
    assert_int_equal(ponder_context_n_free_cells(ctx), 0);

    const int32_t two[2] = {tok(m, 0, 1), tok(m, 1, 1)};
    ponder_batch b = {.n_tokens = 2, .tokens = two, .seq = (const ponder_seq_id[]){0, 1}};
    float *got = malloc(2 * n_vocab * sizeof(float));
    /* capacity: writing into the shared block needs one copy, and no block is free */
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_ERR_RANGE);
    assert_non_null(strstr(err.msg, "KV cells"));
    /* bad sequence id, bad token, negative, past n_ctx */
    b.seq = (const ponder_seq_id[]){0, 3};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "sequence id 3"));
    b.seq = (const ponder_seq_id[]){0, -1};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_ERR_INVALID_ARG);
    const int32_t bad[2] = {two[0], (int32_t)n_vocab};
    b = (ponder_batch){.n_tokens = 2, .tokens = bad, .seq = (const ponder_seq_id[]){1, 1}};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    int32_t many[9];
    ponder_seq_id many_seq[9];
    for (int i = 0; i < 9; i++) {
        many[i] = tok(m, 2, i);
        many_seq[i] = 1;
    }
    b = (ponder_batch){.n_tokens = 9, .tokens = many, .seq = many_seq};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, NULL, &err), PONDER_ERR_RANGE);
    assert_non_null(strstr(err.msg, "sequence 1 do not fit"));
    b.n_tokens = 0;
    assert_int_equal(ponder_context_decode_batch(ctx, &b, NULL, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_context_decode_batch(ctx, NULL, NULL, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_context_seq_fork(ctx, 0, 3, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_context_seq_clear(ctx, -1, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_context_seq_truncate(ctx, 0, N_PROMPT + 1, &err), PONDER_ERR_RANGE);
    assert_int_equal(ponder_context_seq_truncate(ctx, 0, -1, &err), PONDER_ERR_RANGE);
    assert_int_equal(ponder_context_seq_truncate(ctx, 5, 0, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_context_seq_len(ctx, 0), N_PROMPT);
    assert_int_equal(ponder_context_seq_len(ctx, 1), N_PROMPT);
    assert_int_equal(ponder_context_seq_len(ctx, 2), 0);
    assert_int_equal(ponder_context_n_free_cells(ctx), 0);

    /* with exactly one block free, both writers fit: the first copies, the last writes in
     * place. The logits are those of two lone decodes. */
    assert_int_equal(ponder_context_seq_fork(ctx, 0, 2, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_clear(ctx, 2, &err), PONDER_OK);
    ponder_context_free(ctx);
    ctx = make_ctx(m, 48, 3, 3 * KV_BLOCK_CELLS, NULL);
    assert_int_equal(ponder_context_decode(ctx, p, N_PROMPT, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_seq_fork(ctx, 0, 1, &err), PONDER_OK);
    assert_int_equal(ponder_context_n_free_cells(ctx), KV_BLOCK_CELLS);
    b = (ponder_batch){.n_tokens = 2, .tokens = two, .seq = (const ponder_seq_id[]){0, 1}};
    assert_int_equal(ponder_context_decode_batch(ctx, &b, got, &err), PONDER_OK);
    assert_int_equal(ponder_context_n_free_cells(ctx), 0);
    ponder_context *one = make_ctx(m, 48, 1, 0, NULL);
    for (int s = 0; s < 2; s++) {
        ponder_context_reset(one);
        assert_int_equal(ponder_context_decode(one, p, N_PROMPT, NULL, &err), PONDER_OK);
        assert_int_equal(ponder_context_decode(one, &two[s], 1, NULL, &err), PONDER_OK);
        assert_memory_equal(got + (size_t)s * n_vocab, ponder_context_logits(one), n_vocab * sizeof(float));
    }
    ponder_context_free(one);
    ponder_context_free(ctx);

    ponder_context_params cp = ponder_context_params_default();
    cp.n_seq_max = -1;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_ERR_INVALID_ARG);
    free(got);
    ponder_model_free(m);
}

int main(int argc, char **argv)
{
    const bool quant = argc > 1 && strcmp(argv[1], "quant") == 0;
    const bool flash = argc > 1 && strcmp(argv[1], "flash") == 0;
    if (flash) { /* head dimensions that are multiples of 32 */
        g_type_k = PONDER_TYPE_Q8_0;
        g_type_v = PONDER_TYPE_Q4_0;
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-F32.gguf";
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-gemma2-F32.gguf"; /* sliding window, soft-cap */
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-phi3-F32.gguf";
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-Q8_0.gguf";
    } else if (quant) {
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-Q8_0.gguf";
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-Q4_K_M.gguf";
        g_models[g_n_models++] = "shared/models/stories260K/quantized/stories260K-Q4_K_M.gguf";
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-moe-Q8_0.gguf";
    } else {
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-F32.gguf";
        g_models[g_n_models++] = "shared/models/stories260K/stories260K.gguf";
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-gemma2-F32.gguf"; /* sliding window */
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-moe-F32.gguf";
        g_models[g_n_models++] = "shared/models/synthetic/syn-tiny-phi3-F32.gguf";
    }
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_equal_to_lone_decodes),
        cmocka_unit_test(test_fork_shares_cells),
        cmocka_unit_test(test_errors_leave_context_unchanged),
    };
    const struct CMUnitTest equality[] = {cmocka_unit_test(test_equal_to_lone_decodes)};
    return quant || flash ? cmocka_run_group_tests(equality, NULL, NULL) : cmocka_run_group_tests(all, NULL, NULL);
}
