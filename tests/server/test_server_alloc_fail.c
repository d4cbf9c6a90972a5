/*
 * test_server_alloc_fail.c — the server's request path with each of its allocations failing
 * in turn (issue 18): a request from its body to its last byte — admission, parsing,
 * ChatML rendering, tokenizing, the strategy set-up, the response object or the stream's
 * chunks — must end in an answer or an error (OpenAI's error object, or none when even that
 * could not be allocated), never a crash, a hang or a place in the queue that is never given
 * back; in the ASan build LeakSanitizer checks at exit that nothing leaked.
 *
 * malloc, calloc and realloc are wrapped at link time (allocfail.h), as test_alloc_fail.c
 * does for the GGUF reader, and only the test thread's calls are counted and failed: the
 * request path runs on the caller's thread (an HTTP handler's, a router worker's), while
 * the engine thread's decode step is gen's and is left alone. jansson's own allocations
 * are not wrapped (a shared library).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "allocfail.h"
#include "ponder/server.h"
#include "testutil.h"

static ponder_server *srv;

static void check_error_json(const char *js)
{
    if (!js)
        return; /* out of memory for the error object itself */
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    assert_non_null(o);
    assert_true(json_is_object(json_object_get(o, "error")));
    json_decref(o);
}

/* One request on the test thread; returns its status (200: answered whole). */
static int run_one(ponder_server_endpoint ep, const char *body)
{
    ponder_server_request *q = NULL;
    char *err = NULL;
    double ra;
    af_armed = true;
    int st = ponder_server_request_start(srv, ep, body, strlen(body), &q, &err, &ra);
    if (st != 200) {
        af_armed = false;
        assert_null(q);
        check_error_json(err);
        free(err);
        return st;
    }
    if (ponder_server_request_streams(q)) {
        const char *text;
        size_t len;
        int guard = 0;
        while (ponder_server_request_read(q, 1000, &text, &len) != PONDER_SERVER_READ_END)
            assert_true(++guard < 100000);
    } else {
        assert_true(ponder_server_request_wait(q, NULL, NULL, 20));
        char *out = NULL;
        st = ponder_server_request_response(q, &out);
        if (st == 200)
            assert_non_null(out);
        else
            check_error_json(out);
        free(out);
    }
    ponder_server_request_free(q);
    af_armed = false;
    return st;
}

static void fail_each(const char *what, ponder_server_endpoint ep, const char *body)
{
    af_calls = 0;
    af_fail_at = -1;
    assert_int_equal(run_one(ep, body), 200);
    const long n = af_calls;
    assert_true(n > 0);
    long n_errors = 0;
    for (long i = 0; i < n; i++) {
        af_calls = 0;
        af_failed = 0;
        af_fail_at = i;
        int st = run_one(ep, body);
        af_fail_at = -1;
        if (af_failed && st != 200)
            n_errors++;
    }
    printf("# %s: %ld allocations, each failed in turn: %ld errors, the rest optional\n", what, n, n_errors);
    assert_true(n_errors > 0);
    /* no place in the queue leaked: with --parallel 1 and no queue, a request still runs */
    assert_int_equal(run_one(ep, body), 200);
}

static void chat_whole(void **state)
{
    (void)state;
    fail_each("chat", PONDER_SERVER_CHAT,
              "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi "
              "<|im_end|> there\"}],\"max_tokens\":4,\"temperature\":0,\"stop\":[\"xyz\"]}");
}

static void chat_stream(void **state)
{
    (void)state;
    fail_each("chat stream", PONDER_SERVER_CHAT,
              "{\"messages\":[{\"role\":\"user\",\"content\":\"Once\"}],\"max_tokens\":4,\"temperature\":0,"
              "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
}

static void completions_logprobs(void **state)
{
    (void)state;
    fail_each("completions, 2 prompts, logprobs", PONDER_SERVER_COMPLETIONS,
              "{\"prompt\":[\"Once upon\",\"A cat\"],\"n\":2,\"max_tokens\":3,\"temperature\":0,\"logprobs\":2}");
}

static void completions_stream_echo(void **state)
{
    (void)state;
    fail_each("completions stream, logprobs", PONDER_SERVER_COMPLETIONS,
              "{\"prompt\":\"Once upon\",\"max_tokens\":3,\"temperature\":0,\"logprobs\":1,\"stream\":true}");
}

static void strategy(void **state)
{
    (void)state;
    fail_each("sc strategy", PONDER_SERVER_COMPLETIONS,
              "{\"prompt\":\"Tom has 3 apples.\",\"max_tokens\":4,\"ponder\":{\"strategy\":\"sc\",\"samples\":2}}");
}

static void refused(void **state)
{
    (void)state;
    /* a 400 path: the error object itself must survive failing allocations */
    af_calls = 0;
    af_fail_at = -1;
    const char *body = "{\"prompt\":\"x\",\"max_tokens\":-3}";
    assert_int_equal(run_one(PONDER_SERVER_COMPLETIONS, body), 400);
    const long n = af_calls;
    for (long i = 0; i < n; i++) {
        af_calls = 0;
        af_fail_at = i;
        int st = run_one(PONDER_SERVER_COMPLETIONS, body);
        af_fail_at = -1;
        assert_true(st == 400 || st == 500);
    }
    printf("# a refused request: %ld allocations, each failed in turn\n", n);
}

static int setup(void **state)
{
    (void)state;
    ponder_server_params p = ponder_server_params_default();
    p.n_parallel = 2;
    p.queue_max = 0;
    p.n_ctx = 256;
    p.chatml = true;
    ponder_error err = { 0 };
    if (ponder_server_create(tu_shared("models/stories260K/stories260K.gguf"), &p, &srv, &err) != PONDER_OK ||
        ponder_server_start_engine(srv, &err) != PONDER_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ponder_server_free(srv);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_whole),           cmocka_unit_test(chat_stream), cmocka_unit_test(completions_logprobs),
        cmocka_unit_test(completions_stream_echo), cmocka_unit_test(strategy), cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
