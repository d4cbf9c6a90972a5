/*
 * test_jinja.c — the interpreter's tricky semantics, one small template each: scoping,
 * undefined values, whitespace control, escapes, tojson formats, Python printing, markup
 * (expected outputs from Python jinja2, see gen_jinja_cases.py); then errors: positions,
 * raise_exception verbatim, the sandbox, and the limits that keep hostile templates from
 * crashing or hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ponder/chat.h"

typedef struct jcase {
    const char *name, *src, *vars, *expected;
} jcase;

static const jcase cases[] = {
#include "jinja_cases.inc"
};

static ponder_status render(const char *src, const char *vars, char **out, size_t *out_len, ponder_error *err)
{
    ponder_chat_template *t = NULL;
    *out = NULL;
    ponder_status st = ponder_chat_template_create(src, strlen(src), &t, err);
    if (st != PONDER_OK)
        return st;
    st = ponder_chat_render_json(t, vars, strlen(vars), out, out_len, err);
    ponder_chat_template_free(t);
    return st;
}

static void test_semantics(void **state)
{
    (void)state;
    size_t n_fail = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        size_t len;
        ponder_error err = { 0 };
        ponder_status st = render(cases[i].src, cases[i].vars, &out, &len, &err);
        if (st != PONDER_OK) {
            fprintf(stderr, "FAIL %s: %s\n", cases[i].name, err.msg);
            n_fail++;
        } else if (len != strlen(cases[i].expected) || memcmp(out, cases[i].expected, len) != 0) {
            fprintf(stderr, "FAIL %s:\n  got      \"%s\"\n  expected \"%s\"\n", cases[i].name, out, cases[i].expected);
            n_fail++;
        }
        free(out);
    }
    assert_int_equal(n_fail, 0);
}

/* Renders src (vars "{}") and expects status st with err.msg starting with prefix (if given)
 * and containing part (if given). */
