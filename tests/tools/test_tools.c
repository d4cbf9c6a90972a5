/*
 * test_tools.c — tools.h on strings: each format's calls as models write them (one, several,
 * with text before, with and without their control tokens), malformed and truncated calls
 * (all content, never an error), the streaming rule (never past a call's start), format
 * detection on the real templates of ../shared/reference/templates, and forced-call
 * grammars: the calls they accept and the ones they refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/grammar.h"
#include "ponder/tools.h"
#include "testutil.h"

/* Parses text with f; expects n calls (names and compact arguments given) and content. */
static void expect(ponder_tool_format f, const char *text, int n, const char *const *names, const char *const *args,
                   const char *content)
{
    ponder_tool_calls c;
    ponder_error err = { 0 };
    assert_int_equal(ponder_tool_calls_parse(f, text, strlen(text), &c, &err), PONDER_OK);
    if (c.n_calls != n)
        fail_msg("%s: %d calls, expected %d, in: %s", ponder_tool_format_name(f), c.n_calls, n, text);
    for (int i = 0; i < n; i++) {
        assert_string_equal(c.calls[i].name, names[i]);
        assert_string_equal(c.calls[i].arguments, args[i]);
    }
    assert_string_equal(c.content, content);
    assert_int_equal(c.content_len, strlen(content));
    /* streaming never shows more than the content before the first call */
    for (size_t k = 0; k <= strlen(text); k++) {
        size_t p = ponder_tool_calls_content_prefix(f, text, k);
        assert_true(p <= k);
        if (n > 0)
            assert_memory_equal(text, c.content, p);
    }
    ponder_tool_calls_clear(&c);
}

#define NAMES(...) ((const char *const[]){ __VA_ARGS__ })

static void test_hermes(void **state)
{
    (void)state;
    const ponder_tool_format H = PONDER_TOOL_FORMAT_HERMES;
    expect(H, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>",
           1, NAMES("get_weather"), NAMES("{\"city\":\"Paris\",\"unit\":\"c\"}"), "");
    expect(H, "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n"
              "{\"name\": \"b\", \"arguments\": {\"x\": [1, 2.5, null]}}\n</tool_call>",
           2, NAMES("a", "b"), NAMES("{}", "{\"x\":[1,2.5,null]}"), "Let me check.");
    /* arguments as a JSON string (some fine-tunes), the close tag missing at the very end */
    expect(H, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 1}\"}", 1, NAMES("f"), NAMES("{\"q\":1}"), "");
    /* malformed: bad JSON, no name, arguments not an object, text between the JSON and the close */
    const char *bad[] = {
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>",
        "<tool_call>\n{\"arguments\": {}}\n</tool_call>",
        "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>",
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {}} oops </tool_call>",
        "<tool_call>\n{\"name\": \"f\", \"argum",
        "<tool_call>",
        "plain text with a < sign and <tool_c",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect(H, bad[i], 0, NULL, NULL, bad[i]);
    /* the last resort: a bare call object */
    expect(H, " {\"name\": \"f\", \"arguments\": {\"k\": \"v\"}} ", 1, NAMES("f"), NAMES("{\"k\":\"v\"}"), "");
}

