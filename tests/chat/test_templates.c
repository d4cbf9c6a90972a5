/*
 * test_templates.c — every case of shared/reference/templates/cases.json rendered with the
 * template it names must equal jinja2's output byte for byte (or fail with exactly the
 * raise_exception message). Each mismatch is reported with its first differing byte.
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

#include "ponder/chat.h"
#include "testutil.h"

/* The variables a case passes: messages, bos/eos, add_generation_prompt, tools unless null
 * (null = undefined), then extra_context. */
static json_t *case_vars(json_t *c)
{
    json_t *v = json_object();
    static const char *const keys[] = { "messages", "bos_token", "eos_token", "add_generation_prompt" };
    for (size_t i = 0; i < 4; i++) {
        json_t *x = json_object_get(c, keys[i]);
        if (x)
            json_object_set(v, keys[i], x);
    }
    json_t *tools = json_object_get(c, "tools");
    if (tools && !json_is_null(tools))
        json_object_set(v, "tools", tools);
    json_t *extra = json_object_get(c, "extra_context");
    const char *k;
    json_t *x;
    json_object_foreach(extra, k, x) {
        json_object_set(v, k, x);
    }
    return v;
}

static void print_excerpt(const char *label, const char *s, size_t n, size_t at)
{
    size_t b = at > 40 ? at - 40 : 0, e = at + 40 < n ? at + 40 : n;
    fprintf(stderr, "    %s: \"", label);
    for (size_t i = b; i < e; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stderr);
        else if (c < 0x20)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

static void test_cases(void **state)
{
    (void)state;
    size_t len;
    char *text = tu_read_file(tu_shared("reference/templates/cases.json"), &len);
    assert_non_null(text);
    json_error_t je;
    json_t *cases = json_loadb(text, len, 0, &je);
    free(text);
    assert_non_null(cases);
    size_t n = json_array_size(cases), n_pass = 0;
    assert_true(n >= 140);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cases, i);
        const char *id = json_string_value(json_object_get(c, "id"));
        char rel[512];
        snprintf(rel, sizeof rel, "reference/templates/%s", json_string_value(json_object_get(c, "template")));
        size_t src_len;
        char *src = tu_read_file(tu_shared(rel), &src_len);
        assert_non_null(src);
        ponder_chat_template *t = NULL;
        ponder_error err = { 0 };
        if (ponder_chat_template_create(src, src_len, &t, &err) != PONDER_OK) {
            fprintf(stderr, "FAIL %s: parse: %s\n", id, err.msg);
            free(src);
            continue;
        }
        free(src);
        json_t *vars = case_vars(c);
        char *vj = json_dumps(vars, JSON_COMPACT);
        json_decref(vars);
        char *out = NULL;
        size_t out_len = 0;
        ponder_status st = ponder_chat_render_json(t, vj, strlen(vj), &out, &out_len, &err);
        free(vj);
        json_t *exp = json_object_get(c, "expected");
        json_t *exp_err = json_object_get(c, "expected_error");
        if (exp_err) {
            if (st == PONDER_ERR_INVALID_ARG && strcmp(err.msg, json_string_value(exp_err)) == 0)
                n_pass++;
            else
                fprintf(stderr, "FAIL %s: expected error \"%s\", got status %d \"%s\"\n", id,
                        json_string_value(exp_err), st, st == PONDER_OK ? "" : err.msg);
        } else if (st != PONDER_OK) {
            fprintf(stderr, "FAIL %s: %s\n", id, err.msg);
        } else {
            const char *e = json_string_value(exp);
            size_t e_len = json_string_length(exp);
            if (out_len == e_len && memcmp(out, e, e_len) == 0) {
                n_pass++;
            } else {
                size_t d = 0;
                while (d < out_len && d < e_len && out[d] == e[d])
                    d++;
                fprintf(stderr, "FAIL %s: first difference at byte %zu (got %zu bytes, expected %zu)\n", id, d,
                        out_len, e_len);
                print_excerpt("got     ", out, out_len, d);
                print_excerpt("expected", e, e_len, d);
            }
        }
        free(out);
        ponder_chat_template_free(t);
    }
    fprintf(stderr, "cases.json: %zu/%zu pass\n", n_pass, n);
    json_decref(cases);
    assert_int_equal(n_pass, n);
}

int main(void)
{
    /* the reference renderings were made at 2026-11-23 00:00:00 UTC (strftime_now) */
    setenv("SOURCE_DATE_EPOCH", "1795392000", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
