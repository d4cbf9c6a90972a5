/*
 * test_perplexity.c — `ponder perplexity` against llama-perplexity's runs in
 * shared/reference/perplexity/: ln PPL after every chunk and at the end, and the ± value,
 * within the tolerances that folder's README gives (chunk 1; chunks >= 10 and final),
 * plus the quantized stories260K files of stories260K-quantized.json (final PPL and ±).
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
#include <unistd.h>

#include "testutil.h"

typedef struct ppl_case {
    const char *reference;  /* file in reference/perplexity/ */
    double tol_first;       /* |Δ ln PPL| for chunks 1..9 */
    double tol_late;        /* chunks >= 10, final, and the ± (relative) */
} ppl_case;

/* Runs the binary and parses its --json output. */
static json_t *run_perplexity(const char *model, const char *text, int n_ctx, int chunks)
{
    const char *bin = getenv("PONDER_BIN");
    assert_non_null(bin);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' perplexity -m '%s' -f '%s' -c %d --chunks %d -t 2 --json", bin, model, text,
             n_ctx, chunks);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = NULL;
    size_t len = 0, cap = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            out = realloc(out, cap);
        }
        memcpy(out + len, buf, n);
        len += n;
    }
    assert_int_equal(pclose(p), 0);
    assert_non_null(out);
    out[len] = '\0';
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    if (!j)
        fail_msg("bad JSON from ponder perplexity: %s\n%s", jerr.text, out);
    free(out);
    return j;
}

static void check_case(void **state)
{
    const ppl_case *c = *state;
    char rel[512];
    snprintf(rel, sizeof rel, "reference/perplexity/%s", c->reference);
    json_error_t jerr;
    json_t *ref = json_load_file(tu_shared(rel), 0, &jerr);
    assert_non_null(ref);
    const char *model = tu_model_path(json_string_value(json_object_get(ref, "model")));
    if (!model) {
        json_decref(ref);
        skip();
    }
    const char *text = json_string_value(json_object_get(ref, "text_file"));
    const int n_ctx = (int)json_integer_value(json_object_get(ref, "n_ctx"));
    json_t *ref_running = json_object_get(ref, "running_ln_ppl");
    const int n_chunks = (int)json_array_size(ref_running);
    json_t *ours = run_perplexity(model, tu_shared(text + strlen("shared/")), n_ctx, n_chunks);

    json_t *running = json_object_get(ours, "running_ppl");
    assert_int_equal(json_array_size(running), (size_t)n_chunks);
    double worst_first = 0, worst_late = 0;
    for (int k = 0; k < n_chunks; k++) {
        double want = json_number_value(json_array_get(json_array_get(ref_running, (size_t)k), 1));
        double got = log(json_number_value(json_array_get(running, (size_t)k)));
        double d = fabs(got - want);
        if (k + 1 < 10)
            worst_first = fmax(worst_first, d);
        else
            worst_late = fmax(worst_late, d);
    }
    const double d_final = fabs(json_number_value(json_object_get(ours, "ln_ppl")) -
                                json_number_value(json_object_get(ref, "final_ln_ppl")));
    const double d_err = fabs(log(json_number_value(json_object_get(ours, "ppl_stderr")) /
                                  json_number_value(json_object_get(ref, "final_ppl_stderr"))));
    printf("%-48s chunks 1-9 %.1e (tol %.0e), chunks >= 10 %.1e, final %.1e, +/- %.1e (tol %.0e)\n", c->reference,
           worst_first, c->tol_first, worst_late, d_final, d_err, c->tol_late);
    assert_true(worst_first <= c->tol_first);
    assert_true(worst_late <= c->tol_late);
    assert_true(d_final <= c->tol_late);
    assert_true(d_err <= c->tol_late);
    json_decref(ours);
    json_decref(ref);
}

/* Quantizes stories260K.gguf with `ponder quantize` to the preset named in the
 * reference's made_by line; returns the output path (in a temp folder) or NULL. */
static const char *quantize_own(const char *made_by, char *out, size_t cap)
{
    const char *preset = strrchr(made_by, ' ');
    assert_non_null(preset);
    preset++;
    static char dir[] = "/tmp/ponder-ppl-quant-XXXXXX";
    static bool made;
    if (!made) {
        assert_non_null(mkdtemp(dir));
        made = true;
    }
    snprintf(out, cap, "%s/stories260K-%s.gguf", dir, preset);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' '%s' %s >/dev/null", getenv("PONDER_BIN"),
             tu_shared("models/stories260K/stories260K.gguf"), out, preset);
    assert_int_equal(system(cmd), 0);
    return out;
}

static void check_quantized_stories(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *list = json_load_file(tu_shared("reference/perplexity/stories260K-quantized.json"), 0, &jerr);
    assert_non_null(list);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *model = tu_model_path(json_string_value(json_object_get(e, "model")));
        assert_non_null(model);
        const char *text = json_string_value(json_object_get(e, "text"));
        json_t *ours = run_perplexity(model, tu_shared(text + strlen("shared/")), 128, 40);
        const double d = fabs(json_number_value(json_object_get(ours, "ln_ppl")) -
                              log(json_number_value(json_object_get(e, "ppl"))));
        const double d_err = fabs(log(json_number_value(json_object_get(ours, "ppl_stderr")) /
                                      json_number_value(json_object_get(e, "ppl_err"))));
        printf("%-48s PPL %.4f vs %.4f: |d ln PPL| %.1e, +/- %.1e (tol 1e-2)\n", strrchr(model, '/') + 1,
               json_number_value(json_object_get(ours, "ppl")), json_number_value(json_object_get(e, "ppl")), d, d_err);
        assert_true(d <= 1e-2);
        assert_true(d_err <= 1e-2);
        json_decref(ours);

        /* Ponder's own quantization of the F32 file lands within 1% of llama-quantize's */
        char own[4096];
        quantize_own(json_string_value(json_object_get(e, "made_by")), own, sizeof own);
        ours = run_perplexity(own, tu_shared(text + strlen("shared/")), 128, 40);
        const double d_own = fabs(json_number_value(json_object_get(ours, "ln_ppl")) -
                                  log(json_number_value(json_object_get(e, "ppl"))));
        printf("%-48s PPL %.4f (ponder quantize): |d ln PPL| %.1e (tol 1e-2)\n", strrchr(own, '/') + 1,
               json_number_value(json_object_get(ours, "ppl")), d_own);
        assert_true(d_own <= 1e-2);
        unlink(own);
        json_decref(ours);
    }
    json_decref(list);
}

int main(void)
{
    static const ppl_case cases[] = {
        {"stories260K__tinystories_val__c128.json", 1e-3, 1e-3},
        {"stories260K__tinystories_val__c256.json", 1e-3, 1e-3},
        {"syn-tiny-F32__wiki.test.raw__c128.json", 2e-2, 3e-3},
        {"syn-tiny-smollm-F16__wiki.test.raw__c128.json", 2e-2, 3e-3},
        {"syn-tiny-Q4_K_M__wiki.test.raw__c128.json", 0.3, 5e-2},
    };
    struct CMUnitTest tests[sizeof cases / sizeof cases[0] + 1];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tests[i] = (struct CMUnitTest){.name = cases[i].reference, .test_func = check_case,
                                       .initial_state = (void *)&cases[i]};
    tests[sizeof cases / sizeof cases[0]] =
        (struct CMUnitTest){.name = "stories260K-quantized", .test_func = check_quantized_stories};
    return _cmocka_run_group_tests("perplexity", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
