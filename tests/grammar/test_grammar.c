/*
 * test_grammar.c — the GBNF parser and the matcher on byte strings (label "grammar"):
 * llama.cpp-syntax grammars accept exactly the strings they should, malformed grammars
 * fail with line:col, and on a real 49,152-token vocabulary every token of the mask is
 * one the matcher accepts and every other token one it refuses.
 */
#include "ponder/gguf.h"
#include "grammar/grammar_internal.h"
#include "ponder/grammar.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* A vocabulary of the 256 single bytes plus one end-of-generation token (id 256). */
static ponder_grammar_vocab *byte_vocab(void)
{
    ponder_grammar_vocab *v = NULL;
    ponder_error err;
    assert_int_equal(gr_vocab_bytes(&v, &err), PONDER_OK);
    return v;
}

/* Does g accept exactly s (whole)? Checks byte by byte through masks too. */
static bool accepts(const ponder_grammar *g, const ponder_grammar_vocab *v, const char *s, size_t n)
{
    ponder_grammar_matcher *m = NULL;
    ponder_error err;
    assert_int_equal(ponder_grammar_matcher_create(g, v, &m, &err), PONDER_OK);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const uint32_t *mask = ponder_grammar_matcher_mask(m, &err);
        assert_non_null(mask);
        const unsigned char b = (unsigned char)s[i];
        const bool in_mask = mask[b >> 5] >> (b & 31) & 1u;
        ok = ponder_grammar_matcher_accept(m, b);
        assert_int_equal(in_mask, ok); /* the mask agrees with the matcher */
    }
    if (ok) {
        const uint32_t *mask = ponder_grammar_matcher_mask(m, &err);
        const bool eog_in_mask = mask[256 >> 5] >> (256 & 31) & 1u;
        ok = ponder_grammar_matcher_is_complete(m);
        assert_int_equal(eog_in_mask, ok);
    }
    ponder_grammar_matcher_free(m);
    return ok;
}

typedef struct gcase {
    const char *grammar;
    const char *pass[6];
    const char *fail[6];
} gcase;

static const gcase CASES[] = {
    { "root ::= \"abc\"", { "abc" }, { "", "ab", "abcd", "x" } },
    { "root ::= [a-z]+", { "a", "xyz" }, { "", "A", "a1" } },
    { "root ::= [^abc]*", { "", "xyz", "\xc3\xa9" }, { "a", "xa" } },
    { "root ::= \"a\"{2,4}", { "aa", "aaa", "aaaa" }, { "a", "aaaaa" } },
    { "root ::= \"a\"{3}", { "aaa" }, { "aa", "aaaa" } },
    { "root ::= \"a\"{2,} \"b\"", { "aab", "aaaaaab" }, { "ab", "aa" } },
    { "root ::= \"a\"{,2} \"b\"", { "b", "ab", "aab" }, { "aaab" } },
    { "root ::= (\"ab\" | \"cd\")* \"e\"", { "e", "abe", "cdabe" }, { "ace", "ab" } },
    { "root ::= [α-ω]+", { "αβγ", "ω" }, { "abc", "αa" } },
    { "root ::= . \"x\"", { "ax", "\xc3\xa9x", "\xf0\x9f\x98\x80x" }, { "x", "abx", "\xc3x" } },
    { "root ::= \"\\x41\\u00e9\\n\\t\\\\\\\"\"", { "A\xc3\xa9\n\t\\\"" }, { "A" } },
    { "root ::= [\\x00-\\x1F\\]\\-]+", { "\x01\x1f", "]-" }, { "a" } },
    { "# a comment\nroot ::= a b # trailing\na ::= \"x\" | \"y\"\nb ::= ( \"1\"\n  | \"2\" )\n", { "x1", "y2" }, { "x", "z1" } },
    { "root ::= item\n    | \"z\"\nitem ::= \"q\"?", { "", "q", "z" }, { "qq", "zq" } },
    { "root ::= ws-x_1 \"!\"\nws-x_1 ::= [ ]*", { "!", "   !" }, { " " } },
    { "root ::= \"\" | \"a\" root", { "", "a", "aaaa" }, { "b" } },
    { "root ::= [\\U0001F600-\\U0001F64F]", { "\xf0\x9f\x98\x80" }, { "\xf0\x9f\x98", "a" } },
    { "root ::= [^\\x00-\\x7F]", { "\xc3\xa9", "\xe2\x82\xac" }, { "a", "\xed\xa0\x80" } },
};

