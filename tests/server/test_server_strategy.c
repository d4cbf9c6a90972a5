/*
 * test_server_strategy.c — think strategies through the HTTP API, end to end in process:
 * `ponder serve -m` as the CLI makes it (the router over one local ponder_server,
 * ponder_route_config_for_model; stories260K, ChatML, 4 slots) on a loopback port and
 * plain HTTP/1.0 requests over a socket. A strategy's chains are exactly the n choices of the same
 * prompt (with the cue) and seeds, so each check rebuilds the strategy's outcome from a
 * plain n-choice request: the vote, the winner's text, bon's pick by mean logprob, asc's
 * accounting, the streamed single chunk, the model-name prefix and the 400s/404s; and the
 * in-process API (no socket) against the HTTP answers.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ponder/route.h"
#include "ponder/server.h"
#include "ponder/think.h"
#include "testutil.h"

#define MODEL_ID "stories260K"
#define CUE PONDER_THINK_COT_CUE

typedef struct http_reply {
    int status;
    char *body; /* NUL-terminated */
} http_reply;

static ponder_router *front; /* `ponder serve -m`: HTTP */
static int port;             /* the port http_post asks */
static ponder_server *srv;   /* the same model and parameters, asked in-process */

/* One HTTP/1.0 request (no chunked encoding: the server closes after the body). */
static http_reply http_post(const char *path, const char *body)
{
    http_reply r = { 0, NULL };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, strlen(body));
    assert_int_equal(write(fd, head, (size_t)n), n);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r.status), 1);
    char *sep = strstr(buf, "\r\n\r\n");
    assert_non_null(sep);
    r.body = strdup(sep + 4);
    free(buf);
    return r;
}

static json_t *post_json(const char *path, const char *body, int want_status)
{
    http_reply r = http_post(path, body);
    if (r.status != want_status)
        fprintf(stderr, "%s %s -> %d %s\n", path, body, r.status, r.body);
    assert_int_equal(r.status, want_status);
    json_error_t je;
    json_t *o = json_loads(r.body, 0, &je);
    assert_non_null(o);
    free(r.body);
    return o;
}

static ponder_server_params server_params(void)
{
    ponder_server_params p = ponder_server_params_default();
    p.n_parallel = 4;
    p.n_ctx = 256;
    p.chatml = true;
    return p;
}

/* `ponder serve -m MODEL [--draft DRAFT] --port 0 -np 4 -c 256 -t 1 --chatml`, as
 * cmd_serve.c sets it up. */
static ponder_router *serve_m(const char *draft, ponder_error *err)
{
    ponder_router_params rp = ponder_router_params_default();
    rp.port = 0;
    rp.local_required = true;
    rp.plain_ponder = true;
    rp.local.n_parallel = 4;
    rp.local.n_ctx = 256;
    rp.local.chatml = true;
    ponder_route_config *cfg = NULL;
    ponder_router *r = NULL;
    if (ponder_route_config_for_model(MODEL_ID, tu_shared("models/stories260K/stories260K.gguf"), draft, &cfg, err) !=
            PONDER_OK ||
        ponder_router_create(cfg, &rp, &r, err) != PONDER_OK)
        return NULL;
    if (ponder_router_start(r, err) != PONDER_OK) {
        ponder_router_free(r);
        return NULL;
    }
    return r;
}

