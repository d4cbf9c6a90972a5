/*
 * test_server_api.c — the server's socket-free parts: request parsing and validation (every
 * rejection names its param as OpenAI does), ChatML, response and stream-chunk shapes
 * (against the stories260K tokenizer); and the HTTP layer's (src/http) error table and
 * Prometheus rendering, which the server's answers go through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "server/server_internal.h"
#include "testutil.h"

static bool parse(srv_endpoint kind, const char *body, srv_request *r, http_api_error *e)
{
    return srv_request_parse(kind, body, strlen(body), r, e);
}

/* Asserts that body is rejected with the given status, param (NULL: none) and code. */
static void expect_reject(srv_endpoint kind, const char *body, int http, const char *param, const char *code)
{
    srv_request r;
    http_api_error e;
    memset(&e, 0, sizeof e);
    if (parse(kind, body, &r, &e))
        fail_msg("accepted: %s", body);
    assert_int_equal(http_err_http_status(e.kind), http);
    assert_string_equal(e.param, param ? param : "");
    if (code)
        assert_string_equal(e.code, code);
    assert_true(strlen(e.message) > 10);
    /* the rejected request owns nothing */
    assert_null(r.model);
    assert_null(r.messages);
    assert_int_equal(r.n_stop, 0);
}

static void test_error_table(void **state)
{
    (void)state;
    static const struct {
        http_err k;
        int http;
        const char *type;
    } rows[] = {
        { HTTP_ERR_BAD_REQUEST, 400, "invalid_request_error" }, { HTTP_ERR_UNAUTHORIZED, 401, "invalid_request_error" },
        { HTTP_ERR_NOT_FOUND, 404, "invalid_request_error" },   { HTTP_ERR_METHOD, 405, "invalid_request_error" },
        { HTTP_ERR_TOO_LARGE, 413, "invalid_request_error" },   { HTTP_ERR_RATE_LIMIT, 429, "requests" },
        { HTTP_ERR_INTERNAL, 500, "server_error" },             { HTTP_ERR_UNAVAILABLE, 503, "server_error" },
    };
    assert_int_equal(sizeof rows / sizeof rows[0], HTTP_ERR_COUNT);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(http_err_http_status(rows[i].k), rows[i].http);
        assert_string_equal(http_err_type(rows[i].k), rows[i].type);
    }
    http_api_error e;
    http_fail(&e, HTTP_ERR_NOT_FOUND, "model", "model_not_found", "The model '%s' does not exist", "x\xff");
    char *js = http_error_json(&e);
    json_t *o = json_loads(js, 0, NULL);
    assert_non_null(o);
    json_t *err = json_object_get(o, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(err, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "model_not_found");
    /* invalid UTF-8 from the request becomes U+FFFD, never broken JSON */
    assert_string_equal(json_string_value(json_object_get(err, "message")), "The model 'x\xEF\xBF\xBD' does not exist");
    json_decref(o);
    free(js);
    http_fail(&e, HTTP_ERR_INTERNAL, NULL, NULL, "boom");
    js = http_error_json(&e);
    o = json_loads(js, 0, NULL);
    assert_true(json_is_null(json_object_get(json_object_get(o, "error"), "param")));
    assert_true(json_is_null(json_object_get(json_object_get(o, "error"), "code")));
    json_decref(o);
    free(js);
}

