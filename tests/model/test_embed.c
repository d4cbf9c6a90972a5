/*
 * test_embed.c — sentence embeddings (ponder/embed.h) against llama.cpp's llama-embedding:
 * every JSON in shared/reference/embeddings/ (four models, mean and last pooling), with
 * that folder's tolerances (cosine ≥ 0.9999 and max |Δ| ≤ 1e-3 for F32 weights, cosine ≥
 * 0.999 for quantized ones); each file prints its measured agreement. Also: the batched
 * vectors are bit-identical to one input at a time, cls pooling is the first token's state,
 * mean pooling is the mean of the causal prefixes' last states, bad inputs are errors, and
 * `ponder embed` prints the library's vectors exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/embed.h"
#include "ponder/model.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

/* Any weight matrix not F32: the quantized tolerance. */
static bool quantized(const ponder_model *m)
{
    const ponder_gguf *g = ponder_model_gguf(m);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        if (t->ne[1] > 1 && t->type != PONDER_TYPE_F32)
            return true;
    }
    return false;
}

static ponder_pool *test_pool(void)
{
    ponder_error err = {0};
    ponder_pool *pool = NULL;
    const char *threads = getenv("PONDER_TEST_THREADS");
    if (threads && atoi(threads) > 1)
        assert_int_equal(ponder_pool_create(atoi(threads), &pool, &err), PONDER_OK);
    return pool;
}

/* The texts tokenized as llama-embedding does (the model's BOS/EOS flags, special texts
 * parsed). */
typedef struct inputs {
    size_t n;
    ponder_token *ids[16];
    ponder_embed_input in[16];
} inputs;

static void tokenize_texts(const ponder_model *m, json_t *texts, inputs *x)
{
    ponder_error err = {0};
    ponder_tokenizer *tok = NULL;
    assert_int_equal(ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err), PONDER_OK);
    x->n = json_array_size(texts);
    assert_true(x->n > 0 && x->n <= 16);
    for (size_t i = 0; i < x->n; i++) {
        const char *s = json_string_value(json_array_get(texts, i));
        size_t n_ids = 0;
        assert_int_equal(ponder_tokenizer_encode(tok, s, strlen(s), true, true, &x->ids[i], &n_ids, &err), PONDER_OK);
        x->in[i] = (ponder_embed_input){.tokens = x->ids[i], .n_tokens = (int32_t)n_ids};
    }
    ponder_tokenizer_free(tok);
}

static void inputs_free(inputs *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->ids[i]);
}