static int setup(void **state)
{
    (void)state;
    ponder_server_params p = server_params();
    ponder_error err = { 0 };
    if (!(front = serve_m(NULL, &err)) ||
        ponder_server_create(tu_shared("models/stories260K/stories260K.gguf"), &p, &srv, &err) != PONDER_OK ||
        ponder_server_start_engine(srv, &err) != PONDER_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    port = ponder_router_port(front);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ponder_router_free(front);
    ponder_server_free(srv);
    return 0;
}

static const char *choice_text(json_t *resp, size_t i, bool chat)
{
    json_t *c = json_array_get(json_object_get(resp, "choices"), i);
    assert_non_null(c);
    json_t *t = chat ? json_object_get(json_object_get(c, "message"), "content") : json_object_get(c, "text");
    assert_true(json_is_string(t));
    return json_string_value(t);
}

static json_int_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* sc over a completions prompt = the vote over the n choices of prompt + cue. */
static void test_sc_equals_n_choices(void **state)
{
    (void)state;
    const char *q = "Tom had 3 apples and got 2 more. How many?";
    char body[1024];
    snprintf(body, sizeof body,
             "{\"prompt\":\"%s\",\"max_tokens\":24,\"temperature\":0.9,\"seed\":11,"
             "\"ponder\":{\"strategy\":\"sc\",\"samples\":4,\"answer\":\"text\"}}", q);
    json_t *sc = post_json("/v1/completions", body, 200);
    snprintf(body, sizeof body, "{\"prompt\":\"%s%s\",\"max_tokens\":24,\"temperature\":0.9,\"seed\":11,\"n\":4}", q,
             CUE);
    json_t *plain = post_json("/v1/completions", body, 200);

    const char *answers[4];
    char buf[4][PONDER_ANSWER_BYTES];
    for (int i = 0; i < 4; i++) {
        const char *t = choice_text(plain, (size_t)i, false);
        answers[i] = ponder_answer_extract(PONDER_ANSWER_TEXT, 0, t, strlen(t), buf[i]) ? buf[i] : NULL;
    }
    ponder_vote votes[4];
    int32_t n_answered = 0;
    int32_t n_votes = ponder_vote_tally(answers, 4, votes, &n_answered);
    assert_true(n_votes >= 1);

    json_t *po = json_object_get(sc, "ponder");
    assert_string_equal(json_string_value(json_object_get(po, "strategy")), "sc:4");
    assert_int_equal(int_of(po, "samples"), 4);
    assert_int_equal(int_of(po, "rounds"), 1);
    assert_string_equal(json_string_value(json_object_get(po, "answer")), votes[0].answer);
    json_t *jv = json_object_get(po, "votes");
    assert_int_equal(json_object_size(jv), (size_t)n_votes);
    for (int32_t i = 0; i < n_votes; i++)
        assert_int_equal(int_of(jv, votes[i].answer), votes[i].count);
    assert_true(fabs(json_real_value(json_object_get(po, "agreement")) - (double)votes[0].count / n_answered) < 1e-9);
    /* one choice: the winning chain's text */
    assert_int_equal(json_array_size(json_object_get(sc, "choices")), 1);
    assert_string_equal(choice_text(sc, 0, false), choice_text(plain, (size_t)votes[0].first, false));
    /* the prompt evaluated once for all chains; usage counts every chain's tokens */
    json_t *u = json_object_get(sc, "usage");
    assert_int_equal(int_of(u, "prompt_tokens"), int_of(json_object_get(plain, "usage"), "prompt_tokens"));
    assert_int_equal(int_of(po, "prompt_tokens_evaluated"), int_of(u, "prompt_tokens"));
    assert_int_equal(int_of(u, "completion_tokens"), int_of(json_object_get(plain, "usage"), "completion_tokens"));
    assert_true(int_of(po, "flops") > 0);
    json_decref(sc);
    json_decref(plain);
}

/* "cue": false runs the chains on the prompt exactly as given (the cascade's stages over
 * models trained without a cue): the same chains as n choices of the bare prompt. */
static void test_no_cue(void **state)
{
    (void)state;
    json_t *sc = post_json("/v1/completions",
                           "{\"prompt\":\"A cat\",\"max_tokens\":12,\"temperature\":0.9,\"seed\":5,"
                           "\"ponder\":{\"strategy\":\"sc:2\",\"answer\":\"text\",\"cue\":false}}",
                           200);
    json_t *plain = post_json("/v1/completions",
                              "{\"prompt\":\"A cat\",\"max_tokens\":12,\"temperature\":0.9,\"seed\":5,\"n\":2}", 200);
    assert_int_equal(int_of(json_object_get(sc, "usage"), "prompt_tokens"),
                     int_of(json_object_get(plain, "usage"), "prompt_tokens"));
    int first = (int)json_integer_value(json_object_get(json_object_get(sc, "ponder"), "best"));
    assert_true(first == 0 || first == 1);
    assert_string_equal(choice_text(sc, 0, false), choice_text(plain, (size_t)first, false));
    json_decref(sc);
    json_decref(plain);
}

/* bon through the model-name prefix on chat: the chain with the best mean logprob wins. */
static void test_bon_prefix_chat(void **state)
{
    (void)state;
    json_t *bon = post_json("/v1/chat/completions",
                            "{\"model\":\"bon4-" MODEL_ID "\",\"messages\":[{\"role\":\"user\",\"content\":\"A cat\"}],"
                            "\"max_tokens\":16,\"temperature\":1.0,\"seed\":3}",
                            200);
    json_t *plain = post_json("/v1/chat/completions",
                              "{\"messages\":[{\"role\":\"user\",\"content\":\"A cat" CUE "\"}],"
                              "\"max_tokens\":16,\"temperature\":1.0,\"seed\":3,\"n\":4,\"logprobs\":true}",
                              200);
    int best = -1;
    double best_mean = -INFINITY;
    for (size_t i = 0; i < 4; i++) {
        json_t *content = json_object_get(json_object_get(json_array_get(json_object_get(plain, "choices"), i),
                                                          "logprobs"),
                                          "content");
        double sum = 0.0;
        size_t k;
        json_t *t;
        json_array_foreach(content, k, t) sum += json_real_value(json_object_get(t, "logprob"));
        size_t n = json_array_size(content);
        if (n && sum / (double)n > best_mean) {
            best_mean = sum / (double)n;
            best = (int)i;
        }
    }
    json_t *po = json_object_get(bon, "ponder");
    assert_string_equal(json_string_value(json_object_get(po, "strategy")), "bon:4");
    assert_int_equal(int_of(po, "best"), best);
    assert_string_equal(choice_text(bon, 0, true), choice_text(plain, (size_t)best, true));
    json_decref(bon);
    json_decref(plain);
}

/* asc: at most the budget, rounds of at most --parallel chains, the prompt once per round;
 * greedy chains agree at once, so the first round settles it. */
static void test_asc_accounting(void **state)
{
    (void)state;
    json_t *r = post_json("/v1/completions",
                          "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0,"
                          "\"ponder\":{\"strategy\":\"asc\",\"samples\":16,\"answer\":\"text\"}}",
                          200);
    json_t *po = json_object_get(r, "ponder");
    json_int_t samples = int_of(po, "samples"), rounds = int_of(po, "rounds");
    assert_int_equal(rounds, 1);
    assert_int_equal(samples, 4);
    assert_true(fabs(json_real_value(json_object_get(po, "agreement")) - 1.0) < 1e-12);
    assert_int_equal(int_of(po, "prompt_tokens_evaluated"), rounds * int_of(json_object_get(r, "usage"), "prompt_tokens"));
    json_decref(r);
    /* sampled: more rounds may follow, each evaluating the prompt again */
    r = post_json("/v1/completions",
                  "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":1.5,\"seed\":2,"
                  "\"ponder\":{\"strategy\":\"asc:12\",\"answer\":\"text\"}}",
                  200);
    po = json_object_get(r, "ponder");
    samples = int_of(po, "samples");
    rounds = int_of(po, "rounds");
    assert_true(samples >= 4 && samples <= 12);
    assert_int_equal(rounds, (samples + 3) / 4);
    assert_int_equal(int_of(po, "prompt_tokens_evaluated"), rounds * int_of(json_object_get(r, "usage"), "prompt_tokens"));
    json_decref(r);
}

/* Streaming with a strategy: the role chunk, the whole answer as one chunk, the finish
 * chunk carrying the ponder object, [DONE]. */
static void test_stream_one_chunk(void **state)
{
    (void)state;
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"A dog\"}],\"max_tokens\":12,\"temperature\":0.8,"
                      "\"seed\":9,\"ponder\":{\"strategy\":\"sc:3\",\"answer\":\"text\"}%s}";
    char body[512];
    snprintf(body, sizeof body, req, "");
    json_t *whole = post_json("/v1/chat/completions", body, 200);
    snprintf(body, sizeof body, req, ",\"stream\":true");
    http_reply r = http_post("/v1/chat/completions", body);
    assert_int_equal(r.status, 200);
    int n_data = 0, n_content = 0;
    bool done = false, ponder_seen = false;
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "data: ", 6) != 0)
            continue;
        n_data++;
        if (strcmp(line + 6, "[DONE]") == 0) {
            done = true;
            continue;
        }
        json_t *c = json_loads(line + 6, 0, NULL);
        assert_non_null(c);
        json_t *delta = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
        json_t *content = json_object_get(delta, "content");
        if (json_is_string(content) && json_string_length(content) > 0) {
            n_content++;
            assert_string_equal(json_string_value(content), choice_text(whole, 0, true));
        }
        json_t *po = json_object_get(c, "ponder");
        if (po) {
            ponder_seen = true;
            assert_string_equal(json_string_value(json_object_get(po, "strategy")), "sc:3");
            assert_true(json_equal(json_object_get(po, "votes"), json_object_get(json_object_get(whole, "ponder"), "votes")));
        }
        json_decref(c);
    }
    assert_true(done && ponder_seen);
    assert_int_equal(n_content, 1);
    assert_int_equal(n_data, 4); /* role, content, finish, [DONE] */
    free(r.body);
    json_decref(whole);
}