static void test_parse_chat_full(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hel\"},{\"type\":\"text\",\"text\":\"lo\"}]},"
        "{\"role\":\"assistant\",\"content\":null}],"
        "\"max_tokens\":7,\"max_completion_tokens\":9,\"temperature\":0.5,\"top_p\":0.9,\"top_k\":5,\"min_p\":0.1,"
        "\"seed\":42,\"stop\":[\"a\",\"bb\",\"\"],\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"logprobs\":true,\"top_logprobs\":4,\"presence_penalty\":0.5,\"frequency_penalty\":-1,\"user\":\"u\","
        "\"unknown_field\":{\"x\":[1,2]},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"parallel_tool_calls\":false}";
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_CHAT, body, &r, &e));
    assert_string_equal(r.model, "m");
    assert_int_equal(json_array_size(r.messages), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.messages, 1), "content")), "hello");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.messages, 2), "content")), "");
    assert_int_equal(r.max_tokens, 9);
    assert_float_equal(r.sampling.temp, 0.5f, 1e-6);
    assert_float_equal(r.sampling.top_p, 0.9f, 1e-6);
    assert_int_equal(r.sampling.top_k, 5);
    assert_float_equal(r.sampling.min_p, 0.1f, 1e-6);
    assert_true(r.sampling.seed == 42);
    assert_int_equal(r.n_stop, 2); /* the empty string is dropped */
    assert_string_equal(r.stop[1], "bb");
    assert_int_equal(r.n, 3);
    assert_true(r.stream && r.include_usage && r.logprobs);
    assert_int_equal(r.top_logprobs, 4);
    assert_float_equal(r.presence_penalty, 0.5f, 1e-6);
    assert_float_equal(r.frequency_penalty, -1.0f, 1e-6);
    assert_non_null(r.tools);
    assert_int_equal(r.tool_choice, SRV_TOOL_NAMED);
    assert_string_equal(r.tool_name, "f");
    assert_false(r.parallel_tool_calls);
    assert_true(r.tools_active);
    srv_request_free(&r);
}

static void test_parse_defaults(void **state)
{
    (void)state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_CHAT,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":null,\"stop\":null,"
                      "\"seed\":null}",
                      &r, &e));
    assert_null(r.model);
    assert_int_equal(r.max_tokens, -1);
    assert_float_equal(r.sampling.temp, 1.0f, 0); /* OpenAI's defaults, not llama.cpp's */
    assert_float_equal(r.sampling.top_p, 1.0f, 0);
    assert_int_equal(r.sampling.top_k, 0);
    assert_float_equal(r.sampling.min_p, 0.0f, 0);
    assert_true(r.sampling.seed == PONDER_SEED_RANDOM);
    assert_int_equal(r.n, 1);
    assert_false(r.stream || r.logprobs);
    srv_request_free(&r);

    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":\"Once\",\"stop\":\"\\n\",\"logprobs\":2,\"n\":2.0}", &r, &e));
    assert_int_equal(r.n_prompts, 1);
    assert_string_equal(r.prompts[0].text, "Once");
    assert_int_equal(r.n_stop, 1);
    assert_string_equal(r.stop[0], "\n");
    assert_true(r.logprobs);
    assert_int_equal(r.top_logprobs, 2);
    assert_int_equal(r.n, 2);
    srv_request_free(&r);

    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":[\"only one\"],\"logprobs\":0}", &r, &e));
    assert_int_equal(r.n_prompts, 1);
    assert_string_equal(r.prompts[0].text, "only one");
    assert_true(r.logprobs);
    assert_int_equal(r.top_logprobs, 0);
    srv_request_free(&r);

    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":[1, 400, 30]}", &r, &e));
    assert_int_equal(r.n_prompts, 1);
    assert_null(r.prompts[0].text);
    assert_int_equal(r.prompts[0].n_ids, 3);
    assert_int_equal(r.prompts[0].ids[1], 400);
    srv_request_free(&r);

    /* several prompts: n choices each, prompt-major */
    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":[\"a\",\"bc\",\"\"],\"n\":2}", &r, &e));
    assert_int_equal(r.n_prompts, 3);
    assert_string_equal(r.prompts[1].text, "bc");
    assert_int_equal(r.prompts[2].len, 0);
    assert_int_equal(srv_request_n_choices(&r), 6);
    srv_request_free(&r);
    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":[[1,2],[3]]}", &r, &e));
    assert_int_equal(r.n_prompts, 2);
    assert_int_equal(r.prompts[0].n_ids, 2);
    assert_int_equal(r.prompts[1].ids[0], 3);
    assert_int_equal(srv_request_n_choices(&r), 2);
    srv_request_free(&r);
}