static void test_llama3(void **state)
{
    (void)state;
    const ponder_tool_format L = PONDER_TOOL_FORMAT_LLAMA3;
    expect(L, "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Tokyo\"}}", 1, NAMES("get_weather"),
           NAMES("{\"location\":\"Tokyo\"}"), "");
    expect(L, "{\"type\": \"function\", \"name\": \"f\", \"parameters\": {\"n\": 3}}", 1, NAMES("f"),
           NAMES("{\"n\":3}"), "");
    expect(L, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}", 1, NAMES("f"), NAMES("{}"), "");
    expect(L, "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"z\": true}}", 2,
           NAMES("a", "b"), NAMES("{}", "{\"z\":true}"), "");
    expect(L, "<|python_tag|>brave_search.call(query=\"weather in Paris\", n=3, safe=True)", 1,
           NAMES("brave_search"), NAMES("{\"query\":\"weather in Paris\",\"n\":3,\"safe\":true}"), "");
    expect(L, "Searching.<|python_tag|>wolfram_alpha.call(query='2+2')", 1, NAMES("wolfram_alpha"),
           NAMES("{\"query\":\"2+2\"}"), "Searching.");
    const char *bad[] = {
        "{\"name\": \"f\"}",                                   /* no parameters: any JSON could look so */
        "{\"name\": \"f\", \"parameters\": {}} and more text",
        "The answer is {\"name\": \"f\", \"parameters\": {}}",
        "<|python_tag|>print(1)",
        "<|python_tag|>f.call(x=)",
        "{\"name\": \"f\", \"parameters\": {\"a\": 1}",
        "{ not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect(L, bad[i], 0, NULL, NULL, bad[i]);
}

static void test_mistral(void **state)
{
    (void)state;
    const ponder_tool_format M = PONDER_TOOL_FORMAT_MISTRAL;
    expect(M, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}, \"id\": \"abcDEF123\"}]", 1,
           NAMES("get_weather"), NAMES("{\"city\":\"Oslo\"}"), "");
    /* the control token left out by the detokenizer */
    expect(M, "[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"v\": \"x\"}}]", 2,
           NAMES("a", "b"), NAMES("{}", "{\"v\":\"x\"}"), "");
    expect(M, "Sure.[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]", 1, NAMES("a"), NAMES("{}"), "Sure.");
    const char *bad[] = {
        "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}",
        "[TOOL_CALLS]{\"name\": \"a\", \"arguments\": {}}",
        "[TOOL_CALLS][]",
        "[1, 2, 3]",
        "[TOOL_CALLS][{\"nom\": \"a\"}]",
        "Text then [{\"name\": \"a\", \"arguments\": {}}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect(M, bad[i], 0, NULL, NULL, bad[i]);
}

static void test_generic(void **state)
{
    (void)state;
    const ponder_tool_format G = PONDER_TOOL_FORMAT_GENERIC;
    expect(G, "{\"tool_call\": {\"name\": \"f\", \"arguments\": {\"a\": 1}}}", 1, NAMES("f"), NAMES("{\"a\":1}"), "");
    expect(G, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"b\": 2}}]}",
           2, NAMES("f", "g"), NAMES("{}", "{\"b\":2}"), "");
    expect(G, "```json\n{\"tool_call\": {\"name\": \"f\", \"arguments\": {}}}\n```", 1, NAMES("f"), NAMES("{}"), "");
    expect(G, "{\"name\": \"f\", \"arguments\": {\"q\": \"s\"}}", 1, NAMES("f"), NAMES("{\"q\":\"s\"}"), "");
    expect(G, "{\"response\": \"Hello there\"}", 0, NULL, NULL, "Hello there");
    const char *bad[] = {
        "{\"tool_call\": {\"name\": 5, \"arguments\": {}}}",
        "{\"tool_call\": {\"name\": \"f\", \"arguments\": {}}} trailing",
        "{\"answer\": 42}",
        "Just text.",
        "```json\n{\"tool_call\": {}}\n```",
        "\xff\xfe not utf-8 {",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect(G, bad[i], 0, NULL, NULL, bad[i]);
}

static void test_stream_prefix(void **state)
{
    (void)state;
    const char *t = "Hello <tool_c";
    assert_int_equal(ponder_tool_calls_content_prefix(PONDER_TOOL_FORMAT_HERMES, t, strlen(t)), 5);
    t = "Hello world  ";
    assert_int_equal(ponder_tool_calls_content_prefix(PONDER_TOOL_FORMAT_HERMES, t, strlen(t)), 11);
    t = "  {\"name";
    assert_int_equal(ponder_tool_calls_content_prefix(PONDER_TOOL_FORMAT_LLAMA3, t, strlen(t)), 0);
    t = "Plain answer [TOOL";
    assert_int_equal(ponder_tool_calls_content_prefix(PONDER_TOOL_FORMAT_MISTRAL, t, strlen(t)), 12);
    t = "Plain answer";
    assert_int_equal(ponder_tool_calls_content_prefix(PONDER_TOOL_FORMAT_GENERIC, t, strlen(t)), 12);
}

static void test_detect(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        ponder_tool_format f;
    } cases[] = {
        { "Qwen-Qwen2.5-7B-Instruct.jinja", PONDER_TOOL_FORMAT_HERMES },
        { "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", PONDER_TOOL_FORMAT_HERMES },
        { "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", PONDER_TOOL_FORMAT_HERMES },
        { "meta-llama-Llama-3.1-8B-Instruct.jinja", PONDER_TOOL_FORMAT_LLAMA3 },
        { "meta-llama-Llama-3.2-3B-Instruct.jinja", PONDER_TOOL_FORMAT_LLAMA3 },
        { "meta-llama-Llama-3.3-70B-Instruct.jinja", PONDER_TOOL_FORMAT_LLAMA3 },
        { "mistralai-Mistral-Nemo-Instruct-2407.jinja", PONDER_TOOL_FORMAT_MISTRAL },
        { "ponder-smollm2-chatml.jinja", PONDER_TOOL_FORMAT_GENERIC },
        { "google-gemma-2-2b-it.jinja", PONDER_TOOL_FORMAT_GENERIC },
    };
    char rel[256];
    snprintf(rel, sizeof rel, "reference/templates/templates/%s", cases[0].file);
    if (!tu_shared_exists(rel)) {
        printf("SKIP: %s missing\n", rel);
        return;
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(rel, sizeof rel, "reference/templates/templates/%s", cases[i].file);
        size_t n;
        char *src = tu_read_file(tu_shared(rel), &n);
        assert_non_null(src);
        if (ponder_tool_format_detect(src, n) != cases[i].f)
            fail_msg("%s: detected %s", cases[i].file, ponder_tool_format_name(ponder_tool_format_detect(src, n)));
        free(src);
    }
}

/* A byte-per-token vocabulary, for checking a grammar on raw text. */
static bool grammar_accepts(const char *gbnf, const char *text)
{
    ponder_grammar *g = NULL;
    ponder_error err = { 0 };
    if (ponder_grammar_parse(gbnf, strlen(gbnf), &g, &err) != PONDER_OK)
        fail_msg("grammar: %s\n%s", err.msg, gbnf);
    char bytes[256];
    const char *pieces[256];
    int32_t lens[256];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        lens[i] = 1;
    }
    ponder_grammar_vocab *v = NULL;
    assert_int_equal(ponder_grammar_vocab_create(256, pieces, lens, NULL, &v, &err), PONDER_OK);
    ponder_grammar_matcher *m = NULL;
    assert_int_equal(ponder_grammar_matcher_create(g, v, &m, &err), PONDER_OK);
    bool ok = ponder_grammar_matcher_accept_bytes(m, text, strlen(text)) && ponder_grammar_matcher_is_complete(m);
    ponder_grammar_matcher_free(m);
    ponder_grammar_vocab_free(v);
    ponder_grammar_free(g);
    return ok;
}

