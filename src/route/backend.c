/*
 * backend.c — one OpenAI-compatible request to a backend: what both kinds share. A remote
 * backend (backend_remote.c) is reached through libcurl; a local one (backend_local.c) is
 * a ponder_server in this process, asked through its in-process API — the same bytes
 * `ponder serve` would send, without a loopback connection. Both feed their bytes to the
 * functions here, so the failure rules (what is a timeout, a broken stream, a refusal),
 * the deadlines and the event handling are one.
 *
 * Stream bytes go through the incremental SSE parser straight to the caller: nothing of an
 * answer is buffered beyond the event being parsed.
 */
#include "route/backend_internal.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const failure_names[PONDER_BACKEND_FAILURE_COUNT] = {
    "ok", "connect", "timeout_connect", "timeout_first_token", "timeout_idle", "http_5xx", "http_429",
    "http_auth", "http_client_error", "broken_stream", "protocol", "load", "circuit_open", "cancelled",
};

const char *ponder_backend_failure_name(ponder_backend_failure f)
{
    return (unsigned)f < PONDER_BACKEND_FAILURE_COUNT ? failure_names[f] : "unknown";
}

void ponder_backend_result_clear(ponder_backend_result *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool copy_cfg(ponder_route_backend_cfg *d, const ponder_route_backend_cfg *s)
{
    *d = *s;
    d->name = dup_or_null(s->name);
    d->path = dup_or_null(s->path);
    d->draft = dup_or_null(s->draft);
    d->api_base = dup_or_null(s->api_base);
    d->model = dup_or_null(s->model);
    d->api_key_env = dup_or_null(s->api_key_env);
    return (!s->name || d->name) && (!s->path || d->path) && (!s->draft || d->draft) &&
           (!s->api_base || d->api_base) && (!s->model || d->model) && (!s->api_key_env || d->api_key_env);
}

ponder_status ponder_backend_create(const ponder_route_backend_cfg *cfg, const ponder_backend_local_params *lp,
                                    ponder_backend **out, ponder_error *err)
{
    *out = NULL;
    ponder_backend *b = calloc(1, sizeof *b);
    if (!b || !copy_cfg(&b->cfg, cfg)) {
        ponder_backend_free(b);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    ponder_status st = cfg->kind == PONDER_BACKEND_REMOTE ? rt_remote_create(b, err) : rt_local_create(b, lp, err);
    if (st != PONDER_OK) {
        ponder_backend_free(b);
        return st;
    }
    *out = b;
    return PONDER_OK;
}

ponder_backend_failure ponder_backend_request(ponder_backend *b, const ponder_backend_call *call,
                                              ponder_backend_result *res)
{
    return b->cfg.kind == PONDER_BACKEND_REMOTE ? rt_remote_request(b, call, res) : rt_local_request(b, call, res);
}

const ponder_route_backend_cfg *ponder_backend_config(const ponder_backend *b) { return &b->cfg; }

bool ponder_backend_load(ponder_backend *b, int64_t *queued, int64_t *active_requests, int64_t *active_sequences)
{
    if (!b || !b->local)
        return false;
    ponder_server_load(b->local, queued, active_requests, active_sequences);
    return true;
}

bool ponder_backend_cancelled_tokens(ponder_backend *b, int64_t *prompt, int64_t *completion)
{
    if (!b || !b->local)
        return false;
    ponder_server_cancelled_tokens(b->local, prompt, completion);
    return true;
}

int ponder_backend_admit(ponder_backend *b, char **error_json, double *retry_after_s)
{
    *error_json = NULL;
    if (retry_after_s)
        *retry_after_s = -1;
    return b && b->local ? ponder_server_admit(b->local, error_json, retry_after_s) : 200;
}

void ponder_backend_admit_release(ponder_backend *b)
{
    if (b && b->local)
        ponder_server_admit_release(b->local);
}

void ponder_backend_free(ponder_backend *b)
{
    if (!b)
        return;
    ponder_server_free(b->local);
    rt_remote_release(b);
    free(b->cfg.name);
    free(b->cfg.path);
    free(b->cfg.draft);
    free(b->cfg.api_base);
    free(b->cfg.model);
    free(b->cfg.api_key_env);
    free(b->auth);
    for (int i = 0; i < PONDER_BACKEND_ENDPOINT_COUNT; i++)
        free(b->url[i]);
    free(b);
}

/* ---- one transfer ---- */

void rt_xfer_init(rt_xfer *x, const ponder_backend *b, const ponder_backend_call *call, ponder_backend_result *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    memset(x, 0, sizeof *x);
    x->call = call;
    x->res = res;
    x->cfg = &b->cfg;
    rt_sse_init(&x->sse);
    x->t0 = x->t_last = http_now_ms();
}

static bool nonempty_string(json_t *v) { return json_is_string(v) && json_string_length(v) > 0; }

/* One SSE payload of a 200 stream. */
static bool on_sse(const char *data, size_t len, void *user)
{
    rt_xfer *x = user;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        x->res->done = true;
        return true;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        snprintf(x->res->message, sizeof x->res->message, "a stream event is not a JSON object");
        x->error_event = true;
        x->res->failure = PONDER_BACKEND_PROTOCOL;
        return false;
    }
    json_t *e = json_object_get(j, "error");
    if (e) {
        /* a server that fails mid-stream says so in an event (ponder serve, vLLM) */
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
        snprintf(x->res->message, sizeof x->res->message, "error event in the stream: %s",
                 json_is_string(m) ? json_string_value(m) : "(no message)");
        x->error_event = true;
        json_decref(j);
        return false;
    }
    /* the first token: text, or a finish (an empty answer), or usage; a role-only chunk
     * arrives before any decoding and is not one */
    bool token = json_is_object(json_object_get(j, "usage"));
    json_t *choices = json_object_get(j, "choices");
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        json_t *d = json_object_get(c, "delta");
        if (nonempty_string(json_object_get(d, "content")) || nonempty_string(json_object_get(c, "text")) ||
            json_object_get(d, "tool_calls"))
            token = true;
        json_t *fr = json_object_get(c, "finish_reason");
        if (fr && !json_is_null(fr)) {
            token = true;
            x->saw_finish = true;
        }
    }
    json_decref(j);
    if (token && x->t_first == 0) {
        x->t_first = http_now_ms();
        x->res->ttft_ms = x->t_first - x->t0;
    }
    x->res->n_events++;
    x->t_last = http_now_ms(); /* an event is progress; a keep-alive comment is not */
    if (x->call->on_event && !x->call->on_event(data, len, x->call->user)) {
        x->aborted = true;
        return false;
    }
    return true;
}