static void test_parse_rejections(void **state)
{
    (void)state;
    const srv_endpoint C = SRV_EP_CHAT, P = SRV_EP_COMPLETION;
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
    expect_reject(C, "{", 400, NULL, "invalid_json");
    expect_reject(C, "", 400, NULL, "invalid_json");
    expect_reject(C, "[1,2]", 400, NULL, "invalid_json");
    expect_reject(C, "{}", 400, "messages", "missing_required_parameter");
    expect_reject(C, "{\"messages\":\"hi\"}", 400, "messages", "invalid_type");
    expect_reject(C, "{\"messages\":[]}", 400, "messages", "empty_array");
    expect_reject(C, "{\"messages\":[1]}", 400, "messages.[0]", "invalid_type");
    expect_reject(C, "{\"messages\":[{\"content\":\"x\"}]}", 400, "messages.[0].role", "missing_required_parameter");
    expect_reject(C, "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 400, "messages.[0].role", "invalid_value");
    expect_reject(C, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages.[0].content", "invalid_type");
    expect_reject(C, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
                  "messages.[0].content", "invalid_value");
    expect_reject(C, "{" MSG ",\"temperature\":\"hot\"}", 400, "temperature", "invalid_type");
    expect_reject(C, "{" MSG ",\"temperature\":2.5}", 400, "temperature", "invalid_value");
    expect_reject(C, "{" MSG ",\"top_p\":-0.1}", 400, "top_p", "invalid_value");
    expect_reject(C, "{" MSG ",\"max_tokens\":0}", 400, "max_tokens", "invalid_value");
    expect_reject(C, "{" MSG ",\"max_tokens\":1.5}", 400, "max_tokens", "invalid_type");
    expect_reject(C, "{" MSG ",\"max_completion_tokens\":\"9\"}", 400, "max_completion_tokens", "invalid_type");
    expect_reject(C, "{" MSG ",\"n\":0}", 400, "n", "invalid_value");
    expect_reject(C, "{" MSG ",\"n\":129}", 400, "n", "invalid_value");
    expect_reject(C, "{" MSG ",\"seed\":\"1\"}", 400, "seed", "invalid_type");
    expect_reject(C, "{" MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", "invalid_value");
    expect_reject(C, "{" MSG ",\"stop\":[\"a\",1]}", 400, "stop", "invalid_type");
    expect_reject(C, "{" MSG ",\"stop\":7}", 400, "stop", "invalid_type");
    expect_reject(C, "{" MSG ",\"stream\":\"yes\"}", 400, "stream", "invalid_type");
    expect_reject(C, "{" MSG ",\"stream_options\":{\"include_usage\":true}}", 400, "stream_options", "invalid_value");
    expect_reject(C, "{" MSG ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}", 400,
                  "stream_options.include_usage", "invalid_type");
    expect_reject(C, "{" MSG ",\"logprobs\":3}", 400, "logprobs", "invalid_type");
    expect_reject(C, "{" MSG ",\"top_logprobs\":3}", 400, "top_logprobs", "invalid_value");
    expect_reject(C, "{" MSG ",\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs", "invalid_value");
    expect_reject(C, "{" MSG ",\"presence_penalty\":3}", 400, "presence_penalty", "invalid_value");
    expect_reject(C, "{" MSG ",\"frequency_penalty\":[]}", 400, "frequency_penalty", "invalid_type");
    expect_reject(C, "{" MSG ",\"model\":5}", 400, "model", "invalid_type");
    expect_reject(C, "{" MSG ",\"user\":5}", 400, "user", "invalid_type");
    expect_reject(P, "{}", 400, "prompt", "missing_required_parameter");
    expect_reject(P, "{\"prompt\":5}", 400, "prompt", "invalid_type");
    expect_reject(P, "{\"prompt\":[]}", 400, "prompt", "empty_array");
    expect_reject(P, "{\"prompt\":[\"a\",[1]]}", 400, "prompt.[1]", "invalid_type");
    expect_reject(P, "{\"prompt\":[[1],\"a\"]}", 400, "prompt.[1]", "invalid_type");
    expect_reject(P, "{\"prompt\":[[1],[]]}", 400, "prompt.[1]", "empty_array");
    expect_reject(P, "{\"prompt\":[[1],[-1]]}", 400, "prompt.[1]", "invalid_type");
    expect_reject(P, "{\"prompt\":[1,-2]}", 400, "prompt", "invalid_type");
    expect_reject(P, "{\"prompt\":\"x\",\"logprobs\":true}", 400, "logprobs", "invalid_type");
    expect_reject(P, "{\"prompt\":\"x\",\"logprobs\":6}", 400, "logprobs", "invalid_value");
    /* a number too big for JSON integers is a parse error, not a crash */
    expect_reject(P, "{\"prompt\":\"x\",\"seed\":123456789012345678901234567890}", 400, NULL, "invalid_json");
#undef MSG
}

/* response_format and "grammar": compiled at parse time; a schema the compiler refuses is
 * a 400 naming the param, its message naming the keyword and where it is. */
static void test_parse_response_format(void **state)
{
    (void)state;
    const srv_endpoint C = SRV_EP_CHAT, P = SRV_EP_COMPLETION;
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
    static const struct {
        srv_endpoint kind;
        const char *body;
        bool grammar;
    } ok[] = {
        { C, "{" MSG ",\"response_format\":{\"type\":\"text\"}}", false },
        { C, "{" MSG ",\"response_format\":null}", false },
        { C, "{" MSG ",\"response_format\":{\"type\":\"json_object\"}}", true },
        { C, "{" MSG ",\"response_format\":{\"type\":\"json_object\",\"schema\":{\"type\":\"array\"}}}", true },
        { C, "{" MSG ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"strict\":true,"
             "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}}}", true },
        { P, "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"enum\":[1,2]}}}}", true },
        { P, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"yes\\\" | \\\"no\\\"\"}", true },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        srv_request r;
        http_api_error e = { 0 };
        if (!parse(ok[i].kind, ok[i].body, &r, &e))
            fail_msg("case %zu refused: %s", i, e.message);
        assert_int_equal(r.grammar != NULL, ok[i].grammar);
        srv_request_free(&r);
    }
    const char *rf = "{" MSG ",\"response_format\":";
    char body[512];
    static const struct {
        const char *rf, *param, *code, *msg;
    } bad[] = {
        { "\"json\"}", "response_format", "invalid_type", NULL },
        { "{}}", "response_format.type", "missing_required_parameter", NULL },
        { "{\"type\":\"xml\"}}", "response_format.type", "invalid_value", "'xml'" },
        { "{\"type\":\"json_schema\"}}", "response_format.json_schema", "missing_required_parameter", NULL },
        { "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}", "response_format.json_schema.schema",
          "missing_required_parameter", NULL },
        { "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{},\"strict\":\"yes\"}}}",
          "response_format.json_schema.strict", "invalid_type", NULL },
        { "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"object\",\"properties\":{\"a\":"
          "{\"type\":\"string\",\"contentEncoding\":\"base64\"}}}}}}",
          "response_format.json_schema.schema", "unsupported_value",
          "unsupported JSON Schema keyword 'contentEncoding' at /properties/a" },
        { "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"objekt\"}}}}",
          "response_format.json_schema.schema", "invalid_value", "unknown type 'objekt'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(body, sizeof body, "%s%s", rf, bad[i].rf);
        expect_reject(C, body, 400, bad[i].param, bad[i].code);
        srv_request r;
        http_api_error e = { 0 };
        assert_false(parse(C, body, &r, &e));
        if (bad[i].msg && !strstr(e.message, bad[i].msg))
            fail_msg("case %zu: message '%s' lacks '%s'", i, e.message, bad[i].msg);
    }
    expect_reject(P, "{\"prompt\":\"x\",\"grammar\":\"root ::= a\"}", 400, "grammar", "invalid_value");
    expect_reject(P, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"a\\\"\",\"response_format\":{\"type\":\"json_object\"}}",
                  400, "grammar", "invalid_value");
#undef MSG
}

static void test_chatml_and_vars(void **state)
{
    (void)state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_CHAT,
                      "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U\"}]}", &r,
                      &e));
    char *s = srv_render_chatml(r.messages);
    assert_string_equal(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    char *vars = srv_chat_vars_json(&r, r.tools, "<s>", "</s>");
    json_t *v = json_loads(vars, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "bos_token")), "<s>");
    assert_string_equal(json_string_value(json_object_get(v, "eos_token")), "</s>");
    assert_true(json_is_true(json_object_get(v, "add_generation_prompt")));
    assert_int_equal(json_array_size(json_object_get(v, "messages")), 2);
    assert_null(json_object_get(v, "tools"));
    json_decref(v);
    free(vars);
    srv_request_free(&r);
}