static void expect_error(const char *src, ponder_status st, const char *prefix, const char *part)
{
    char *out;
    size_t len;
    ponder_error err = { 0 };
    ponder_status got = render(src, "{}", &out, &len, &err);
    free(out);
    if (got != st)
        fail_msg("%s: expected status %d, got %d (%s)", src, st, got, err.msg);
    if (prefix && strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("%s: message \"%s\" does not start with \"%s\"", src, err.msg, prefix);
    if (part && !strstr(err.msg, part))
        fail_msg("%s: message \"%s\" lacks \"%s\"", src, err.msg, part);
}

static void test_error_positions(void **state)
{
    (void)state;
    expect_error("{% if x %}", PONDER_ERR_FORMAT, "line 1, column 11:", "endif");
    expect_error("a\n{{ foo + 'a' }}", PONDER_ERR_FORMAT, "line 2, column 8:", "'foo' is undefined");
    expect_error("{{ x | nosuch }}", PONDER_ERR_UNSUPPORTED, "line 1, column 6:", "no filter named 'nosuch'");
    expect_error("{% if x is nosuch %}{% endif %}", PONDER_ERR_UNSUPPORTED, "line 1, column 9:", "no test named 'nosuch'");
    expect_error("\n\n  {% include 'x.jinja' %}", PONDER_ERR_UNSUPPORTED, "line 3, column 6:", "include");
    expect_error("{% frobnicate %}", PONDER_ERR_FORMAT, "line 1, column 4:", "frobnicate");
    expect_error("{{ 'abc }}", PONDER_ERR_FORMAT, "line 1, column 4:", "unterminated string");
    expect_error("{{ (1 }}", PONDER_ERR_FORMAT, "line 1, column 7:", "unexpected '}'");
    expect_error("{{ 1 ", PONDER_ERR_FORMAT, "line 1, column 1:", "unclosed");
    expect_error("{% endfor %}", PONDER_ERR_FORMAT, "line 1, column 4:", "endfor");
    expect_error("{# never closed", PONDER_ERR_FORMAT, "line 1, column 1:", "comment");
    expect_error("{{ messages.x.y }}", PONDER_ERR_FORMAT, "line 1, column 12:", "'messages' is undefined");
    expect_error("{{ 1 / 0 }}", PONDER_ERR_FORMAT, "line 1, column 6:", "division by zero");
    expect_error("{% for x in none %}{% endfor %}", PONDER_ERR_FORMAT, "line 1, column 13:", "not iterable");
}

static void test_raise_exception(void **state)
{
    (void)state;
    char *out;
    size_t len;
    ponder_error err = { 0 };
    const char *src = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate "
                      "user/assistant/user/assistant/...') }}{% endif %}ok";
    assert_int_equal(render(src, "{\"messages\": [{\"role\": \"system\"}]}", &out, &len, &err), PONDER_ERR_INVALID_ARG);
    assert_string_equal(err.msg, "Conversation roles must alternate user/assistant/user/assistant/...");
    assert_null(out);
    assert_int_equal(render(src, "{\"messages\": [{\"role\": \"user\"}]}", &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "ok");
    free(out);
}

static void test_sandbox_and_limits(void **state)
{
    (void)state;
    expect_error("{% set l = [1] %}{{ l.append(2) }}", PONDER_ERR_FORMAT, "line 1, column 29:", "unsafe");
    expect_error("{% set d = {} %}{{ d.update({'a': 1}) }}", PONDER_ERR_FORMAT, NULL, "unsafe");
    expect_error("{{ messages.pop() }}", PONDER_ERR_FORMAT, NULL, "undefined");
    /* runaway recursion, huge output, endless loops and deep nesting fail cleanly */
    expect_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", PONDER_ERR_RANGE, NULL, "macro calls nested");
    expect_error("{{ 'x' * 1000000000 }}", PONDER_ERR_RANGE, NULL, "MiB");
    /* empty things repeated any number of times are empty, at once (a fuzzer's timeout) */
    char *out = NULL;
    size_t len = 0;
    ponder_error err;
    assert_int_equal(render("[{{ '' * 3000000000000000000 }}|{{ ([] * 3000000000000000000)|length }}]", "{}", &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "[|0]");
    free(out);
    expect_error("{% for i in range(1000000) %}{% endfor %}", PONDER_ERR_RANGE, NULL, "Range too big");
    expect_error("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}", PONDER_ERR_RANGE, NULL, NULL);
    expect_error("{% for i in range(99999) %}{% for j in range(99999) %}{{ 1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1 }}"
                 "{% endfor %}{% endfor %}", PONDER_ERR_RANGE, NULL, "evaluation steps");
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{{ ");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '(';
    deep[n] = 0;
    expect_error(deep, PONDER_ERR_FORMAT, "line 1, column", "nested too deeply");
    n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{%% if 1 %%}");
    expect_error(deep, PONDER_ERR_RANGE, "line 1, column", "nested too deeply");
}

static void test_vars_and_api(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    ponder_error err = { 0 };
    /* tools absent = undefined; tools [] = defined, empty; null = None */
    const char *src = "{{ tools is defined }}{{ tools is none }}{{ tools|length }}";
    assert_int_equal(render(src, "{}", &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "FalseFalse0");
    free(out);
    assert_int_equal(render(src, "{\"tools\": []}", &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "TrueFalse0");
    free(out);
    assert_int_equal(render(src, "{\"tools\": null}", &out, &len, &err), PONDER_ERR_FORMAT);
    assert_int_equal(render("x", "{\"a\": ", &out, &len, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(render("x", "[1]", &out, &len, &err), PONDER_ERR_INVALID_ARG);
    /* a NUL inside a value stays in the output; the length says so */
    assert_int_equal(render("{{ s }}", "{\"s\": \"a\\u0000b\"}", &out, &len, &err), PONDER_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "a\0b", 3);
    free(out);
    /* the ChatML fallback */
    ponder_chat_template *t = NULL;
    const char *chatml = ponder_chat_template_chatml_source();
    assert_int_equal(ponder_chat_template_create(chatml, strlen(chatml), &t, &err), PONDER_OK);
    const char *vars = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"add_generation_prompt\": true}";
    assert_int_equal(ponder_chat_render_json(t, vars, strlen(vars), &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    ponder_chat_template_free(t);
    ponder_chat_template_free(NULL);
    assert_int_equal(ponder_chat_template_create(NULL, 3, &t, &err), PONDER_ERR_INVALID_ARG);
    /* a template can be rendered many times, also after a failed render */
    assert_int_equal(ponder_chat_template_create("{{ 1 // x }}", strlen("{{ 1 // x }}"), &t, &err), PONDER_OK);
    assert_int_equal(ponder_chat_render_json(t, "{\"x\": 0}", 8, &out, &len, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_chat_render_json(t, "{\"x\": 2}", 8, &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "0");
    free(out);
    ponder_chat_template_free(t);
}

/* strftime_now: the clock now (local time, as transformers' datetime.now()), or the
 * instant SOURCE_DATE_EPOCH names, in UTC; a malformed value is an error. */
static void test_strftime_now(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    ponder_error err = { 0 };
    unsetenv("SOURCE_DATE_EPOCH");
    char want[64];
    for (int tries = 0; tries < 2; tries++) { /* a render that straddles midnight tries again */
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(want, sizeof want, "%Y-%m-%d", &tm);
        assert_int_equal(render("{{ strftime_now('%Y-%m-%d') }}", "{}", &out, &len, &err), PONDER_OK);
        if (strcmp(out, want) == 0)
            break;
        free(out);
        out = NULL;
    }
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    setenv("SOURCE_DATE_EPOCH", "1795392000", 1);
    assert_int_equal(render("{{ strftime_now('%d %b %Y %H:%M %A') }}", "{}", &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "23 Nov 2026 00:00 Monday");
    free(out);
    setenv("SOURCE_DATE_EPOCH", "86400", 1);
    assert_int_equal(render("{{ strftime_now('%Y-%m-%d') }}", "{}", &out, &len, &err), PONDER_OK);
    assert_string_equal(out, "1970-01-02");
    free(out);
    setenv("SOURCE_DATE_EPOCH", "yesterday", 1);
    assert_int_equal(render("{{ strftime_now('%Y') }}", "{}", &out, &len, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "SOURCE_DATE_EPOCH"));
    unsetenv("SOURCE_DATE_EPOCH");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_raise_exception),
        cmocka_unit_test(test_sandbox_and_limits),
        cmocka_unit_test(test_vars_and_api),
        cmocka_unit_test(test_strftime_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
