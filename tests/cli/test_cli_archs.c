/*
 * test_cli_archs.c — `ponder run`, `bench`, `perplexity` and `info` on every architecture
 * beyond llama/qwen2 (gemma2, phi3, Mixtral-style MoE), through the built binary.
 *
 * The logits themselves are checked against llama.cpp in tests/model/test_logits.c; here
 * the point is that each command works end to end on these files and keeps the engine's
 * promises: greedy text independent of the thread count, perplexity independent of the
 * batch size (batch-invariant products), and MoE cost counted on the active experts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static const char *const ARCH_MODELS[] = {
    "models/synthetic/syn-tiny-gemma2-Q8_0.gguf",
    "models/synthetic/syn-tiny-phi3-Q8_0.gguf",
    "models/synthetic/syn-tiny-moe-Q8_0.gguf",
    "models/synthetic/syn-tiny-moe-Q4_K_M.gguf",
};
#define N_ARCH_MODELS (sizeof ARCH_MODELS / sizeof ARCH_MODELS[0])

static json_t *parse_last_json_line(const tu_cli_result *r)
{
    const char *line = r->out;
    for (const char *p = r->out; *p; p++)
        if (p[0] == '\n' && p[1] && p[1] != '\n')
            line = p + 1;
    json_error_t e;
    json_t *j = json_loads(line, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("not JSON (%s): %.300s", e.text, line);
    return j;
}

static void expect_ok(const tu_cli_result *r, const char *what, const char *model)
{
    if (r->status != 0)
        fail_msg("%s on %s: exit %d: %.400s", what, model, r->status, r->err);
}

static void test_run_is_thread_count_independent(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ARCH_MODELS; i++) {
        const char *m = tu_shared(ARCH_MODELS[i]);
        tu_cli_result a = TU_RUN_CLI(NULL, "run", "-m", m, "-p", "The little dog", "-n", "24", "--temp", "0",
                                     "-t", "1", "--json");
        tu_cli_result b = TU_RUN_CLI(NULL, "run", "-m", m, "-p", "The little dog", "-n", "24", "--temp", "0",
                                     "-t", "2", "--json");
        expect_ok(&a, "run -t 1", m);
        expect_ok(&b, "run -t 2", m);
        json_t *ja = parse_last_json_line(&a), *jb = parse_last_json_line(&b);
        const char *ta = json_string_value(json_object_get(ja, "text"));
        const char *tb = json_string_value(json_object_get(jb, "text"));
        assert_non_null(ta);
        assert_non_null(tb);
        assert_true(strlen(ta) > 0);
        assert_string_equal(ta, tb);
        assert_true(json_equal(json_object_get(ja, "tokens"), json_object_get(jb, "tokens")));
        assert_int_equal(json_array_size(json_object_get(ja, "tokens")), 24);
        json_decref(ja);
        json_decref(jb);
        tu_cli_result_free(&a);
        tu_cli_result_free(&b);
    }
}

static double perplexity_of(const char *model, const char *batch)
{
    const char *text = tu_shared("data/tinystories/tinystories_val.txt");
    tu_cli_result r = TU_RUN_CLI(NULL, "perplexity", "-m", model, "-f", text, "-c", "64", "-b", batch, "--chunks",
                                 "3", "-t", "2", "--json");
    expect_ok(&r, "perplexity", model);
    json_t *j = parse_last_json_line(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "n_chunks")), 3);
    const double ppl = json_number_value(json_object_get(j, "ppl"));
    json_decref(j);
    tu_cli_result_free(&r);
    return ppl;
}

static void test_perplexity_is_batch_independent(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ARCH_MODELS; i++) {
        const char *m = tu_shared(ARCH_MODELS[i]);
        const double whole = perplexity_of(m, "64"), pieces = perplexity_of(m, "7");
        assert_true(isfinite(whole) && whole > 1.0);
        if (whole != pieces)
            fail_msg("%s: ppl %.17g with -b 64 but %.17g with -b 7", m, whole, pieces);
    }
}

static void test_bench_and_info_count_active_experts(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ARCH_MODELS; i++) {
        const char *m = tu_shared(ARCH_MODELS[i]);
        const bool moe = strstr(m, "-moe-") != NULL;

        tu_cli_result r = TU_RUN_CLI(NULL, "bench", "-m", m, "-p", "16", "-n", "4", "-r", "1", "-t", "1", "--json");
        expect_ok(&r, "bench", m);
        json_error_t e;
        json_t *arr = json_loads(r.out, 0, &e);
        if (!json_is_array(arr) || json_array_size(arr) != 2)
            fail_msg("bench --json on %s: expected 2 results: %.300s", m, r.out);
        for (size_t k = 0; k < 2; k++) {
            json_t *t = json_array_get(arr, k);
            assert_true(json_number_value(json_object_get(t, "avg_ts")) > 0.0);
            const json_int_t total = json_integer_value(json_object_get(t, "model_n_params"));
            const json_int_t active = json_integer_value(json_object_get(t, "model_n_params_active"));
            assert_true(total > 0);
            if (moe)
                assert_true(active < total);
            else
                assert_true(active == total);
        }
        json_decref(arr);
        tu_cli_result_free(&r);

        /* FLOPs per token: at least 2 per active matrix weight, and for the MoE file below
         * 2 per weight overall (the idle experts are not counted) */
        r = TU_RUN_CLI(NULL, "info", "-m", m, "--json");
        expect_ok(&r, "info", m);
        json_t *j = json_loads(r.out, 0, &e);
        assert_non_null(j);
        const json_int_t total = json_integer_value(json_object_get(j, "n_params"));
        const json_int_t active = json_integer_value(json_object_get(j, "n_params_active"));
        const json_int_t vocab = json_integer_value(json_object_get(j, "n_vocab"));
        const json_int_t embd = json_integer_value(json_object_get(j, "n_embd"));
        const json_int_t flops = json_integer_value(json_object_get(j, "flops_per_token"));
        if (moe) {
            assert_true(active < total);
            assert_true(flops < 2 * total - 2 * vocab * embd);
        }
        assert_true(flops >= 2 * (active - 2 * vocab * embd));
        json_decref(j);
        tu_cli_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_is_thread_count_independent),
        cmocka_unit_test(test_perplexity_is_batch_independent),
        cmocka_unit_test(test_bench_and_info_count_active_experts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