static void check_reference(void **state)
{
    const char *path = *state;
    const char *file = strrchr(path, '/') + 1;
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    json_error_t jerr;
    json_t *ref = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(ref);
    const char *model_path = tu_model_path(json_string_value(json_object_get(ref, "model")));
    if (!model_path) {
        printf("SKIP %s: model %s not found\n", file, json_string_value(json_object_get(ref, "model")));
        json_decref(ref);
        skip();
    }
    ponder_pooling pooling;
    assert_true(ponder_pooling_parse(json_string_value(json_object_get(ref, "pooling")), &pooling));

    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(model_path, NULL, &m, &err), PONDER_OK);
    const int32_t n_embd = ponder_model_hparams(m)->n_embd;
    inputs x;
    tokenize_texts(m, json_object_get(ref, "texts"), &x);
    json_t *embs = json_object_get(ref, "embeddings");
    assert_int_equal(json_array_size(embs), x.n);

    /* all texts in one batch */
    ponder_pool *pool = test_pool();
    ponder_context_params cp = ponder_embed_context_params(x.in, (int32_t)x.n, 0);
    cp.pool = pool;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    float *out = malloc(x.n * (size_t)n_embd * sizeof *out);
    assert_non_null(out);
    assert_int_equal(ponder_embed(ctx, x.in, (int32_t)x.n, pooling, true, out, &err), PONDER_OK);

    const bool quant = quantized(m);
    const double cos_tol = quant ? 0.999 : 0.9999, abs_tol = 1e-3;
    double min_cos = 1.0, max_abs = 0.0;
    for (size_t i = 0; i < x.n; i++) {
        json_t *want = json_array_get(embs, i);
        assert_int_equal(json_array_size(want), (size_t)n_embd);
        double dot = 0, nw = 0, ng = 0;
        for (int32_t d = 0; d < n_embd; d++) {
            const double w = json_number_value(json_array_get(want, (size_t)d)), g = out[i * (size_t)n_embd + d];
            dot += w * g;
            nw += w * w;
            ng += g * g;
            max_abs = fmax(max_abs, fabs(w - g));
        }
        min_cos = fmin(min_cos, dot / sqrt(nw * ng));
    }
    printf("[%s, %d thread(s)] %-36s %zu texts  min cosine %.8f (tol %g)  max |diff| %.2e%s\n", ponder_cpu_isa(),
           ponder_pool_n_threads(pool), file, x.n, min_cos, cos_tol, max_abs, quant ? "" : " (tol 1e-03)");
    assert_true(min_cos >= cos_tol);
    if (!quant)
        assert_true(max_abs <= abs_tol);

    /* one text at a time in a one-sequence context: bit-identical */
    ponder_context_params cp1 = ponder_embed_context_params(x.in, (int32_t)x.n, 0);
    cp1.n_seq_max = 1;
    cp1.n_kv_cells = 0;
    cp1.pool = pool;
    ponder_context *ctx1 = NULL;
    assert_int_equal(ponder_context_create(m, &cp1, &ctx1, &err), PONDER_OK);
    float *one = malloc((size_t)n_embd * sizeof *one);
    assert_non_null(one);
    for (size_t i = 0; i < x.n; i++) {
        assert_int_equal(ponder_embed(ctx1, &x.in[i], 1, pooling, true, one, &err), PONDER_OK);
        assert_memory_equal(one, out + i * (size_t)n_embd, (size_t)n_embd * sizeof *one);
    }
    free(one);
    ponder_context_free(ctx1);

    /* cells for one input at a time (max_cells): several batches, the same vectors */
    ponder_context_params cp2 = ponder_embed_context_params(x.in, (int32_t)x.n, 1);
    assert_int_equal(cp2.n_kv_cells, 32);
    cp2.pool = pool;
    ponder_context *ctx2 = NULL;
    assert_int_equal(ponder_context_create(m, &cp2, &ctx2, &err), PONDER_OK);
    float *again = malloc(x.n * (size_t)n_embd * sizeof *again);
    assert_non_null(again);
    assert_int_equal(ponder_embed(ctx2, x.in, (int32_t)x.n, pooling, true, again, &err), PONDER_OK);
    assert_memory_equal(again, out, x.n * (size_t)n_embd * sizeof *again);
    free(again);
    ponder_context_free(ctx2);
    free(out);
    ponder_context_free(ctx);
    ponder_pool_free(pool);
    inputs_free(&x);
    ponder_model_free(m);
    json_decref(ref);
}

/* cls = the first token's state; mean = the mean of each prefix's last state (the
 * attention is causal); unnormalized; and the model's own pooling is mean here. */