static void test_cases(void **state)
{
    (void)state;
    ponder_grammar_vocab *v = byte_vocab();
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        ponder_grammar *g = NULL;
        ponder_error err;
        ponder_status st = ponder_grammar_parse(CASES[c].grammar, strlen(CASES[c].grammar), &g, &err);
        if (st != PONDER_OK)
            fail_msg("case %zu: %s", c, err.msg);
        for (int i = 0; i < 6 && CASES[c].pass[i]; i++)
            if (!accepts(g, v, CASES[c].pass[i], strlen(CASES[c].pass[i])))
                fail_msg("case %zu should accept '%s'", c, CASES[c].pass[i]);
        for (int i = 0; i < 6 && CASES[c].fail[i]; i++)
            if (accepts(g, v, CASES[c].fail[i], strlen(CASES[c].fail[i])))
                fail_msg("case %zu should refuse '%s'", c, CASES[c].fail[i]);
        ponder_grammar_free(g);
    }
    ponder_grammar_vocab_free(v);
}

static void test_files(void **state)
{
    (void)state;
    ponder_grammar_vocab *v = byte_vocab();
    static const struct {
        const char *file, *pass[4], *fail[4];
    } F[] = {
        { "json.gbnf", { "{}", "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\"]}", "{ \"k\" : {\"n\":{}}}" },
          { "[]", "{\"a\" 1}", "{'a': 1}", "{\"a\": 01x}" } },
        { "arithmetic.gbnf", { "x=1\n", "(a +2)*b = 3\nc=d\n" }, { "x=1", "=1\n" } },
    };
    for (size_t f = 0; f < sizeof F / sizeof *F; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", GRAMMAR_DATA, F[f].file);
        size_t len;
        char *text = tu_read_file(path, &len);
        assert_non_null(text);
        ponder_grammar *g = NULL;
        ponder_error err;
        if (ponder_grammar_parse(text, len, &g, &err) != PONDER_OK)
            fail_msg("%s: %s", F[f].file, err.msg);
        for (int i = 0; i < 4 && F[f].pass[i]; i++)
            if (!accepts(g, v, F[f].pass[i], strlen(F[f].pass[i])))
                fail_msg("%s should accept '%s'", F[f].file, F[f].pass[i]);
        for (int i = 0; i < 4 && F[f].fail[i]; i++)
            if (accepts(g, v, F[f].fail[i], strlen(F[f].fail[i])))
                fail_msg("%s should refuse '%s'", F[f].file, F[f].fail[i]);
        ponder_grammar_free(g);
        free(text);
    }
    ponder_grammar_vocab_free(v);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *grammar, *msg;
    } E[] = {
        { "", "grammar: no 'root' rule" },
        { "a ::= \"x\"", "grammar: no 'root' rule" },
        { "root ::= a\n", "grammar 1:10: undefined rule 'a'" },
        { "root ::= \"x\"\n  \nfoo ::= \"abc", "grammar 3:9: unterminated string literal" },
        { "root ::= [a-z", "grammar 1:10: unterminated character class" },
        { "root ::= \"\\q\"", "grammar 1:11: unknown escape '\\q'" },
        { "root ::= root \"a\" | \"b\"", "grammar 1:1: rule 'root' is left-recursive" },
        { "root ::= x \"a\"\nx ::= \"\" | root", "grammar 1:1: rule 'root' is left-recursive" },
        { "root ::= (\"a\"?)* \"b\"", "left-recursive" },
        { "root ::= \"a\"{3,2}", "grammar 1:13: repetition {3,2}: the maximum is below the minimum" },
        { "root = \"a\"", "grammar 1:6: expected '::=' after rule name 'root'" },
        { "root ::= *", "grammar 1:10: '*' must follow something to repeat" },
        { "root ::= \"a\"\nroot ::= \"b\"", "grammar 2:1: rule 'root' is defined twice (first at 1:1)" },
        { "root ::= (\"a\"", "grammar 1:10: unclosed '(': expected ')'" },
        { "root ::= [z-a]", "grammar 1:10: character range end U+0061 is before its start U+007A" },
        { "root ::= \"a\" )", "grammar 1:14: unexpected ')'" },
        { "root ::= \"\\x4\"", "expected 2 hex digits" },
        { "root ::= \"a\"{20000}", "repetition count above 10000" },
    };
    for (size_t i = 0; i < sizeof E / sizeof *E; i++) {
        ponder_grammar *g = NULL;
        ponder_error err = { 0 };
        ponder_status st = ponder_grammar_parse(E[i].grammar, strlen(E[i].grammar), &g, &err);
        if (st != PONDER_ERR_FORMAT || !strstr(err.msg, E[i].msg))
            fail_msg("case %zu ('%s'): status %d, message '%s', expected '%s'", i, E[i].grammar, (int)st, err.msg,
                     E[i].msg);
        assert_null(g);
    }
}