/* ---- responses, against the stories260K vocabulary ---- */

typedef struct fixture {
    ponder_gguf *g;
    ponder_tokenizer *tok;
} fixture;

static int setup_tok(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ponder_error err;
    if (ponder_gguf_open(tu_shared("models/stories260K/stories260K.gguf"), &f->g, &err) != PONDER_OK ||
        ponder_tokenizer_create(f->g, &f->tok, &err) != PONDER_OK) {
        fprintf(stderr, "stories260K: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown_tok(void **state)
{
    fixture *f = *state;
    ponder_tokenizer_free(f->tok);
    ponder_gguf_free(f->g);
    free(f);
    return 0;
}

static ponder_token token_of(const ponder_tokenizer *tok, const char *text)
{
    ponder_token *ids = NULL;
    size_t n = 0;
    assert_int_equal(ponder_tokenizer_encode(tok, text, strlen(text), false, false, &ids, &n, NULL), PONDER_OK);
    assert_true(n >= 1);
    ponder_token t = ids[n - 1];
    free(ids);
    return t;
}

static json_t *loads(const char *s)
{
    assert_non_null(s);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    if (!o)
        fail_msg("bad JSON (%s): %s", je.text, s);
    return o;
}

static const srv_meta meta = { "chatcmpl-abc", 1700000000, "stories260K", "fp_test" };

/* Reals have the fewest digits that read back exactly: a float logprob as that float's
 * shortest text, a double as the double's (not jansson's 17 digits). */
static void test_shortest_numbers(void **state)
{
    fixture *f = *state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":1}", &r, &e));
    ponder_token once = token_of(f->tok, " Once");
    srv_logprob lp = { .chosen = { once, -2.345679f }, .top = { { once, -2.345679f } }, .n_top = 1 };
    const srv_logprob *lps[1] = { &lp };
    srv_choice ch = { .text = " Once", .text_len = 5, .lp = lps, .n_lp = 1, .finish = PONDER_FINISH_LENGTH };
    srv_stats st = { .prompt_tokens = 2, .completion_tokens = 1, .prompt_tokens_evaluated = 2, .wall_ms = 14.8,
                     .gen_ms = 0.1 };
    char *js = srv_build_response(&r, &meta, f->tok, &ch, &st);
    assert_non_null(strstr(js, "\"token_logprobs\":[-2.345679]"));
    assert_non_null(strstr(js, "\"wall_ms\":14.8,"));
    assert_null(strstr(js, "2.34567904"));
    json_t *o = loads(js);
    json_t *l = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "logprobs");
    assert_true((float)json_real_value(json_array_get(json_object_get(l, "token_logprobs"), 0)) == -2.345679f);
    json_decref(o);
    free(js);
    srv_request_free(&r);
}