static void expect_error(const char *path, const char *body, int status, const char *param)
{
    json_t *o = post_json(path, body, status);
    json_t *e = json_object_get(o, "error");
    assert_non_null(e);
    if (param)
        assert_string_equal(json_string_value(json_object_get(e, "param")), param);
    json_decref(o);
}

static void test_strategy_errors(void **state)
{
    (void)state;
    const char *C = "/v1/completions";
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":{\"strategy\":\"vote\"}}", 400, "ponder.strategy");
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":{\"strategy\":3}}", 400, "ponder.strategy");
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":\"sc\"}", 400, "ponder");
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":{\"strategy\":\"sc:2\",\"cue\":\"no\"}}", 400, "ponder.cue");
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":{\"strategy\":\"sc\",\"samples\":0}}", 400, "ponder.samples");
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":{\"strategy\":\"cot\",\"samples\":4}}", 400, "ponder.samples");
    expect_error(C, "{\"prompt\":\"x\",\"ponder\":{\"strategy\":\"sc\",\"answer\":\"words\"}}", 400, "ponder.answer");
    expect_error(C, "{\"prompt\":\"x\",\"n\":2,\"ponder\":{\"strategy\":\"sc:2\"}}", 400, "n");
    expect_error(C, "{\"prompt\":\"x\",\"logprobs\":1,\"ponder\":{\"strategy\":\"sc:2\"}}", 400, "logprobs");
    expect_error(C, "{\"prompt\":[\"x\",\"y\"],\"ponder\":{\"strategy\":\"sc:2\"}}", 400, "prompt");
    expect_error(C, "{\"prompt\":\"x\",\"model\":\"sc4-other\"}", 404, "model");
    expect_error(C, "{\"prompt\":\"x\",\"model\":\"xy4-" MODEL_ID "\"}", 404, "model");
    /* direct through the prefix is the plain request; asc fits any --parallel (rounds shrink) */
    json_t *o = post_json(C, "{\"prompt\":\"x\",\"max_tokens\":2,\"model\":\"direct-" MODEL_ID "\"}", 200);
    assert_null(json_object_get(json_object_get(o, "ponder"), "strategy"));
    json_decref(o);
    o = post_json(C, "{\"prompt\":\"x\",\"max_tokens\":2,\"model\":\"asc64-" MODEL_ID "\",\"temperature\":0}", 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "ponder"), "strategy")), "asc:64");
    json_decref(o);
    /* sc:8 needs 8 chains; the server decodes 4 at once: two rounds of 4 (was a 400) */
    const char *const sc8[] = { "{\"prompt\":\"x\",\"max_tokens\":2,\"ponder\":{\"strategy\":\"sc\"}}",
                                "{\"prompt\":\"x\",\"max_tokens\":2,\"model\":\"sc8-" MODEL_ID "\"}" };
    for (int i = 0; i < 2; i++) {
        o = post_json(C, sc8[i], 200);
        json_t *p = json_object_get(o, "ponder");
        assert_string_equal(json_string_value(json_object_get(p, "strategy")), "sc:8");
        assert_int_equal(json_integer_value(json_object_get(p, "samples")), 8);
        assert_int_equal(json_integer_value(json_object_get(p, "rounds")), 2);
        assert_int_equal(json_array_size(json_object_get(p, "chains")), 8);
        json_decref(o);
    }
}

