/*
 * test_cli_args.c — the CLI's option parser and text helpers, in-process (no model).
 * Usage errors print one line to stderr; that output is expected here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"

typedef struct parsed {
    const char *model, *prompt;
    int32_t n;
    float temp;
    bool json, n_given;
    uint64_t seed;
    const char *pos[2];
    int n_pos;
} parsed;

static cli_result parse(parsed *p, int argc, const char **argv)
{
    memset(p, 0, sizeof *p);
    p->n = 128;
    p->temp = 0.8f;
    p->seed = 7;
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &p->model, 0, 0, NULL },
        { "-p", "--prompt", CLI_STRING, &p->prompt, 0, 0, NULL },
        { "-n", "--n-predict", CLI_INT, &p->n, -1, 1000000, &p->n_given },
        { "--temp", NULL, CLI_FLOAT, &p->temp, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &p->json, 0, 0, NULL },
        { "-s", "--seed", CLI_SEED, &p->seed, 0, 0, NULL },
    };
    return cli_parse("run", argc, (char **)argv, opts, sizeof opts / sizeof opts[0], p->pos, 2, &p->n_pos);
}

/* argv as a NULL-terminated compound literal, so each case is one line. */
static cli_result parse_list(parsed *p, const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return parse(p, argc, argv);
}
#define PARSE(p, ...) parse_list(p, (const char *[]){ "run", __VA_ARGS__, NULL })

static void test_values(void **state)
{
    (void)state;
    parsed p;
    assert_int_equal(PARSE(&p, "-m", "x.gguf", "-n", "-1", "--temp", "0.25", "--json", "pos1"), CLI_PARSED);
    assert_string_equal(p.model, "x.gguf");
    assert_int_equal(p.n, -1);
    assert_true(p.n_given);
    assert_true(p.temp == 0.25f);
    assert_true(p.json);
    assert_int_equal(p.n_pos, 1);
    assert_string_equal(p.pos[0], "pos1");

    /* long option with '=', last one wins, "--" ends options */
    assert_int_equal(PARSE(&p, "--model=a", "--model", "b", "-p", "-dash-prompt", "--", "--json"), CLI_PARSED);
    assert_string_equal(p.model, "b");
    assert_string_equal(p.prompt, "-dash-prompt"); /* a value may start with '-' */
    assert_false(p.json);
    assert_int_equal(p.n_pos, 1);
    assert_string_equal(p.pos[0], "--json");
    assert_false(p.n_given);
    assert_int_equal(p.n, 128);

    /* seeds: -1 means random, the largest accepted is 2^64 - 2 */
    assert_int_equal(PARSE(&p, "--seed", "-1"), CLI_PARSED);
    assert_true(p.seed == UINT64_MAX);
    assert_int_equal(PARSE(&p, "-s", "18446744073709551614"), CLI_PARSED);
    assert_true(p.seed == UINT64_MAX - 1);
    assert_int_equal(PARSE(&p, "-s", "0"), CLI_PARSED);
    assert_true(p.seed == 0);
}

static void test_help(void **state)
{
    (void)state;
    parsed p;
    assert_int_equal(PARSE(&p, "--help"), CLI_HELP);
    assert_int_equal(PARSE(&p, "-m", "x", "-h"), CLI_HELP);
}

static void test_usage_errors(void **state)
{
    (void)state;
    parsed p;
    assert_int_equal(PARSE(&p, "-n", "abc"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-n", "12abc"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-n", " 12"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-n", ""), CLI_BAD);
    assert_int_equal(PARSE(&p, "-n", "-2"), CLI_BAD);                   /* below range */
    assert_int_equal(PARSE(&p, "-n", "99999999999999999999"), CLI_BAD); /* overflow */
    assert_int_equal(PARSE(&p, "--temp", "x"), CLI_BAD);
    assert_int_equal(PARSE(&p, "--temp", "inf"), CLI_BAD);
    assert_int_equal(PARSE(&p, "--temp", "nan"), CLI_BAD);
    assert_int_equal(PARSE(&p, "--temp", "1e999"), CLI_BAD);
    assert_int_equal(PARSE(&p, "--bogus"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-m"), CLI_BAD); /* missing value */
    assert_int_equal(PARSE(&p, "--json=1"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-s", "-2"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-s", "18446744073709551615"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-s", "18446744073709551616"), CLI_BAD);
    assert_int_equal(PARSE(&p, "-s", "+5"), CLI_BAD);
    assert_int_equal(PARSE(&p, "a", "b", "c"), CLI_BAD); /* only two positionals */
}

static void test_number_parsers(void **state)
{
    (void)state;
    int64_t i;
    double d;
    assert_true(cli_parse_i64("-42", &i) && i == -42);
    assert_false(cli_parse_i64("4 2", &i));
    assert_false(cli_parse_i64("0x10", &i));
    assert_true(cli_parse_double("0.95", &d) && d == 0.95);
    assert_true(cli_parse_double("-1", &d) && d == -1.0);
    assert_false(cli_parse_double("0.9.5", &d));
    assert_false(cli_parse_double("", &d));
}

static void test_utf8_and_json(void **state)
{
    (void)state;
    const unsigned char ok2[] = { 0xC3, 0xA9 };       /* é */
    const unsigned char ok4[] = { 0xF0, 0x9F, 0x98, 0x80 }; /* U+1F600 */
    const unsigned char overlong[] = { 0xC0, 0xAF };
    const unsigned char surrogate[] = { 0xED, 0xA0, 0x80 };
    const unsigned char cut[] = { 0xE2, 0x82 };
    assert_int_equal(ponder_utf8_len(ok2, 2), 2);
    assert_int_equal(ponder_utf8_len(ok4, 4), 4);
    assert_int_equal(ponder_utf8_len(ok4, 3), 0);
    assert_int_equal(ponder_utf8_len(overlong, 2), 0);
    assert_int_equal(ponder_utf8_len(surrogate, 3), 0);
    assert_int_equal(ponder_utf8_len(cut, 2), 0);

    json_t *j = cli_json_string("a\xff" "b\xC3\xA9", 5);
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "a\xEF\xBF\xBD" "b\xC3\xA9");
    json_decref(j);

    char buf[128] = { 0 };
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    cli_fput_quoted(f, "a'\n\x01\xff\xC3\xA9\\", 8);
    fclose(f);
    assert_string_equal(buf, "'a\\'\\n\\x01\\xff\xC3\xA9\\\\'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_number_parsers),
        cmocka_unit_test(test_utf8_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
