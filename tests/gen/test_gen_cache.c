/*
 * test_gen_cache.c — gen's prompt cache (ponder_gen_params.cache_prompts) on stories260K:
 * a request extending the last one's prompt and answer evaluates only the new tokens and
 * gives the same tokens as a generator without the cache (greedy and sampled); an
 * unrelated prompt, a cleared cache and a full context evaluate everything; a draft is
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gen.h"
#include "testutil.h"

#define MODEL "models/stories260K/stories260K.gguf"

static ponder_model *M;
static ponder_tokenizer *T;

static int setup(void **state)
{
    (void)state;
    ponder_error err = { 0 };
    if (ponder_model_load(tu_shared(MODEL), NULL, &M, &err) != PONDER_OK ||
        ponder_tokenizer_create(ponder_model_gguf(M), &T, &err) != PONDER_OK)
        return fprintf(stderr, "%s\n", err.msg), -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ponder_tokenizer_free(T);
    ponder_model_free(M);
    return 0;
}

static ponder_gen *make(bool cache, int32_t n_ctx, int32_t n_cells)
{
    ponder_gen_params p = ponder_gen_params_default();
    p.context.n_ctx = n_ctx;
    p.context.n_kv_cells = n_cells;
    p.cache_prompts = cache;
    ponder_gen *g = NULL;
    ponder_error err = { 0 };
    if (ponder_gen_create(M, T, &p, &g, &err) != PONDER_OK)
        fail_msg("gen_create: %s", err.msg);
    return g;
}

static bool no_cache_prompt; /* the next run's ponder_gen_request.no_cache_prompt */

/* One request; its tokens into out (n_out), its evaluated prompt positions returned. */
static int32_t run(ponder_gen *g, const ponder_token *prompt, int32_t n, float temp, ponder_token *out, int32_t *n_out)
{
    ponder_gen_request r = { 0 };
    r.prompt = prompt;
    r.n_prompt = n;
    r.n_choices = 1;
    r.max_tokens = 24;
    r.sampling = ponder_sampler_params_default();
    r.sampling.temp = temp;
    r.sampling.seed = 11;
    r.penalize_prompt = true;
    r.no_cache_prompt = no_cache_prompt;
    int32_t id = 0;
    ponder_error err = { 0 };
    ponder_gen_choice_result res;
    ponder_gen_usage use;
    if (ponder_gen_run(g, &r, &id, &err) != PONDER_OK || ponder_gen_result(g, id, 0, &res, &err) != PONDER_OK ||
        ponder_gen_usage_of(g, id, &use, &err) != PONDER_OK)
        fail_msg("run: %s", err.msg);
    assert_int_equal(use.prompt_tokens, n);
    memcpy(out, res.tokens, (size_t)res.n_tokens * sizeof *out);
    *n_out = res.n_tokens;
    ponder_gen_release(g, id);
    return use.prompt_tokens_evaluated;
}

static int32_t encode(const char *text, bool bos, ponder_token *out)
{
    ponder_token *ids = NULL;
    size_t n = 0;
    ponder_error err = { 0 };
    assert_int_equal(ponder_tokenizer_encode(T, text, strlen(text), bos, false, &ids, &n, &err), PONDER_OK);
    memcpy(out, ids, n * sizeof *out);
    free(ids);
    return (int32_t)n;
}

static void test_extends_last_turn(void **state)
{
    (void)state;
    const float temps[] = { 0.0f, 0.9f };
    for (size_t ti = 0; ti < 2; ti++) {
        ponder_gen *cached = make(true, 256, 0), *plain = make(false, 256, 0);
        ponder_token a[256], b[256], out1[64], out2[64], ref[64];
        int32_t n1, n2, nr;
        const int32_t na = encode("Once upon a time", true, a);
        assert_int_equal(run(cached, a, na, temps[ti], out1, &n1), na); /* nothing cached yet */
        assert_true(n1 >= 2);
        /* the next turn: the prompt, the answer but its last token, new text */
        memcpy(b, a, (size_t)na * sizeof *b);
        memcpy(b + na, out1, (size_t)(n1 - 1) * sizeof *b);
        const int32_t n_new = encode(" Then the dog said", false, b + na + n1 - 1);
        const int32_t nb = na + n1 - 1 + n_new;
        assert_int_equal(run(cached, b, nb, temps[ti], out2, &n2), n_new);
        assert_int_equal(run(plain, b, nb, temps[ti], ref, &nr), nb);
        assert_int_equal(n2, nr);
        assert_memory_equal(out2, ref, (size_t)nr * sizeof *ref);
        /* the same prompt again: all but the last token come from the cache */
        assert_int_equal(run(cached, b, nb, temps[ti], out2, &n2), 1);
        assert_memory_equal(out2, ref, (size_t)nr * sizeof *ref);
        /* no_cache_prompt (cache_prompt: false): all evaluated, the same tokens; its KV is
         * kept, so the next one reuses it again */
        no_cache_prompt = true;
        assert_int_equal(run(cached, b, nb, temps[ti], out2, &n2), nb);
        no_cache_prompt = false;
        assert_memory_equal(out2, ref, (size_t)nr * sizeof *ref);
        assert_int_equal(run(cached, b, nb, temps[ti], out2, &n2), 1);
        /* a cleared cache, an unrelated prompt: everything is evaluated */
        ponder_gen_cache_clear(cached);
        assert_int_equal(run(cached, b, nb, temps[ti], out2, &n2), nb);
        assert_memory_equal(out2, ref, (size_t)nr * sizeof *ref);
        const int32_t nc = encode("The cat", true, a);
        assert_int_equal(run(cached, a, nc, temps[ti], out2, &n2), nc - 1); /* BOS shared */
        ponder_gen_free(cached);
        ponder_gen_free(plain);
    }
}

/* With cells for little more than one prompt, the cached positions give way. */
static void test_cells_give_way(void **state)
{
    (void)state;
    ponder_gen *g = make(true, 64, 40);
    ponder_token a[64], b[64], out[64];
    int32_t n;
    const int32_t na = encode("Once upon a time there was a little girl", true, a);
    run(g, a, na, 0.0f, out, &n);
    const int32_t nb = encode("Lily and Tom went to the park to play with a red ball", true, b);
    assert_true(nb + 24 > 40 - na); /* does not fit beside the cached positions */
    assert_int_equal(run(g, b, nb, 0.0f, out, &n), nb - 1);
    assert_true(n > 0);
    ponder_gen_free(g);
}

static void test_no_draft(void **state)
{
    (void)state;
    ponder_gen_params p = ponder_gen_params_default();
    p.cache_prompts = true;
    p.draft = M;
    ponder_gen *g = NULL;
    ponder_error err = { 0 };
    assert_int_equal(ponder_gen_create(M, T, &p, &g, &err), PONDER_ERR_INVALID_ARG);
    assert_null(g);
    assert_non_null(strstr(err.msg, "draft"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extends_last_turn),
        cmocka_unit_test(test_cells_give_way),
        cmocka_unit_test(test_no_draft),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