/* Rollback, clone, final and ended states. */
static void test_history(void **state)
{
    (void)state;
    ponder_grammar_vocab *v = byte_vocab();
    ponder_grammar *g = NULL;
    ponder_error err;
    const char *text = "root ::= \"ab\" \"c\"?";
    assert_int_equal(ponder_grammar_parse(text, strlen(text), &g, &err), PONDER_OK);
    ponder_grammar_matcher *m = NULL, *k = NULL;
    assert_int_equal(ponder_grammar_matcher_create(g, v, &m, &err), PONDER_OK);
    assert_true(ponder_grammar_matcher_accept(m, 'a'));
    assert_false(ponder_grammar_matcher_accept(m, 'a'));
    assert_false(ponder_grammar_matcher_allows(m, 256));
    assert_true(ponder_grammar_matcher_accept(m, 'b'));
    assert_true(ponder_grammar_matcher_is_complete(m));
    assert_false(ponder_grammar_matcher_is_final(m));
    assert_int_equal(ponder_grammar_matcher_clone(m, &k, &err), PONDER_OK);
    assert_true(ponder_grammar_matcher_accept(k, 'c'));
    assert_true(ponder_grammar_matcher_is_final(k));
    assert_false(ponder_grammar_matcher_is_final(m));
    assert_true(ponder_grammar_matcher_accept(k, 256));
    assert_true(ponder_grammar_matcher_is_ended(k));
    const uint32_t *mask = ponder_grammar_matcher_mask(k, &err);
    for (int w = 0; w < (257 + 31) / 32; w++)
        assert_int_equal(mask[w], 0);
    ponder_grammar_matcher_rollback(k, 2);
    assert_int_equal(ponder_grammar_matcher_n_accepted(k), 2);
    assert_true(ponder_grammar_matcher_allows(k, 'c'));
    ponder_grammar_matcher_rollback(k, 99);
    assert_int_equal(ponder_grammar_matcher_n_accepted(k), 0);
    assert_true(ponder_grammar_matcher_accept_bytes(k, "abc", 3));
    assert_true(ponder_grammar_matcher_is_final(k));
    ponder_grammar_matcher_free(k);
    ponder_grammar_matcher_free(m);
    ponder_grammar_free(g);
    ponder_grammar_vocab_free(v);
}

/* On the SmolLM2 vocabulary: along random paths through the JSON grammar, the mask is
 * exactly the set of tokens the matcher accepts (each checked one by one). */
static void test_mask_vs_accept(void **state)
{
    (void)state;
    const char *model = tu_model_path("shared/models/synthetic/syn-tiny-smollm-Q4_K_M.gguf");
    if (!model)
        skip();
    ponder_gguf *gg = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_grammar_vocab *v = NULL;
    ponder_error err;
    assert_int_equal(ponder_gguf_open(model, &gg, &err), PONDER_OK);
    assert_int_equal(ponder_tokenizer_create(gg, &tok, &err), PONDER_OK);
    assert_int_equal(ponder_grammar_vocab_from_tokenizer(tok, &v, &err), PONDER_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/json.gbnf", GRAMMAR_DATA);
    size_t len;
    char *text = tu_read_file(path, &len);
    ponder_grammar *g = NULL;
    assert_int_equal(ponder_grammar_parse(text, len, &g, &err), PONDER_OK);
    ponder_grammar_matcher *m = NULL;
    assert_int_equal(ponder_grammar_matcher_create(g, v, &m, &err), PONDER_OK);
    const int32_t n = ponder_tokenizer_n_vocab(tok);
    /* a fixed path through a few distinct states */
    const char *steps[] = { "{", "\"", "name", "\":", " [", "1", "2", ".", "5", ",", " \"", "x", "\"", "]}" };
    for (size_t s = 0; s <= sizeof steps / sizeof *steps; s++) {
        const uint32_t *mask = ponder_grammar_matcher_mask(m, &err);
        assert_non_null(mask);
        int32_t n_allowed = 0;
        for (int32_t t = 0; t < n; t++) {
            const bool in = mask[t >> 5] >> (t & 31) & 1u;
            const bool ok = ponder_grammar_matcher_accept(m, t);
            if (ok)
                ponder_grammar_matcher_rollback(m, 1);
            if (in != ok)
                fail_msg("step %zu: token %d is %s the mask but %s", s, t, in ? "in" : "not in",
                         ok ? "accepted" : "refused");
            n_allowed += in;
        }
        assert_true(n_allowed > 0);
        if (s < sizeof steps / sizeof *steps)
            assert_true(ponder_grammar_matcher_accept_bytes(m, steps[s], strlen(steps[s])));
    }
    assert_true(ponder_grammar_matcher_is_complete(m));
    assert_true(ponder_grammar_matcher_allows(m, ponder_tokenizer_eos(tok)));
    ponder_grammar_matcher_free(m);
    ponder_grammar_free(g);
    free(text);
    ponder_grammar_vocab_free(v);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(gg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),          cmocka_unit_test(test_files),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_history),
        cmocka_unit_test(test_mask_vs_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