/* --draft: the same server with a draft model answers greedy requests token for token as
 * without one (speculative decoding changes speed, not text); a draft with another
 * vocabulary is refused at creation with a message. */
static void test_draft_same_answers(void **state)
{
    (void)state;
    ponder_error err = { 0 };
    ponder_router *with = serve_m(tu_shared("models/synthetic/syn-tiny-Q8_0.gguf"), &err);
    assert_non_null(with);
    static const char *const bodies[] = {
        "{\"prompt\":\"Once upon a time\",\"max_tokens\":48,\"temperature\":0}",
        "{\"prompt\":\"The little dog ran\",\"max_tokens\":40,\"temperature\":0,\"n\":2}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about a cat.\"}],\"max_tokens\":32,\"temperature\":0}",
    };
    const int plain = port;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        const char *path = strstr(bodies[i], "messages") ? "/v1/chat/completions" : "/v1/completions";
        const bool chat = strstr(path, "chat") != NULL;
        json_t *a = post_json(path, bodies[i], 200);
        port = ponder_router_port(with);
        json_t *b = post_json(path, bodies[i], 200);
        port = plain;
        const size_t n = json_array_size(json_object_get(a, "choices"));
        assert_true(n >= 1);
        assert_int_equal(json_array_size(json_object_get(b, "choices")), n);
        for (size_t k = 0; k < n; k++)
            assert_string_equal(choice_text(a, k, chat), choice_text(b, k, chat));
        assert_int_equal(int_of(json_object_get(a, "usage"), "completion_tokens"),
                         int_of(json_object_get(b, "usage"), "completion_tokens"));
        /* the draft did propose, and only the plain server reports nothing of it */
        json_t *pb = json_object_get(b, "ponder");
        assert_true(int_of(pb, "draft_tokens") > 0);
        assert_true(int_of(pb, "draft_accepted") >= 0 && int_of(pb, "draft_accepted") <= int_of(pb, "draft_tokens"));
        assert_null(json_object_get(json_object_get(a, "ponder"), "draft_tokens"));
        json_decref(a);
        json_decref(b);
    }
    ponder_router_free(with);

    ponder_server_params p = server_params();
    p.draft_path = tu_shared("models/synthetic/syn-tiny-qwen2-Q8_0.gguf");
    ponder_server *bad = NULL;
    assert_int_not_equal(ponder_server_create(tu_shared("models/stories260K/stories260K.gguf"), &p, &bad, &err),
                         PONDER_OK);
    assert_null(bad);
    assert_non_null(strstr(err.msg, "vocabulary"));
}