static const char TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"$ref\": \"#/$defs/unit\"}}, \"required\": "
    "[\"city\"], \"additionalProperties\": false, \"$defs\": {\"unit\": {\"enum\": [\"c\", \"f\"]}}}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"now\"}}]";

static char *grammar_of(ponder_tool_format f, const char *name, unsigned flags)
{
    char *g = NULL;
    ponder_error err = { 0 };
    if (ponder_tool_calls_grammar(f, TOOLS, strlen(TOOLS), name, flags, &g, &err) != PONDER_OK)
        fail_msg("tool grammar: %s", err.msg);
    return g;
}

static void test_grammar(void **state)
{
    (void)state;
    char *g = grammar_of(PONDER_TOOL_FORMAT_HERMES, NULL, PONDER_TOOL_GRAMMAR_PARALLEL);
    assert_true(grammar_accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", "
                                   "\"unit\": \"f\"}}\n</tool_call>"));
    assert_true(grammar_accepts(g, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n"
                                   "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\"}}\n</tool_call>"));
    assert_false(grammar_accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"f\"}}\n"
                                    "</tool_call>")); /* city is required */
    assert_false(grammar_accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"R\", "
                                    "\"unit\": \"k\"}}\n</tool_call>")); /* not in the enum */
    assert_false(grammar_accepts(g, "<tool_call>\n{\"name\": \"other\", \"arguments\": {}}\n</tool_call>"));
    free(g);
    g = grammar_of(PONDER_TOOL_FORMAT_HERMES, "now", 0);
    assert_true(grammar_accepts(g, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
    assert_false(grammar_accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\"}}\n</tool_call>"));
    assert_false(grammar_accepts(g, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n"
                                    "{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
    free(g);
    /* <tool_call> a control token: the call's JSON alone (the tag goes in the prompt) */
    g = grammar_of(PONDER_TOOL_FORMAT_HERMES, NULL, PONDER_TOOL_GRAMMAR_PARALLEL | PONDER_TOOL_GRAMMAR_BARE);
    assert_true(grammar_accepts(g, "{\"name\": \"now\", \"arguments\": {}}"));
    assert_false(grammar_accepts(g, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
    free(g);
    g = grammar_of(PONDER_TOOL_FORMAT_LLAMA3, NULL, PONDER_TOOL_GRAMMAR_PARALLEL);
    assert_true(grammar_accepts(g, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}"));
    assert_false(grammar_accepts(g, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}"));
    free(g);
    g = grammar_of(PONDER_TOOL_FORMAT_MISTRAL, NULL, 0);
    assert_true(grammar_accepts(g, "[{\"name\": \"now\", \"arguments\": {}}]"));
    assert_false(grammar_accepts(g, "[{\"name\": \"now\", \"arguments\": {}}, {\"name\": \"now\", \"arguments\": {}}]"));
    free(g);
    g = grammar_of(PONDER_TOOL_FORMAT_GENERIC, NULL, 0);
    assert_true(grammar_accepts(g, "{\"tool_call\": {\"name\": \"now\", \"arguments\": {}}}"));
    free(g);
    g = grammar_of(PONDER_TOOL_FORMAT_GENERIC, NULL, PONDER_TOOL_GRAMMAR_PARALLEL);
    assert_true(grammar_accepts(g, "{\"tool_calls\": [{\"name\": \"now\", \"arguments\": {}}]}"));
    free(g);
    /* every sentence a grammar accepts parses back into the same call */
    ponder_tool_calls c;
    ponder_error err = { 0 };
    const char *t = "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}]";
    assert_int_equal(ponder_tool_calls_parse(PONDER_TOOL_FORMAT_MISTRAL, t, strlen(t), &c, &err), PONDER_OK);
    assert_int_equal(c.n_calls, 1);
    ponder_tool_calls_clear(&c);
    /* errors: an unknown name, a keyword the compiler lacks (named with the tool) */
    char *out = NULL;
    assert_int_equal(ponder_tool_calls_grammar(PONDER_TOOL_FORMAT_HERMES, TOOLS, strlen(TOOLS), "nope", 0, &out,
                                               &err),
                     PONDER_ERR_NOT_FOUND);
    const char *badt = "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", "
                       "\"properties\": {\"a\": {\"not\": {}}}}}}]";
    assert_int_equal(ponder_tool_calls_grammar(PONDER_TOOL_FORMAT_HERMES, badt, strlen(badt), NULL, 0, &out, &err),
                     PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "tools[0].function.parameters"));
    assert_non_null(strstr(err.msg, "not"));
    char *p = ponder_tool_calls_generic_prompt(TOOLS, strlen(TOOLS), true);
    assert_non_null(p);
    assert_non_null(strstr(p, "get_weather"));
    assert_non_null(strstr(p, "tool_calls"));
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hermes),   cmocka_unit_test(test_llama3),        cmocka_unit_test(test_mistral),
        cmocka_unit_test(test_generic),  cmocka_unit_test(test_stream_prefix), cmocka_unit_test(test_detect),
        cmocka_unit_test(test_grammar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