static void test_chat_response(void **state)
{
    fixture *f = *state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_CHAT,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2,\"logprobs\":true,\"top_logprobs\":1}",
                      &r, &e));
    ponder_token once = token_of(f->tok, " Once");
    srv_logprob lp = { .chosen = { once, -0.25f }, .top = { { once, -0.25f } }, .n_top = 1 };
    const srv_logprob *lps[1] = { &lp };
    srv_choice ch[2] = { { .text = "Once", .text_len = 4, .lp = lps, .n_lp = 1, .finish = PONDER_FINISH_STOP },
                         { .text = "", .finish = PONDER_FINISH_LENGTH } };
    srv_stats st = { .prompt_tokens = 10, .completion_tokens = 3, .prompt_tokens_evaluated = 10, .flops = 123456,
                     .wall_ms = 20.0, .gen_ms = 10.0 };
    char *js = srv_build_response(&r, &meta, f->tok, ch, &st);
    json_t *o = loads(js);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(o, "id")), "chatcmpl-abc");
    assert_int_equal(json_integer_value(json_object_get(o, "created")), 1700000000);
    assert_string_equal(json_string_value(json_object_get(o, "system_fingerprint")), "fp_test");
    json_t *c0 = json_array_get(json_object_get(o, "choices"), 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "index")), 0);
    json_t *msg = json_object_get(c0, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Once");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "stop");
    json_t *content = json_object_get(json_object_get(c0, "logprobs"), "content");
    assert_int_equal(json_array_size(content), 1);
    json_t *t0 = json_array_get(content, 0);
    assert_string_equal(json_string_value(json_object_get(t0, "token")), " Once");
    assert_float_equal(json_real_value(json_object_get(t0, "logprob")), -0.25, 1e-9);
    json_t *bytes = json_object_get(t0, "bytes");
    assert_int_equal(json_array_size(bytes), 5);
    assert_int_equal(json_integer_value(json_array_get(bytes, 0)), ' ');
    assert_int_equal(json_integer_value(json_array_get(bytes, 1)), 'O');
    assert_int_equal(json_array_size(json_object_get(t0, "top_logprobs")), 1);
    json_t *c1 = json_array_get(json_object_get(o, "choices"), 1);
    assert_string_equal(json_string_value(json_object_get(c1, "finish_reason")), "length");
    json_t *u = json_object_get(o, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 10);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 3);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 13);
    json_t *p = json_object_get(o, "ponder");
    assert_int_equal(json_integer_value(json_object_get(p, "flops")), 123456);
    assert_float_equal(json_real_value(json_object_get(p, "wall_ms")), 20.0, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(p, "prompt_tokens_evaluated")), 10);
    assert_float_equal(json_real_value(json_object_get(p, "tokens_per_s")), 300.0, 1e-9);
    json_decref(o);
    free(js);
    srv_request_free(&r);
}

