/*
 * test_chat_cli.c — `ponder chat` with stdin not a terminal, on a synthetic SmolLM model
 * that carries its chat template, greedy: one answer per input line on stdout (nothing
 * else there), the KV cache reused across turns without changing anything (turn k's
 * answer equals `ponder run --special` on the conversation rendered by `ponder template`)
 * while evaluating fewer prompt tokens than the whole rendering, /reset, dropping the
 * oldest turns when the context is full, and one-line errors with non-zero exits.
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

#define N_PREDICT "12"

static const char *model(void)
{
    return tu_shared("models/synthetic/syn-tiny-smollm-Q4_K_M.gguf");
}

/* Runs `ponder chat` on the given input lines; returns the result (caller frees). */
static tu_cli_result chat_run(const char *input, const char *const *extra)
{
    char *in = cu_temp_file(input, strlen(input));
    const char *args[32] = { "chat", "-m", model(), "--temp", "0", "-n", N_PREDICT, "-t", "1" };
    size_t n = 9;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    tu_cli_result r = tu_run_cli(in, args);
    unlink(in);
    free(in);
    return r;
}

/* stdout's lines as JSON objects. */
static json_t *json_lines(const char *out)
{
    json_t *arr = json_array();
    const char *p = out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!o)
            fail_msg("not a JSON line: %.*s", (int)(nl - p), p);
        json_array_append_new(arr, o);
        p = nl + 1;
    }
    return arr;
}

static const char *answer_of(json_t *turns, size_t i)
{
    return json_string_value(json_object_get(json_array_get(turns, i), "answer"));
}

static json_int_t num_of(json_t *turns, size_t i, const char *key)
{
    json_t *v = json_object_get(json_array_get(turns, i), key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* `ponder template` on messages, then `ponder run --special` on the rendering: the text a
 * fresh context gives for the whole conversation. */
static char *run_rendered(json_t *messages)
{
    json_t *c = json_pack("{s:O, s:b}", "messages", messages, "add_generation_prompt", 1);
    char *s = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    char *in = cu_temp_file(s, strlen(s));
    free(s);
    tu_cli_result t = TU_RUN_CLI(NULL, "template", "-m", model(), "--input", in);
    unlink(in);
    free(in);
    assert_int_equal(t.status, 0);
    tu_cli_result r =
        TU_RUN_CLI(NULL, "run", "-m", model(), "-p", t.out, "--special", "--temp", "0", "-n", N_PREDICT, "-t", "1", "--json");
    if (r.status != 0)
        fail_msg("ponder run failed: %s", r.err);
    json_t *o = json_loads(r.out, 0, NULL);
    assert_non_null(o);
    char *text = strdup(json_string_value(json_object_get(o, "text")));
    json_decref(o);
    tu_cli_result_free(&t);
    tu_cli_result_free(&r);
    return text;
}

static void add_msg(json_t *msgs, const char *role, const char *content)
{
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", role, "content", content));
}

static const char *const users[] = { "Hello there", "What is your name?", "Tell me more." };

static void test_turns_and_kv_reuse(void **state)
{
    (void)state;
    const char *input = "Hello there\nWhat is your name?\nTell me more.\n";
    tu_cli_result r = chat_run(input, (const char *const[]){ "--json", NULL });
    if (r.status != 0)
        fail_msg("chat failed: %s", r.err);
    json_t *turns = json_lines(r.out);
    assert_int_equal(json_array_size(turns), 3);
    json_t *msgs = json_array();
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(turns, i), "finish")), "length");
        assert_int_equal(num_of(turns, i, "completion_tokens"), atoi(N_PREDICT));
        add_msg(msgs, "user", users[i]);
        if (i == 0) {
            /* nothing cached yet: the whole rendering is evaluated */
            assert_int_equal(num_of(turns, i, "prompt_tokens_evaluated"), num_of(turns, i, "prompt_tokens"));
        } else {
            /* the cache holds the earlier turns: only the new part is evaluated ... */
            assert_true(num_of(turns, i, "prompt_tokens_evaluated") < num_of(turns, i, "prompt_tokens"));
            assert_true(num_of(turns, i, "prompt_tokens") > num_of(turns, i - 1, "context_used"));
            /* ... and the answer is what the whole rendering gives in a fresh context */
            char *fresh = run_rendered(msgs);
            assert_string_equal(answer_of(turns, i), fresh);
            free(fresh);
        }
        add_msg(msgs, "assistant", answer_of(turns, i));
    }
    json_decref(msgs);

    /* without --json: stdout is the answers, one line each, and nothing else */
    tu_cli_result plain = chat_run(input, NULL);
    assert_int_equal(plain.status, 0);
    char expect[4096] = "";
    for (size_t i = 0; i < 3; i++) {
        strcat(expect, answer_of(turns, i));
        strcat(expect, "\n");
    }
    assert_string_equal(plain.out, expect);
    tu_cli_result_free(&plain);
    json_decref(turns);
    tu_cli_result_free(&r);
}