static void test_pooling_kinds(void **state)
{
    (void)state;
    const char *path = tu_model_path("shared/models/synthetic/syn-tiny-F32.gguf");
    assert_non_null(path);
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    assert_int_equal(ponder_model_pooling(m), PONDER_POOLING_MEAN);
    const int32_t n_embd = ponder_model_hparams(m)->n_embd;
    json_t *texts = json_pack("[s]", "The little dog ran to the park");
    inputs x;
    tokenize_texts(m, texts, &x);
    json_decref(texts);
    const int32_t n = x.in[0].n_tokens;
    assert_true(n >= 4);

    ponder_context_params cp = ponder_embed_context_params(x.in, 1, 0);
    cp.n_seq_max = n;
    cp.n_kv_cells = 0;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    float *mean = malloc((size_t)n_embd * sizeof(float)), *cls = malloc((size_t)n_embd * sizeof(float));
    float *prefix_last = malloc((size_t)n * (size_t)n_embd * sizeof(float));
    ponder_embed_input *prefixes = malloc((size_t)n * sizeof *prefixes);
    assert_true(mean && cls && prefix_last && prefixes);
    assert_int_equal(ponder_embed(ctx, x.in, 1, PONDER_POOLING_MEAN, false, mean, &err), PONDER_OK);
    assert_int_equal(ponder_embed(ctx, x.in, 1, PONDER_POOLING_CLS, false, cls, &err), PONDER_OK);
    for (int32_t k = 0; k < n; k++)
        prefixes[k] = (ponder_embed_input){.tokens = x.ids[0], .n_tokens = k + 1};
    assert_int_equal(ponder_embed(ctx, prefixes, n, PONDER_POOLING_LAST, false, prefix_last, &err), PONDER_OK);
    assert_memory_equal(cls, prefix_last, (size_t)n_embd * sizeof(float));
    double max_diff = 0, norm = 0;
    for (int32_t d = 0; d < n_embd; d++) {
        double s = 0;
        for (int32_t k = 0; k < n; k++)
            s += prefix_last[(size_t)k * n_embd + d];
        max_diff = fmax(max_diff, fabs(s / n - mean[d]));
        norm += (double)mean[d] * mean[d];
    }
    assert_true(norm > 1.0); /* unnormalized states of this model are well above unit length */
    assert_true(max_diff < 1e-5);
    free(mean);
    free(cls);
    free(prefix_last);
    free(prefixes);
    ponder_context_free(ctx);
    inputs_free(&x);
    ponder_model_free(m);
}