/* The silence deadline (rt_xfer_check) counts from the last event (on_sse), not the last
 * bytes: a backend stuck mid-answer that sends only ": keep-alive" comments is silent. */
bool rt_xfer_stream_bytes(rt_xfer *x, const char *p, size_t n)
{
    if (rt_sse_feed(&x->sse, p, n, on_sse, x))
        return true;
    if (x->sse.oom) {
        snprintf(x->res->message, sizeof x->res->message, "a stream event is too large");
        x->error_event = true;
        x->res->failure = PONDER_BACKEND_PROTOCOL;
    }
    return false;
}

bool rt_xfer_body_bytes(rt_xfer *x, const char *p, size_t n)
{
    x->t_last = http_now_ms();
    if (x->body.len + n > RT_MAX_BODY_BYTES) {
        x->too_big = true;
        return false;
    }
    return http_buf_append(&x->body, p, n);
}

ponder_backend_failure rt_xfer_check(rt_xfer *x, double now)
{
    const ponder_backend_call *call = x->call;
    const ponder_route_backend_cfg *cfg = x->cfg;
    ponder_backend_result *res = x->res;
    if (call->cancelled && call->cancelled(call->user)) {
        snprintf(res->message, sizeof res->message, "the client went away");
        return PONDER_BACKEND_CANCELLED;
    }
    if (call->stream) {
        if (x->t_first == 0 && now - x->t0 > cfg->first_token_timeout_s * 1000) {
            snprintf(res->message, sizeof res->message, "no first token within %g s", cfg->first_token_timeout_s);
            return PONDER_BACKEND_TIMEOUT_FIRST;
        }
        if (x->t_first != 0 && now - x->t_last > cfg->timeout_s * 1000) {
            snprintf(res->message, sizeof res->message, "the stream fell silent for %g s after %lld events",
                     cfg->timeout_s, (long long)res->n_events);
            return PONDER_BACKEND_TIMEOUT_IDLE;
        }
    } else if (now - x->t0 > cfg->timeout_s * 1000) {
        snprintf(res->message, sizeof res->message, "no answer within %g s", cfg->timeout_s);
        return PONDER_BACKEND_TIMEOUT_FIRST;
    }
    return PONDER_BACKEND_OK;
}