static void test_reset_and_commands(void **state)
{
    (void)state;
    tu_cli_result r = chat_run("Hello there\n/stats\n/help\n/nope\n\n/reset\nHello there\n/exit\nnot read\n",
                               (const char *const[]){ "--json", NULL });
    assert_int_equal(r.status, 0);
    json_t *turns = json_lines(r.out);
    /* commands answer on stderr; /exit ends before the last line */
    assert_int_equal(json_array_size(turns), 2);
    assert_string_equal(answer_of(turns, 1), answer_of(turns, 0));
    assert_int_equal(num_of(turns, 1, "prompt_tokens"), num_of(turns, 0, "prompt_tokens"));
    /* the cache was cleared: everything evaluated again */
    assert_int_equal(num_of(turns, 1, "prompt_tokens_evaluated"), num_of(turns, 1, "prompt_tokens"));
    assert_non_null(strstr(r.err, "last answer: prompt"));
    assert_non_null(strstr(r.err, "/reset"));
    assert_non_null(strstr(r.err, "unknown command /nope"));
    json_decref(turns);
    tu_cli_result_free(&r);

    /* a system message comes first in the rendering */
    tu_cli_result s = chat_run("Hello there\n", (const char *const[]){ "--json", "--system", "Be brief.", NULL });
    assert_int_equal(s.status, 0);
    turns = json_lines(s.out);
    json_t *msgs = json_array();
    add_msg(msgs, "system", "Be brief.");
    add_msg(msgs, "user", "Hello there");
    char *fresh = run_rendered(msgs);
    assert_string_equal(answer_of(turns, 0), fresh);
    free(fresh);
    json_decref(msgs);
    json_decref(turns);
    tu_cli_result_free(&s);
}

static void test_context_full(void **state)
{
    (void)state;
    /* a 48-token context holds one turn; the second drops the first, the third (too long
     * alone) is refused and the session goes on */
    char input[4096];
    snprintf(input, sizeof input, "Hello there\nWhat is your name?\n%s\nHi\n",
             "word word word word word word word word word word word word word word word word word word word word "
             "word word word word word word word word word word word word word word word word word word word word");
    tu_cli_result r = chat_run(input, (const char *const[]){ "--json", "-c", "48", "-n", "8", NULL });
    assert_int_equal(r.status, 0);
    json_t *turns = json_lines(r.out);
    assert_int_equal(json_array_size(turns), 3);
    assert_int_equal(num_of(turns, 0, "dropped_turns"), 0);
    assert_int_equal(num_of(turns, 1, "dropped_turns"), 1);
    assert_non_null(strstr(r.err, "dropped the 1 oldest turn"));
    assert_non_null(strstr(r.err, "the context holds 48"));
    for (size_t i = 0; i < 3; i++)
        assert_true(num_of(turns, i, "context_used") <= 48);
    json_decref(turns);
    tu_cli_result_free(&r);
}

static void expect_one_line_error(tu_cli_result *r, int status, const char *needle)
{
    if (r->status != status)
        fail_msg("exit %d (expected %d): %s", r->status, status, r->err);
    assert_string_equal(r->out, "");
    const char *nl = strchr(r->err, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "");
    if (!strstr(r->err, needle))
        fail_msg("'%s' not in: %s", needle, r->err);
    tu_cli_result_free(r);
}

static void test_errors(void **state)
{
    (void)state;
    tu_cli_result r = TU_RUN_CLI(NULL, "chat", "-m", model(), "--bogus");
    expect_one_line_error(&r, 2, "--bogus");
    r = TU_RUN_CLI(NULL, "chat", "-m", model(), "--temp", "warm");
    expect_one_line_error(&r, 2, "--temp");
    r = TU_RUN_CLI(NULL, "chat", "-m", model(), "-n", "0");
    expect_one_line_error(&r, 2, "-n");
    r = TU_RUN_CLI(NULL, "chat", "-m", "/nonexistent/model.gguf");
    expect_one_line_error(&r, 1, "model.gguf");
    /* stories260K has no chat template: an error unless ChatML is asked for */
    const char *stories = tu_shared("models/stories260K/stories260K.gguf");
    r = TU_RUN_CLI(NULL, "chat", "-m", stories);
    expect_one_line_error(&r, 1, "no chat template");
    char *in = cu_temp_file("Once upon a time\n", 17);
    r = TU_RUN_CLI(in, "chat", "-m", stories, "--chatml", "--temp", "0", "-n", "6", "-t", "1");
    unlink(in);
    free(in);
    assert_int_equal(r.status, 0);
    assert_non_null(strchr(r.out, '\n'));
    assert_string_equal(strchr(r.out, '\n') + 1, "");
    tu_cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turns_and_kv_reuse),
        cmocka_unit_test(test_reset_and_commands),
        cmocka_unit_test(test_context_full),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
