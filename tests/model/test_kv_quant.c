/*
 * test_kv_quant.c — the quantized KV cache against llama.cpp: every run of
 * shared/reference/perplexity/kv-cache-quantized.json (K and V caches in f16, q8_0, q4_0,
 * with and without flash attention) redone through the library with llama-perplexity's
 * method (that folder's README: the text tokenized once, chunks of -c tokens each
 * evaluated alone with BOS first, the second half scored), final ln PPL within the
 * README's tolerance. The tolerance is far below the cost of a q4_0 cache (0.02–0.11
 * nats), so the test also shows the quantization itself matches llama.cpp's. The
 * synthetic model's runs are quick; the arithmetic models' (40 chunks of 256) carry the
 * "slow" label (argument "arith").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/model.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

#define LN_PPL_TOL 3e-3 /* reference/perplexity/README.md: F32/F16 models, final value */

static const char *only; /* "arith" or "syn-tiny": the runs whose model path contains it */

static ponder_type cache_type(const char *name)
{
    if (!strcmp(name, "q8_0"))
        return PONDER_TYPE_Q8_0;
    if (!strcmp(name, "q4_0"))
        return PONDER_TYPE_Q4_0;
    if (!strcmp(name, "f32"))
        return PONDER_TYPE_F32;
    return PONDER_TYPE_F16;
}

/* -log softmax(z)[t]: float exps, double sum and log (llama-perplexity) */
static double token_nll(const float *z, int32_t n_vocab, int32_t t)
{
    float max = z[0];
    for (int32_t i = 1; i < n_vocab; i++)
        max = z[i] > max ? z[i] : max;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += (double)expf(z[i] - max);
    return -((double)(z[t] - max) - log(sum));
}

/* "-c 128 --chunks 20" from the reference's command line */
static int arg_int(const char *command, const char *flag)
{
    const char *p = strstr(command, flag);
    assert_non_null(p);
    return atoi(p + strlen(flag));
}

/* Mean NLL of llama-perplexity's method for one reference run. */
static double ln_ppl(json_t *run, ponder_pool *pool)
{
    const char *command = json_string_value(json_object_get(run, "command"));
    const int n_ctx = arg_int(command, " -c "), max_chunks = arg_int(command, " --chunks ");
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(tu_model_path(json_string_value(json_object_get(run, "model"))), NULL, &m, &err),
                     PONDER_OK);
    ponder_tokenizer *tok = NULL;
    assert_int_equal(ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err), PONDER_OK);
    size_t len = 0;
    char *text = tu_read_file(tu_model_path(json_string_value(json_object_get(run, "text_file"))), &len);
    assert_non_null(text);
    if (len > 0 && text[len - 1] == '\n')
        len--; /* exactly one trailing newline dropped */
    ponder_token *tokens = NULL;
    size_t n_tokens = 0;
    assert_int_equal(ponder_tokenizer_encode(tok, text, len, true, false, &tokens, &n_tokens, &err), PONDER_OK);

    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = n_ctx;
    cp.type_k = cache_type(json_string_value(json_object_get(run, "cache_type_k")));
    cp.type_v = cache_type(json_string_value(json_object_get(run, "cache_type_v")));
    cp.flash_attn = json_is_true(json_object_get(run, "flash_attn")) ? PONDER_FLASH_ATTN_ON : PONDER_FLASH_ATTN_OFF;
    cp.pool = pool;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab, first = n_ctx / 2;
    float *logits = malloc((size_t)n_ctx * (size_t)n_vocab * sizeof(float));
    int32_t *chunk = malloc((size_t)n_ctx * sizeof(int32_t));
    assert_non_null(logits);
    assert_non_null(chunk);
    size_t n_chunks = n_tokens / (size_t)n_ctx;
    n_chunks = n_chunks < (size_t)max_chunks ? n_chunks : (size_t)max_chunks;
    double nll = 0.0;
    size_t count = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        memcpy(chunk, tokens + c * (size_t)n_ctx, (size_t)n_ctx * sizeof(int32_t));
        if (ponder_tokenizer_add_bos(tok))
            chunk[0] = ponder_tokenizer_bos(tok);
        ponder_context_reset(ctx);
        assert_int_equal(ponder_context_decode(ctx, chunk, n_ctx, logits, &err), PONDER_OK);
        for (int32_t j = first; j < n_ctx - 1; j++, count++)
            nll += token_nll(logits + (size_t)j * (size_t)n_vocab, n_vocab, chunk[j + 1]);
    }
    free(chunk);
    free(logits);
    free(tokens);
    free(text);
    ponder_context_free(ctx);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
    return nll / (double)count;
}