static void test_completion_response(void **state)
{
    fixture *f = *state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":2}", &r, &e));
    ponder_token once = token_of(f->tok, " Once"), upon = token_of(f->tok, " upon");
    srv_logprob lp[2] = { { .chosen = { once, -1.0f }, .top = { { once, -1.0f }, { upon, -2.0f } }, .n_top = 2 },
                          { .chosen = { upon, -0.5f }, .n_top = 0 } };
    const srv_logprob *lps[2] = { &lp[0], &lp[1] };
    srv_choice ch = { .text = " Once upon", .text_len = 10, .lp = lps, .n_lp = 2, .finish = PONDER_FINISH_LENGTH };
    srv_stats st = { .prompt_tokens = 2, .completion_tokens = 2 };
    srv_meta m = meta;
    snprintf(m.id, sizeof m.id, "cmpl-xyz");
    char *js = srv_build_response(&r, &m, f->tok, &ch, &st);
    json_t *o = loads(js);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "text_completion");
    json_t *c0 = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "text")), " Once upon");
    json_t *l = json_object_get(c0, "logprobs");
    assert_string_equal(json_string_value(json_array_get(json_object_get(l, "tokens"), 1)), " upon");
    assert_float_equal(json_real_value(json_array_get(json_object_get(l, "token_logprobs"), 0)), -1.0, 1e-9);
    json_t *top0 = json_array_get(json_object_get(l, "top_logprobs"), 0);
    assert_float_equal(json_real_value(json_object_get(top0, " upon")), -2.0, 1e-9);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(l, "text_offset"), 1)), 5);
    json_decref(o);
    free(js);
    srv_request_free(&r);
}

/* "data: {json}\n\n" → the object. */
static json_t *sse_obj(char *chunk)
{
    assert_non_null(chunk);
    size_t n = strlen(chunk);
    assert_true(n > 8);
    assert_memory_equal(chunk, "data: ", 6);
    assert_string_equal(chunk + n - 2, "\n\n");
    chunk[n - 2] = '\0';
    json_t *o = loads(chunk + 6);
    free(chunk);
    return o;
}

