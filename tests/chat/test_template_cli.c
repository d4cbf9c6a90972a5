/*
 * test_template_cli.c — `ponder template` end to end, as the external harness calls it:
 * a reference case rendered byte-exactly on stdout; raise_exception's message on stderr
 * with exit 1; template errors with line and column, missing files and bad JSON exit 1;
 * usage errors exit 2; -m reads the template and the BOS/EOS texts from the model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "testutil.h"

static json_t *g_cases;

static json_t *find_case(const char *id)
{
    for (size_t i = 0; i < json_array_size(g_cases); i++) {
        json_t *c = json_array_get(g_cases, i);
        if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0)
            return c;
    }
    fail_msg("no case %s in cases.json", id);
    return NULL;
}

static char *case_file(json_t *c)
{
    char *s = json_dumps(c, JSON_COMPACT);
    char *path = cu_temp_file(s, strlen(s));
    free(s);
    return path;
}

static const char *tmpl_path(json_t *c)
{
    static char rel[512];
    snprintf(rel, sizeof rel, "reference/templates/%s", json_string_value(json_object_get(c, "template")));
    return tu_shared(rel);
}

static void test_renders_case_exactly(void **state)
{
    (void)state;
    static const char *const ids[] = { "qwen2.5/06-tools", "functionary-v3.1/06-tools", "llama-3.2/01-single-user",
                                       "firefunction-v2/06-tools", "command-r7b/04-unicode" };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        json_t *c = find_case(ids[i]);
        char *in = case_file(c);
        tu_cli_result r = TU_RUN_CLI(NULL, "template", "--template", tmpl_path(c), "--input", in);
        unlink(in);
        free(in);
        const char *exp = json_string_value(json_object_get(c, "expected"));
        if (r.status != 0)
            fail_msg("%s: exit %d: %s", ids[i], r.status, r.err);
        assert_int_equal(r.out_len, strlen(exp));
        assert_memory_equal(r.out, exp, r.out_len);
        assert_string_equal(r.err, "");
        tu_cli_result_free(&r);
    }
}

/* Every expected_error case of cases.json: the message alone on stderr, nothing on stdout. */
static void test_raise_exception(void **state)
{
    (void)state;
    size_t n_error_cases = 0;
    for (size_t i = 0; i < json_array_size(g_cases); i++) {
        json_t *c = json_array_get(g_cases, i);
        const char *expected_error = json_string_value(json_object_get(c, "expected_error"));
        if (!expected_error)
            continue;
        n_error_cases++;
        char *in = case_file(c);
        tu_cli_result r = TU_RUN_CLI(NULL, "template", "--template", tmpl_path(c), "--input", in);
        assert_int_equal(r.status, 1);
        assert_int_equal(r.out_len, 0);
        char want[1024];
        snprintf(want, sizeof want, "%s\n", expected_error);
        assert_string_equal(r.err, want);
        tu_cli_result_free(&r);
        /* the same case through stdin */
        r = TU_RUN_CLI(in, "template", "--template", tmpl_path(c), "--input", "-");
        assert_int_equal(r.status, 1);
        assert_string_equal(r.err, want);
        tu_cli_result_free(&r);
        unlink(in);
        free(in);
    }
    assert_true(n_error_cases > 0);
}

static void test_errors(void **state)
{
    (void)state;
    const char *ok_case = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": null}";
    char *in = cu_temp_file(ok_case, strlen(ok_case));
    const char *bad_tmpl = "ok\n{% for m in messages %}{{ m.content }\n";
    char *tmpl = cu_temp_file(bad_tmpl, strlen(bad_tmpl));

    tu_cli_result r = TU_RUN_CLI(NULL, "template", "--template", tmpl, "--input", in);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.out_len, 0);
    assert_non_null(strstr(r.err, "line 2, column"));
    tu_cli_result_free(&r);

    r = TU_RUN_CLI(NULL, "template", "--template", "/nonexistent/t.jinja", "--input", in);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "/nonexistent/t.jinja"));
    tu_cli_result_free(&r);

    r = TU_RUN_CLI(NULL, "template", "--template", tmpl, "--input", "/nonexistent/case.json");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "/nonexistent/case.json"));
    tu_cli_result_free(&r);

    char *bad_json = cu_temp_file("{\"messages\": [", 14);
    r = TU_RUN_CLI(NULL, "template", "--chatml", "--input", bad_json);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "bad JSON"));
    tu_cli_result_free(&r);

    /* usage errors: no input, two template sources, unknown option; --help */
    r = TU_RUN_CLI(NULL, "template", "--chatml");
    assert_int_equal(r.status, 2);
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "template", "--chatml", "--template", tmpl, "--input", in);
    assert_int_equal(r.status, 2);
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "template", "--frob", "--input", in);
    assert_int_equal(r.status, 2);
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "template", "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--input"));
    tu_cli_result_free(&r);

    /* --chatml renders the fallback, nothing added */
    r = TU_RUN_CLI(NULL, "template", "--chatml", "--input", in);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "<|im_start|>user\nhi<|im_end|>\n");
    tu_cli_result_free(&r);

    unlink(bad_json);
    unlink(in);
    unlink(tmpl);
    free(bad_json);
    free(in);
    free(tmpl);
}

static void test_model_template(void **state)
{
    (void)state;
    const char *ok_case = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"add_generation_prompt\": true}";
    char *in = cu_temp_file(ok_case, strlen(ok_case));
    /* the default model has no template: a clear error */
    tu_cli_result r = TU_RUN_CLI(NULL, "template", "-m", tu_shared("models/stories260K/stories260K.gguf"), "--input", in);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "chat_template"));
    tu_cli_result_free(&r);

    char *model = cu_model_with_template("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}"
                                         "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]"
                                         "{% endif %}");
    assert_non_null(model);
    r = TU_RUN_CLI(NULL, "template", "-m", model, "--input", in);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.out, "<s>[user] hi</s>[assistant]"); /* stories260K: <s> and </s> */
    tu_cli_result_free(&r);
    /* tokens given by the case win */
    const char *with_tokens = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"bos_token\": \"B\","
                              " \"eos_token\": \"\"}";
    char *in2 = cu_temp_file(with_tokens, strlen(with_tokens));
    r = TU_RUN_CLI(NULL, "template", "-m", model, "--input", in2);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "B[user] hi");
    tu_cli_result_free(&r);
    unlink(model);
    unlink(in);
    unlink(in2);
    free(model);
    free(in);
    free(in2);
}

int main(void)
{
    /* the reference renderings were made at 2026-11-23 00:00:00 UTC (strftime_now); the
     * ponder processes this test starts inherit it */
    setenv("SOURCE_DATE_EPOCH", "1795392000", 1);
    size_t len;
    char *text = tu_read_file(tu_shared("reference/templates/cases.json"), &len);
    if (!text) {
        fprintf(stderr, "cannot read cases.json\n");
        return 1;
    }
    g_cases = json_loadb(text, len, 0, NULL);
    free(text);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renders_case_exactly),
        cmocka_unit_test(test_raise_exception),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_model_template),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(g_cases);
    return rc;
}
