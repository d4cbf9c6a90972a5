/*
 * server_request_fuzz.c — libFuzzer harness for the server's request validation: the
 * input is a request body, parsed as a chat request and as a completions request. The
 * promises checked: a rejection carries a status from the error table, a message and
 * nothing owned; an accepted request is within the documented ranges, and its derived
 * texts (template variables, ChatML) are built without error. Also compiled into the
 * corpus replay test (tests/server).
 */
#include "server/server_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)      \
    do {                 \
        if (!(cond))     \
            abort();     \
    } while (0)

static void check_one(srv_endpoint kind, const char *body, size_t size)
{
    srv_request r;
    http_api_error e;
    memset(&e, 0, sizeof e);
    if (!srv_request_parse(kind, body, size, &r, &e)) {
        int http = http_err_http_status(e.kind);
        CHECK(http == 400 || http == 500);
        CHECK(e.message[0] != '\0');
        CHECK(!r.model && !r.messages && !r.prompts && r.n_prompts == 0 && r.n_stop == 0);
        char *js = http_error_json(&e);
        CHECK(js != NULL);
        json_t *o = json_loads(js, 0, NULL);
        CHECK(o && json_is_object(json_object_get(o, "error")));
        json_decref(o);
        free(js);
        return;
    }
    CHECK(r.n >= 1 && r.n <= SRV_MAX_N);
    CHECK(r.n_stop >= 0 && r.n_stop <= SRV_MAX_STOP);
    CHECK(r.max_tokens == -1 || r.max_tokens >= 1);
    CHECK(r.sampling.temp >= 0.0f && r.sampling.temp <= 2.0f);
    CHECK(r.sampling.top_p >= 0.0f && r.sampling.top_p <= 1.0f);
    CHECK(r.top_logprobs >= 0 && r.top_logprobs <= PONDER_GEN_MAX_TOP_LOGPROBS);
    CHECK(isfinite(r.presence_penalty) && isfinite(r.frequency_penalty));
    CHECK(!r.include_usage || r.stream);
    if (kind == SRV_EP_CHAT) {
        CHECK(json_is_array(r.messages) && json_array_size(r.messages) >= 1);
        char *vars = srv_chat_vars_json(&r, r.tools, "<s>", "</s>");
        CHECK(vars != NULL);
        json_t *v = json_loads(vars, 0, NULL);
        CHECK(v != NULL);
        json_decref(v);
        free(vars);
        char *ml = srv_render_chatml(r.messages);
        CHECK(ml != NULL);
        free(ml);
    } else {
        CHECK(r.n_prompts >= 1 && r.n_prompts <= SRV_MAX_PROMPTS && r.prompts);
        for (int32_t i = 0; i < r.n_prompts; i++)
            CHECK((r.prompts[i].text != NULL) != (r.prompts[i].ids != NULL));
    }
    srv_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(SRV_EP_CHAT, (const char *)data, size);
    check_one(SRV_EP_COMPLETION, (const char *)data, size);
    return 0;
}