static void test_chunks(void **state)
{
    fixture *f = *state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_CHAT,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true}}",
                      &r, &e));
    srv_delta d = { .choice = 1, .role = true };
    json_t *o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "object")), "chat.completion.chunk");
    json_t *c = json_array_get(json_object_get(o, "choices"), 0);
    assert_int_equal(json_integer_value(json_object_get(c, "index")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "delta"), "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "delta"), "content")), "");
    assert_true(json_is_null(json_object_get(c, "finish_reason")));
    assert_true(json_is_null(json_object_get(o, "usage"))); /* include_usage: null on every chunk */
    json_decref(o);

    d = (srv_delta){ .choice = 0, .text = "ab\xff", .text_len = 3 };
    o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, NULL));
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "delta"), "content")), "ab\xEF\xBF\xBD");
    assert_null(json_object_get(json_object_get(c, "delta"), "role"));
    json_decref(o);

    srv_stats st = { .prompt_tokens = 4, .completion_tokens = 2, .gen_ms = 1.0 };
    d = (srv_delta){ .choice = 0, .finish = PONDER_FINISH_LENGTH };
    o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, &st));
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_int_equal(json_object_size(json_object_get(c, "delta")), 0);
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "length");
    assert_non_null(json_object_get(o, "ponder"));
    json_decref(o);

    o = sse_obj(srv_build_usage_chunk(&r, &meta, &st));
    assert_int_equal(json_array_size(json_object_get(o, "choices")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "usage"), "total_tokens")), 6);
    json_decref(o);
    srv_request_free(&r);

    assert_true(parse(SRV_EP_COMPLETION, "{\"prompt\":\"x\",\"stream\":true}", &r, &e));
    d = (srv_delta){ .choice = 0, .text = " hi", .text_len = 3 };
    o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, NULL));
    assert_string_equal(json_string_value(json_object_get(o, "object")), "text_completion");
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "text")), " hi");
    assert_null(json_object_get(o, "usage")); /* no include_usage: no usage key */
    json_decref(o);
    srv_request_free(&r);
}

/* A parsed tool call in the whole response and in stream deltas (OpenAI's shapes). */
static void test_tool_call_response(void **state)
{
    fixture *f = *state;
    srv_request r;
    http_api_error e;
    assert_true(parse(SRV_EP_CHAT,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2,\"tools\":[{\"type\":"
                      "\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}",
                      &r, &e));
    r.tool_format = PONDER_TOOL_FORMAT_HERMES;
    const char *text = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
    ponder_tool_calls tc;
    ponder_error err;
    assert_int_equal(ponder_tool_calls_parse(r.tool_format, text, strlen(text), &tc, &err), PONDER_OK);
    char *ids[1] = { "call_abc" };
    srv_choice ch[2] = { { .text = (char *)text, .text_len = strlen(text), .finish = PONDER_FINISH_STOP, .tc = &tc,
                           .tc_ids = ids, .n_tc = 1 },
                         { .text = "plain", .text_len = 5, .finish = PONDER_FINISH_STOP } };
    srv_stats st = { .prompt_tokens = 1 };
    char *js = srv_build_response(&r, &meta, f->tok, ch, &st);
    json_t *o = loads(js);
    json_t *c0 = json_array_get(json_object_get(o, "choices"), 0), *msg = json_object_get(c0, "message");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "tool_calls");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Checking.");
    json_t *call = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "id")), "call_abc");
    assert_string_equal(json_string_value(json_object_get(call, "type")), "function");
    assert_string_equal(json_string_value(json_object_get(json_object_get(call, "function"), "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(json_object_get(call, "function"), "arguments")),
                        "{\"city\":\"Oslo\"}");
    json_t *c1 = json_array_get(json_object_get(o, "choices"), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c1, "message"), "content")), "plain");
    assert_null(json_object_get(json_object_get(c1, "message"), "tool_calls"));
    assert_string_equal(json_string_value(json_object_get(c1, "finish_reason")), "stop");
    json_decref(o);
    free(js);
    /* only calls: content null */
    free(tc.content);
    tc.content = strdup("");
    tc.content_len = 0;
    js = srv_build_response(&r, &meta, f->tok, ch, &st);
    o = loads(js);
    c0 = json_array_get(json_object_get(o, "choices"), 0);
    assert_true(json_is_null(json_object_get(json_object_get(c0, "message"), "content")));
    json_decref(o);
    free(js);
    ponder_tool_calls_clear(&tc);
    /* stream: the first delta of a call, an arguments fragment, the finish */
    srv_delta d = { .choice = 1, .tool_delta = true, .tool_index = 0, .tool_id = "call_abc", .tool_name = "f" };
    o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, NULL));
    json_t *t = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta"),
                                               "tool_calls"), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(t, "id")), "call_abc");
    assert_string_equal(json_string_value(json_object_get(t, "type")), "function");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "function"), "name")), "f");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "function"), "arguments")), "");
    json_decref(o);
    d = (srv_delta){ .choice = 1, .tool_delta = true, .tool_index = 2, .tool_args = "{\"a\":", .tool_args_len = 5 };
    o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, NULL));
    t = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "delta"),
                                       "tool_calls"), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "index")), 2);
    assert_null(json_object_get(t, "id"));
    assert_null(json_object_get(json_object_get(t, "function"), "name"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "function"), "arguments")), "{\"a\":");
    json_decref(o);
    d = (srv_delta){ .choice = 1, .finish = PONDER_FINISH_STOP, .finish_tool_calls = true };
    o = sse_obj(srv_build_chunk(&r, &meta, f->tok, &d, NULL));
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "finish_reason")),
                        "tool_calls");
    json_decref(o);
    srv_request_free(&r);
}

