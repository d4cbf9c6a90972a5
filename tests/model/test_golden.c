/*
 * test_golden.c — stories260K against an independent float64 forward pass
 * (shared/models/stories260K/stories260K.greedy-t0.json): greedy from BOS for 256 steps,
 * every token equal and every argmax logit close, with the F32 KV cache (exact float)
 * and with the default F16 one; then the same story from the prompt "Once upon a time"
 * through the tokenizer, as `ponder run` does it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/model.h"
#include "ponder/sample.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

static json_t *golden(void)
{
    json_error_t jerr;
    json_t *g = json_load_file(tu_shared("models/stories260K/stories260K.greedy-t0.json"), 0, &jerr);
    assert_non_null(g);
    return g;
}

/* Greedy from the given start tokens; compares the continuation with ids[offset...] */
static void run_greedy(ponder_type kv, const int32_t *start, int32_t n_start, json_t *g, size_t offset,
                       double logit_tol)
{
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(tu_shared("models/stories260K/stories260K.gguf"), NULL, &m, &err), PONDER_OK);
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 512;
    cp.type_k = cp.type_v = kv;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    json_t *ids = json_object_get(g, "generated_token_ids");
    json_t *logits = json_object_get(g, "argmax_logit_per_step");
    assert_int_equal(ponder_context_decode(ctx, start, n_start, NULL, &err), PONDER_OK);
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab;
    double worst = 0;
    for (size_t k = offset; k < json_array_size(ids); k++) {
        const float *l = ponder_context_logits(ctx);
        int32_t tok = ponder_argmax(l, n_vocab);
        assert_int_equal(tok, json_integer_value(json_array_get(ids, k)));
        worst = fmax(worst, fabs(l[tok] - json_number_value(json_array_get(logits, k))));
        if (k + 1 < json_array_size(ids))
            assert_int_equal(ponder_context_decode(ctx, &tok, 1, NULL, &err), PONDER_OK);
    }
    printf("kv %s, %zu steps: max |argmax logit - float64 reference| = %.2e\n", ponder_type_name(kv),
           json_array_size(ids) - offset, worst);
    assert_true(worst < logit_tol);
    ponder_context_free(ctx);
    ponder_model_free(m);
}

static void test_from_bos_f32_kv(void **state)
{
    (void)state;
    json_t *g = golden();
    const int32_t bos = 1;
    run_greedy(PONDER_TYPE_F32, &bos, 1, g, 0, 1e-3); /* the reference prints 4 decimals */
    json_decref(g);
}

static void test_from_bos_f16_kv(void **state)
{
    (void)state;
    json_t *g = golden();
    const int32_t bos = 1;
    run_greedy(PONDER_TYPE_F16, &bos, 1, g, 0, 2e-2);
    json_decref(g);
}

static void test_from_prompt(void **state)
{
    (void)state;
    json_t *g = golden();
    ponder_error err = {0};
    ponder_gguf *gg = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared("models/stories260K/stories260K.gguf"), &gg, &err), PONDER_OK);
    ponder_tokenizer *tok = NULL;
    assert_int_equal(ponder_tokenizer_create(gg, &tok, &err), PONDER_OK);
    ponder_token *ids = NULL;
    size_t n = 0;
    const char *prompt = "Once upon a time";
    assert_int_equal(ponder_tokenizer_encode(tok, prompt, strlen(prompt), true, false, &ids, &n, &err), PONDER_OK);
    /* BOS, then the golden run's first four tokens */
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], 1);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(ids[i], json_integer_value(json_array_get(json_object_get(g, "generated_token_ids"), i - 1)));
    run_greedy(PONDER_TYPE_F16, ids, (int32_t)n, g, n - 1, 2e-2);
    free(ids);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(gg);
    json_decref(g);
}

/* A long prompt decoded as one batch (tiled matrix products, causal attention inside
 * the batch, 2 threads) gives the logits of the same tokens decoded one at a time. */
static void check_batch_equals_incremental(const char *rel, double tol)
{
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(tu_shared(rel), NULL, &m, &err), PONDER_OK);
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, &err), PONDER_OK);
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 512;
    cp.pool = pool;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab;
    enum { N = 300 }; /* more than one micro-batch tile, fewer than n_ctx */
    int32_t tokens[N];
    uint32_t rng = 12345;
    for (int i = 0; i < N; i++) {
        rng = rng * 1664525u + 1013904223u;
        tokens[i] = i == 0 ? 1 : (int32_t)(rng >> 8) % n_vocab;
    }
    float *step = malloc((size_t)N * n_vocab * sizeof *step);
    float *batch = malloc((size_t)N * n_vocab * sizeof *batch);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ponder_context_decode(ctx, &tokens[i], 1, NULL, &err), PONDER_OK);
        memcpy(step + (size_t)i * n_vocab, ponder_context_logits(ctx), (size_t)n_vocab * sizeof *step);
    }
    ponder_context_reset(ctx);
    assert_int_equal(ponder_context_decode(ctx, tokens, N, batch, &err), PONDER_OK);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double mx = 0, d = 0;
        for (int32_t v = 0; v < n_vocab; v++) {
            mx = fmax(mx, fabs(step[(size_t)i * n_vocab + v]));
            d = fmax(d, fabs(step[(size_t)i * n_vocab + v] - batch[(size_t)i * n_vocab + v]));
        }
        worst = fmax(worst, d / mx);
    }
    printf("%s: %d tokens, batch vs one at a time: max relative difference %.2e\n", rel, N, worst);
    assert_true(worst < tol);
    assert_memory_equal(ponder_context_logits(ctx), batch + (size_t)(N - 1) * n_vocab, (size_t)n_vocab * sizeof(float));
    free(step);
    free(batch);
    ponder_context_free(ctx);
    ponder_pool_free(pool);
    ponder_model_free(m);
}

static void test_batch_equals_incremental(void **state)
{
    (void)state;
    check_batch_equals_incremental("models/stories260K/stories260K.gguf", 1e-4);
    check_batch_equals_incremental("models/stories260K/quantized/stories260K-Q4_K_M.gguf", 2e-2);
    check_batch_equals_incremental("models/stories260K/quantized/stories260K-Q6_K.gguf", 2e-2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_bos_f32_kv),
        cmocka_unit_test(test_from_bos_f16_kv),
        cmocka_unit_test(test_from_prompt),
        cmocka_unit_test(test_batch_equals_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