/* "HTTP 500: message" from an OpenAI-shaped error body, else its first bytes. */
static void describe_status(rt_xfer *x, long code)
{
    const char *msg = NULL;
    json_t *j = x->body.data ? json_loadb(x->body.data, x->body.len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
    if (json_is_string(m))
        msg = json_string_value(m);
    if (msg)
        snprintf(x->res->message, sizeof x->res->message, "HTTP %ld: %s", code, msg);
    else
        snprintf(x->res->message, sizeof x->res->message, "HTTP %ld: %.200s", code,
                 x->body.data ? x->body.data : "(empty body)");
    json_decref(j);
}

static ponder_backend_failure status_failure(rt_xfer *x, long code)
{
    ponder_backend_result *r = x->res;
    if (code == 429)
        return PONDER_BACKEND_HTTP_429;
    if (code >= 500)
        return PONDER_BACKEND_HTTP_5XX;
    if (code == 401 || code == 403 || code == 404)
        return PONDER_BACKEND_HTTP_AUTH;
    if (code >= 400)
        return PONDER_BACKEND_HTTP_CLIENT;
    snprintf(r->message, sizeof r->message, "unexpected HTTP status %ld", code);
    return PONDER_BACKEND_PROTOCOL;
}

ponder_backend_failure rt_xfer_finish(rt_xfer *x, const rt_xfer_end *e)
{
    ponder_backend_result *res = x->res;
    const char *tmsg = e->transport_msg ? e->transport_msg : "transfer failed";
    long code = e->http_status;
    res->http_status = e->http_status;
    res->total_ms = http_now_ms() - x->t0;
    ponder_backend_failure f;
    if (e->ours != PONDER_BACKEND_OK) {
        f = e->ours;
    } else if (x->aborted) {
        f = PONDER_BACKEND_CANCELLED;
        snprintf(res->message, sizeof res->message, "stopped by the caller");
    } else if (x->error_event) {
        f = res->failure == PONDER_BACKEND_PROTOCOL ? PONDER_BACKEND_PROTOCOL : PONDER_BACKEND_BROKEN;
    } else if (code == 0) {
        f = e->no_answer;
        snprintf(res->message, sizeof res->message, "%s", tmsg);
    } else if (code != 200) {
        describe_status(x, code);
        f = status_failure(x, code);
    } else if (x->call->stream) {
        if (res->done || (x->saw_finish && e->clean)) {
            f = PONDER_BACKEND_OK;
        } else {
            f = PONDER_BACKEND_BROKEN;
            snprintf(res->message, sizeof res->message, "the stream ended after %lld events without [DONE]: %s",
                     (long long)res->n_events, e->clean ? "connection closed" : tmsg);
        }
    } else if (!e->clean) {
        f = x->too_big ? PONDER_BACKEND_PROTOCOL : PONDER_BACKEND_BROKEN;
        snprintf(res->message, sizeof res->message, "%s", x->too_big ? "the answer is larger than 32 MiB" : tmsg);
    } else {
        json_t *j = x->body.data ? json_loadb(x->body.data, x->body.len, 0, NULL) : NULL;
        bool embed = x->call->endpoint == PONDER_BACKEND_EMBEDDINGS;
        f = json_is_array(json_object_get(j, embed ? "data" : "choices")) ? PONDER_BACKEND_OK : PONDER_BACKEND_PROTOCOL;
        if (f != PONDER_BACKEND_OK)
            snprintf(res->message, sizeof res->message, "the answer is not %s",
                     embed ? "an embeddings list" : "a completion object");
        json_decref(j);
        res->ttft_ms = e->ttft_ms > 0 && e->ttft_ms < res->total_ms ? e->ttft_ms : res->total_ms;
    }
    if (f != PONDER_BACKEND_OK || !x->call->stream) {
        /* the body (answer or error) goes to the caller */
        res->body = x->body.data;
        res->body_len = x->body.len;
        x->body.data = NULL;
    }
    res->failure = f;
    rt_sse_free(&x->sse);
    free(x->body.data);
    x->body.data = NULL;
    return f;
}