static void test_metrics(void **state)
{
    (void)state;
    http_metrics m;
    http_metrics_init(&m);
    http_metrics_count_status(&m, 200);
    http_metrics_count_status(&m, 200);
    http_metrics_count_status(&m, 429);
    http_metrics_add_tokens(&m, 10, 5);
    http_metrics_observe_latency(&m, 0.003);
    http_metrics_observe_latency(&m, 0.3);
    http_metrics_observe_latency(&m, 1000.0);
    http_metrics_observe_ttft(&m, 0.02);
    http_metrics_set_load(&m, 3, 2, 5);
    char *t = http_metrics_render(&m);
    assert_non_null(strstr(t, "ponder_requests_total{code=\"200\"} 2\n"));
    assert_non_null(strstr(t, "ponder_requests_total{code=\"429\"} 1\n"));
    assert_non_null(strstr(t, "ponder_prompt_tokens_total 10\n"));
    assert_non_null(strstr(t, "ponder_completion_tokens_total 5\n"));
    /* cumulative buckets */
    assert_non_null(strstr(t, "ponder_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(t, "ponder_request_duration_seconds_bucket{le=\"0.5\"} 2\n"));
    assert_non_null(strstr(t, "ponder_request_duration_seconds_bucket{le=\"120\"} 2\n"));
    assert_non_null(strstr(t, "ponder_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "ponder_request_duration_seconds_count 3\n"));
    assert_non_null(strstr(t, "ponder_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(t, "ponder_queue_depth 3\n"));
    assert_non_null(strstr(t, "ponder_active_requests 2\n"));
    assert_non_null(strstr(t, "ponder_active_slots 5\n"));
    assert_non_null(strstr(t, "# TYPE ponder_request_duration_seconds histogram\n"));
    free(t);
    http_metrics_destroy(&m);
}

static void test_web_assets(void **state)
{
    (void)state;
    const http_asset *a = http_web_find("/");
    assert_non_null(a);
    assert_string_equal(a->path, "/index.html");
    assert_true(a->size > 0 && a->data[a->size] == '\0');
    assert_non_null(strstr((const char *)a->data, "<html") ? (void *)1 : strstr((const char *)a->data, "<!doctype"));
    assert_string_equal(http_mime_type("/index.html"), "text/html; charset=utf-8");
    assert_null(http_web_find("/../etc/passwd"));
    /* the page's vendored libraries are served as scripts */
    const http_asset *m = http_web_find("/vendor/marked.min.js");
    assert_non_null(m);
    assert_string_equal(http_mime_type(m->path), "text/javascript; charset=utf-8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_parse_chat_full),
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_rejections),
        cmocka_unit_test(test_parse_response_format),
        cmocka_unit_test(test_chatml_and_vars),
        cmocka_unit_test_setup_teardown(test_chat_response, setup_tok, teardown_tok),
        cmocka_unit_test_setup_teardown(test_tool_call_response, setup_tok, teardown_tok),
        cmocka_unit_test_setup_teardown(test_shortest_numbers, setup_tok, teardown_tok),
        cmocka_unit_test_setup_teardown(test_completion_response, setup_tok, teardown_tok),
        cmocka_unit_test_setup_teardown(test_chunks, setup_tok, teardown_tok),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_web_assets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