static void test_reference_runs(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *runs = json_load_file(tu_shared("reference/perplexity/kv-cache-quantized.json"), 0, &jerr);
    assert_non_null(runs);
    ponder_error err = {0};
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, &err), PONDER_OK);
    double worst = 0.0;
    size_t n_done = 0, i;
    json_t *run;
    json_array_foreach(runs, i, run) {
        const char *model = json_string_value(json_object_get(run, "model"));
        if (!strstr(model, only))
            continue;
        const double ours = ln_ppl(run, pool), ref = json_number_value(json_object_get(run, "final_ln_ppl"));
        printf("%-24s K %-4s V %-4s fa %d  ln PPL %.6f  llama.cpp %.6f  diff %+.2e\n", strrchr(model, '/') + 1,
               json_string_value(json_object_get(run, "cache_type_k")),
               json_string_value(json_object_get(run, "cache_type_v")), json_is_true(json_object_get(run, "flash_attn")),
               ours, ref, ours - ref);
        worst = fmax(worst, fabs(ours - ref));
        n_done++;
    }
    printf("%zu runs, largest |diff| %.2e (tolerance %.0e)\n", n_done, worst, LN_PPL_TOL);
    assert_true(n_done > 0);
    assert_true(worst <= LN_PPL_TOL);
    ponder_pool_free(pool);
    json_decref(runs);
}

/* A quantized cache of a head dimension that is no multiple of 32 (stories260K: 8) and a
 * quantized V cache with flash attention off are refused with a message. */
static void test_refusals(void **state)
{
    (void)state;
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(tu_shared("models/stories260K/stories260K.gguf"), NULL, &m, &err), PONDER_OK);
    ponder_context_params cp = ponder_context_params_default();
    ponder_context *ctx = NULL;
    cp.type_k = PONDER_TYPE_Q8_0;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "multiple of 32"));
    assert_int_equal(ponder_kv_bytes_per_token(m, PONDER_TYPE_Q8_0, PONDER_TYPE_F16), 0);
    ponder_model_free(m);

    assert_int_equal(ponder_model_load(tu_shared("models/synthetic/syn-tiny-F32.gguf"), NULL, &m, &err), PONDER_OK);
    cp = ponder_context_params_default();
    cp.type_v = PONDER_TYPE_Q4_0;
    cp.flash_attn = PONDER_FLASH_ATTN_OFF;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "flash attention"));
    cp.type_v = PONDER_TYPE_Q5_0;
    cp.flash_attn = PONDER_FLASH_ATTN_AUTO;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_ERR_UNSUPPORTED);
    /* 2 layers × 2 KV heads × 64: f16 K and V 2 × 512 bytes a layer; q8_0 34 per 32, q4_0 18 */
    assert_int_equal(ponder_kv_bytes_per_token(m, PONDER_TYPE_F16, PONDER_TYPE_F16), 2 * (256 + 256));
    assert_int_equal(ponder_kv_bytes_per_token(m, PONDER_TYPE_Q8_0, PONDER_TYPE_Q8_0), 2 * (136 + 136));
    assert_int_equal(ponder_kv_bytes_per_token(m, PONDER_TYPE_Q4_0, PONDER_TYPE_Q4_0), 2 * (72 + 72));
    ponder_model_free(m);
}

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : "syn-tiny";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_reference_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