/* The in-process API (ponder_server_request_*, the router's local backends) answers with
 * the HTTP API's bytes: the same greedy text whole and streamed, the same usage, and a
 * refusal's status and error object. */
static void test_in_process_same_answers(void **state)
{
    (void)state;
    const char *body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0}";
    json_t *http = post_json("/v1/completions", body, 200);
    ponder_server_request *q = NULL;
    char *err_json = NULL;
    double ra = 0;
    assert_int_equal(ponder_server_request_start(srv, PONDER_SERVER_COMPLETIONS, body, strlen(body), &q, &err_json, &ra),
                     200);
    assert_non_null(q);
    assert_false(ponder_server_request_streams(q));
    assert_true(ponder_server_request_wait(q, NULL, NULL, 20));
    char *text = NULL;
    assert_int_equal(ponder_server_request_response(q, &text), 200);
    const double ttft = ponder_server_request_ttft_ms(q);
    ponder_server_request_free(q);
    json_t *inproc = json_loads(text, 0, NULL);
    assert_non_null(inproc);
    free(text);
    /* the first token came after the start and no later than the answer's end */
    assert_true(ttft > 0);
    assert_true(ttft <= json_real_value(json_object_get(json_object_get(inproc, "ponder"), "wall_ms")) + 0.001);
    assert_string_equal(choice_text(http, 0, false), choice_text(inproc, 0, false));
    assert_int_equal(int_of(json_object_get(http, "usage"), "completion_tokens"),
                     int_of(json_object_get(inproc, "usage"), "completion_tokens"));

    /* streamed: the chunks' texts joined are the same answer, then [DONE] */
    const char *sbody = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,\"stream\":true}";
    assert_int_equal(ponder_server_request_start(srv, PONDER_SERVER_COMPLETIONS, sbody, strlen(sbody), &q, &err_json, &ra),
                     200);
    assert_true(ponder_server_request_streams(q));
    char *sse = calloc(1, 1);
    size_t sse_len = 0;
    for (int guard = 0; guard < 100000; guard++) {
        const char *t;
        size_t n;
        ponder_server_read rd = ponder_server_request_read(q, 20, &t, &n);
        sse = realloc(sse, sse_len + n + 1);
        memcpy(sse + sse_len, t, n);
        sse_len += n;
        sse[sse_len] = '\0';
        if (rd == PONDER_SERVER_READ_END)
            break;
    }
    ponder_server_request_free(q);
    assert_non_null(strstr(sse, "data: [DONE]\n\n"));
    char joined[4096] = "";
    for (char *d = strstr(sse, "data: {"); d; d = strstr(d + 1, "data: {")) {
        char *end = strstr(d, "\n\n");
        json_t *c = json_loadb(d + 6, (size_t)(end - d - 6), 0, NULL);
        assert_non_null(c);
        json_t *t = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "text");
        if (json_is_string(t))
            strncat(joined, json_string_value(t), sizeof joined - strlen(joined) - 1);
        json_decref(c);
    }
    free(sse);
    assert_string_equal(joined, choice_text(http, 0, false));
    json_decref(http);
    json_decref(inproc);

    /* refused by the engine's request parser: the HTTP API's status and error object */
    const char *bad = "{\"prompt\":\"x\",\"ponder\":{\"strategy\":\"vote\"}}";
    http_reply r = http_post("/v1/completions", bad);
    assert_int_equal(ponder_server_request_start(srv, PONDER_SERVER_COMPLETIONS, bad, strlen(bad), &q, &err_json, &ra),
                     r.status);
    assert_null(q);
    assert_int_equal(r.status, 400);
    assert_non_null(err_json);
    assert_string_equal(err_json, r.body);
    free(err_json);
    free(r.body);

    /* a model this server does not serve: 404 model_not_found both ways (over HTTP the
     * router's own answer, which names no served model) */
    const char *other = "{\"prompt\":\"x\",\"model\":\"nope\"}";
    r = http_post("/v1/completions", other);
    assert_int_equal(ponder_server_request_start(srv, PONDER_SERVER_COMPLETIONS, other, strlen(other), &q, &err_json, &ra),
                     r.status);
    assert_null(q);
    assert_int_equal(r.status, 404);
    json_t *a = json_loads(err_json, 0, NULL), *b = json_loads(r.body, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "error"), "code")), "model_not_found");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "code")), "model_not_found");
    json_decref(a);
    json_decref(b);
    free(err_json);
    free(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_equals_n_choices),
        cmocka_unit_test(test_no_cue), cmocka_unit_test(test_bon_prefix_chat),
        cmocka_unit_test(test_asc_accounting),      cmocka_unit_test(test_stream_one_chunk),
        cmocka_unit_test(test_strategy_errors), cmocka_unit_test(test_no_cue),
        cmocka_unit_test(test_draft_same_answers), cmocka_unit_test(test_in_process_same_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