static void test_errors(void **state)
{
    (void)state;
    const char *path = tu_model_path("shared/models/synthetic/syn-tiny-F32.gguf");
    assert_non_null(path);
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 8;
    cp.n_seq_max = 2;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    const int32_t n_embd = ponder_model_hparams(m)->n_embd;
    float out[2 * 256];
    assert_true(n_embd <= 256);
    const int32_t ok[3] = {1, 5, 9}, bad[2] = {1, 1 << 30}, long_[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ponder_embed_input in[2] = {{ok, 3}, {ok, 0}};
    assert_int_equal(ponder_embed(ctx, in, 2, PONDER_POOLING_MEAN, true, out, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "input 1 is empty"));
    in[1] = (ponder_embed_input){bad, 2};
    assert_int_equal(ponder_embed(ctx, in, 2, PONDER_POOLING_MEAN, true, out, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "input 1: token id"));
    in[1] = (ponder_embed_input){long_, 9};
    assert_int_equal(ponder_embed(ctx, in, 2, PONDER_POOLING_MEAN, true, out, &err), PONDER_ERR_RANGE);
    assert_non_null(strstr(err.msg, "input 1 has 9 tokens"));
    assert_int_equal(ponder_embed(ctx, in, 1, (ponder_pooling)7, true, out, &err), PONDER_ERR_INVALID_ARG);
    /* the context still works after the errors */
    assert_int_equal(ponder_embed(ctx, in, 1, PONDER_POOLING_LAST, true, out, &err), PONDER_OK);
    double norm = 0;
    for (int32_t d = 0; d < n_embd; d++)
        norm += (double)out[d] * out[d];
    assert_true(fabs(norm - 1.0) < 1e-5);
    ponder_pooling p;
    assert_true(ponder_pooling_parse("cls", &p) && p == PONDER_POOLING_CLS);
    assert_false(ponder_pooling_parse("max", &p));
    ponder_context_free(ctx);
    ponder_model_free(m);
}

/* `ponder embed`: its text output reads back (strtof) as exactly the library's vectors, and
 * --json has OpenAI's shape with the same numbers, usage counting the tokens. */
static void test_cli(void **state)
{
    (void)state;
    if (!getenv("PONDER_BIN"))
        skip();
    const char *path = tu_model_path("shared/models/synthetic/syn-tiny-F32.gguf");
    assert_non_null(path);
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    const int32_t n_embd = ponder_model_hparams(m)->n_embd;
    json_t *texts = json_pack("[s, s]", "Once upon a time", "a");
    inputs x;
    tokenize_texts(m, texts, &x);
    json_decref(texts);
    ponder_context_params cp = ponder_embed_context_params(x.in, 2, 0);
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    float want[2 * 256];
    assert_true(n_embd <= 256);
    assert_int_equal(ponder_embed(ctx, x.in, 2, PONDER_POOLING_LAST, true, want, &err), PONDER_OK);

    /* empty lines are skipped */
    tu_cli_result r = TU_RUN_CLI(NULL, "embed", "-m", path, "-p", "Once upon a time\n\na\n",
                                 "--pooling", "last", "-t", "1");
    assert_int_equal(r.status, 0);
    char *p = r.out;
    for (int i = 0; i < 2; i++) {
        for (int32_t d = 0; d < n_embd; d++) {
            char *end = NULL;
            const float v = strtof(p, &end);
            assert_true(end > p);
            assert_memory_equal(&v, &want[(size_t)i * n_embd + d], sizeof v);
            p = end;
        }
        assert_int_equal(*p, '\n');
        p++;
    }
    assert_int_equal(*p, '\0');
    tu_cli_result_free(&r);

    r = TU_RUN_CLI(NULL, "embed", "-m", path, "-p", "Once upon a time\na", "--pooling", "last",
                   "--json", "-t", "1");
    assert_int_equal(r.status, 0);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    assert_string_equal(json_string_value(json_object_get(j, "pooling")), "last");
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(data, i);
        assert_string_equal(json_string_value(json_object_get(e, "object")), "embedding");
        assert_int_equal(json_integer_value(json_object_get(e, "index")), (json_int_t)i);
        json_t *v = json_object_get(e, "embedding");
        assert_int_equal(json_array_size(v), (size_t)n_embd);
        for (int32_t d = 0; d < n_embd; d++)
            assert_true((float)json_real_value(json_array_get(v, (size_t)d)) == want[i * (size_t)n_embd + d]);
    }
    const json_int_t tokens = x.in[0].n_tokens + x.in[1].n_tokens;
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), tokens);
    json_decref(j);
    tu_cli_result_free(&r);

    r = TU_RUN_CLI(NULL, "embed", "-m", path, "-p", "a", "--pooling", "max");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--pooling must be mean, last or cls"));
    tu_cli_result_free(&r);
    ponder_context_free(ctx);
    inputs_free(&x);
    ponder_model_free(m);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct CMUnitTest *)a)->name, ((const struct CMUnitTest *)b)->name);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL; /* optional substring filter */
    struct CMUnitTest tests[64];
    char *paths[64];
    size_t n = 0;
    DIR *dir = opendir(tu_shared("reference/embeddings"));
    assert_non_null(dir);
    struct dirent *de;
    while ((de = readdir(dir)) && n < 62) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0 || (only && !strstr(de->d_name, only)))
            continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", tu_shared("reference/embeddings"), de->d_name);
        paths[n] = strdup(full);
        tests[n] = (struct CMUnitTest){.name = strrchr(paths[n], '/') + 1, .test_func = check_reference,
                                       .initial_state = paths[n]};
        n++;
    }
    closedir(dir);
    qsort(tests, n, sizeof tests[0], by_name);
    const size_t n_ref = n;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_pooling_kinds);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_errors);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_cli);
    int rc = _cmocka_run_group_tests("embed", tests, n, NULL, NULL);
    for (size_t i = 0; i < n_ref; i++)
        free(paths[i]);
    return rc;
}
