/*
 * test_tokenizer_ppl.c — whole-file tokenization as llama-perplexity does it: the text minus
 * one trailing '\n', add_special = true, parse_special = false. The token count without the
 * BOS and the first 32 tokens must equal those recorded in the JSON files of
 * reference/perplexity (llama.cpp at c392e509). Covers SPM (stories260K, syn-tiny-F32) and
 * BPE (SmolLM2) on 0.8-1.3 MB texts, CRLF line endings included. Also prints the speed.
 */
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

#include <jansson.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

typedef struct ppl_case {
    const char *json; /* relative to shared/ */
    const char *model_override; /* shipped model with the same tokenizer, or NULL */
} ppl_case;

static const ppl_case CASES[] = {
    {"reference/perplexity/stories260K__tinystories_val__c128.json", NULL},
    {"reference/perplexity/syn-tiny-F32__wiki.test.raw__c128.json", NULL},
    /* syn-tiny-smollm-F16.gguf is made on demand; the Q4_K_M file has the same tokenizer */
    {"reference/perplexity/syn-tiny-smollm-F16__wiki.test.raw__c128.json", "models/synthetic/syn-tiny-smollm-Q4_K_M.gguf"},
};

/* "shared/models/x.gguf" (relative to the project root) -> path under shared/ */
static const char *shared_path(const char *project_rel)
{
    const char *p = strncmp(project_rel, "shared/", 7) == 0 ? project_rel + 7 : project_rel;
    return tu_shared(p);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void run_case(void **state)
{
    const ppl_case *pc = *state;
    json_error_t jerr;
    json_t *root = json_load_file(tu_shared(pc->json), 0, &jerr);
    if (!root)
        fail_msg("%s: %s", pc->json, jerr.text);

    const char *model = json_string_value(json_object_get(root, "model"));
    const char *text_file = json_string_value(json_object_get(root, "text_file"));
    json_t *first = json_object_get(root, "first_text_tokens_without_bos");
    json_int_t n_want = json_integer_value(json_object_get(root, "n_text_tokens_without_bos"));
    assert_non_null(model);
    assert_non_null(text_file);
    assert_true(json_is_array(first));
    assert_true(n_want > 0);

    const char *model_path = shared_path(model);
    if (pc->model_override && !tu_shared_exists(model + 7))
        model_path = tu_shared(pc->model_override);

    ponder_error err = {0};
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    if (ponder_gguf_open(model_path, &g, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    if (ponder_tokenizer_create(g, &tok, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    ponder_gguf_free(g);

    size_t len;
    char *text = tu_read_file(shared_path(text_file), &len);
    assert_non_null(text);
    if (len > 0 && text[len - 1] == '\n')
        len--; /* llama-perplexity drops exactly one trailing newline */

    ponder_token *ids = NULL;
    size_t n = 0;
    double t0 = now_s();
    if (ponder_tokenizer_encode(tok, text, len, true, false, &ids, &n, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    double dt = now_s() - t0;
    print_message("  %s: %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n", text_file, len, n, dt,
                  (double)len / 1e6 / (dt > 0 ? dt : 1e-9));

    size_t skip = 0;
    if (ponder_tokenizer_add_bos(tok)) {
        assert_true(n > 0);
        assert_int_equal(ids[0], ponder_tokenizer_bos(tok));
        skip = 1;
    }
    assert_int_equal(n - skip, (size_t)n_want);
    size_t n_first = json_array_size(first);
    assert_true(n_first > 0 && n_first <= n - skip);
    for (size_t i = 0; i < n_first; i++) {
        json_int_t want = json_integer_value(json_array_get(first, i));
        if (ids[skip + i] != want)
            fail_msg("token %zu: want %lld, got %d", i, (long long)want, ids[skip + i]);
    }

    free(ids);
    free(text);
    ponder_tokenizer_free(tok);
    json_decref(root);
}

int main(void)
{
    struct CMUnitTest tests[sizeof CASES / sizeof CASES[0]];
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_case, (void *)&CASES[i]);
        tests[i].name = strrchr(CASES[i].json, '/') + 1;
    }
    return _cmocka_run_group_tests("tokenizer_ppl", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
