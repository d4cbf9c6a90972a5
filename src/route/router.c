/*
 * router.c — `ponder serve --config`: the HTTP front over chains of backends.
 *
 * A request names a model or a route; its chain is every backend of every model of the
 * route, in order. The chain is walked until one backend answers; after a pass where all
 * failed, up to num_retries more passes follow, each after an exponential back-off with
 * ±50% jitter (or, when backends said 429, until their Retry-After if that is sooner than
 * retry_after_max_s). Each backend has a circuit breaker: K consecutive failures open it
 * (the backend is skipped), after cooldown_s one request probes it (half-open) and its
 * outcome closes or reopens it.
 *
 * Streams: the client's response starts with the first token, so a backend that fails
 * before answering anything is invisible except in the ponder object. When a stream dies
 * after some text (n = 1, no logprobs), the next backend is asked to continue that text —
 * chat: the partial answer as a final assistant message with continue_final_message
 * (ponder serve and vLLM honour it), completions: prompt + partial text — with max_tokens
 * reduced by the tokens already sent; its chunks are re-stamped with the stream's id, its
 * role chunk dropped, so the client reads one stream. A worker thread runs the chain and
 * appends SSE bytes to the request's buffer; the MHD reader drains it (the buffer holds
 * only what the client has not read yet).
 */
#include "route/cascade_internal.h"
#include "route/route_internal.h"
#include "http/http.h"

#include "ponder/server.h"

#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RT_SLEEP_SLICE_MS 20
#define RT_DUMP (JSON_COMPACT | JSON_REAL_PRECISION(9)) /* 14.8 ms, not 14.800000000000001 */

typedef enum rt_breaker { BR_CLOSED = 0, BR_OPEN, BR_HALF_OPEN } rt_breaker;
static const char *const breaker_names[] = { "closed", "open", "half_open" };

typedef struct rt_be {
    ponder_backend *b;            /* NULL: it failed to start (load_error says why) */
    char load_error[PONDER_ERROR_MSG_BYTES + 64];
    const ponder_route_backend_cfg *cfg;
    const ponder_route_model_cfg *model;
    /* under r->mu */
    rt_breaker br;
    int32_t consecutive;
    double opened_ms;
    bool probe_busy;
    uint64_t opens;
    double not_before_ms;         /* a 429's Retry-After */
    uint64_t attempts, successes;
    uint64_t failures[PONDER_BACKEND_FAILURE_COUNT]; /* skips (circuit_open, load) included */
} rt_be;

struct ponder_router {
    ponder_route_config *cfg;
    ponder_router_params p;
    char host[256];
    char *api_key;
    char fingerprint[40];
    rt_be *be;
    int32_t n_be;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* a worker ended */
    int32_t n_workers;
    int stopping;                 /* atomic */
    uint64_t id_state;
    uint64_t rng;
    uint64_t req_ok, req_failed, req_client_error, req_cancelled, continuations, fallbacks;
    http_front *front;            /* NULL until started */
    int port;
    rt_cascade_stats *cascade;    /* the cascade routes' counters (cascade.c) */
    http_metrics metrics;          /* HTTP status, latency, TTFT, tokens: as ponder serve's */
};

static void rlog(const ponder_router *r, ponder_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void rlog(const ponder_router *r, ponder_log_level level, const char *fmt, ...)
{
    if (!r->p.log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->p.log(level, msg, r->p.log_user);
}

ponder_router_params ponder_router_params_default(void)
{
    ponder_router_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.max_body_bytes = PONDER_SERVER_MAX_BODY_BYTES_DEFAULT;
    p.local.n_parallel = 4;
    p.local.n_threads = 1;
    return p;
}

/* ---- the request ---- */

typedef struct rt_req {
    ponder_router *r;
    int refs;                     /* under mu: handler/conn, worker */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *route_name;
    const ponder_route_cfg *route;
    ponder_route_cfg scratch;
    json_t *body;                 /* the client's request */
    ponder_backend_endpoint ep;
    bool stream, include_usage, can_continue;
    bool collect;                 /* a non-streaming client answered from an upstream stream */
    int64_t max_tokens;           /* -1: not given */
    char id[48];
    int64_t created;
    json_t *attempts;
    const rt_be *answered;
    int32_t continued;            /* backends that continued a partial answer */
    json_t *usage, *upstream;     /* the answering backend's usage and ponder object */
    /* stream state (worker; under mu where the reader looks) */
    http_buf partial;              /* choice 0's text so far */
    int64_t n_content;            /* content chunks sent (≈ tokens; ponder serve sends one per token) */
    int64_t n_content_at_attempt;
    json_t *roles_sent;           /* choice index (as text) → true once its role chunk went out */
    bool started, finished, worker_done;
    char *held;                   /* the last finish chunk, sent at the end with the ponder object */
    http_buf out;
    size_t out_pos;
    int cancel;                   /* atomic: the client went away */
    /* the answer when no stream started */
    int status;
    char *final_body;
    double retry_after_s;
} rt_req;

static void req_unref(rt_req *q)
{
    pthread_mutex_lock(&q->mu);
    int left = --q->refs;
    pthread_mutex_unlock(&q->mu);
    if (left > 0)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->route_name);
    json_decref(q->body);
    json_decref(q->attempts);
    json_decref(q->roles_sent);
    json_decref(q->usage);
    json_decref(q->upstream);
    free(q->partial.data);
    free(q->held);
    free(q->out.data);
    free(q->final_body);
    free(q);
}

static bool req_cancelled(void *user)
{
    rt_req *q = user;
    return __atomic_load_n(&q->cancel, __ATOMIC_RELAXED) || __atomic_load_n(&q->r->stopping, __ATOMIC_RELAXED);
}

static void make_id(ponder_router *r, ponder_backend_endpoint ep, char *out, size_t cap)
{
    uint64_t z = __atomic_add_fetch(&r->id_state, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    uint64_t z2 = z * 0xD6E8FEB86659FD93ull;
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char tail[25];
    for (int i = 0; i < 24; i++)
        tail[i] = alnum[((i < 12 ? z : z2) >> ((i % 12) * 5)) % 62];
    tail[24] = '\0';
    snprintf(out, cap, "%s-%s", ep == PONDER_BACKEND_CHAT ? "chatcmpl" : "cmpl", tail);
}

/* ---- breaker, metrics ---- */

/* May this request use be? Takes the half-open probe when it is free. */
static ponder_backend_failure admit(ponder_router *r, rt_be *be, double now, char *why, size_t cap)
{
    if (!be->b) {
        snprintf(why, cap, "%s", be->load_error);
        return PONDER_BACKEND_LOAD;
    }
    const ponder_route_settings *s = &r->cfg->settings;
    ponder_backend_failure f = PONDER_BACKEND_OK;
    pthread_mutex_lock(&r->mu);
    /* Retry-After first: a skipped request must not take the half-open probe */
    if (now < be->not_before_ms) {
        snprintf(why, cap, "rate limited: Retry-After ends in %.1f s", (be->not_before_ms - now) / 1000);
        f = PONDER_BACKEND_HTTP_429;
    }
    if (f == PONDER_BACKEND_OK && s->breaker_failures > 0) {
        if (be->br == BR_OPEN && now - be->opened_ms >= s->breaker_cooldown_s * 1000) {
            be->br = BR_HALF_OPEN;
            be->probe_busy = false;
        }
        if (be->br == BR_OPEN) {
            snprintf(why, cap, "circuit open for %.1f s more after %d consecutive failures",
                     (s->breaker_cooldown_s * 1000 - (now - be->opened_ms)) / 1000, (int)be->consecutive);
            f = PONDER_BACKEND_CIRCUIT_OPEN;
        } else if (be->br == BR_HALF_OPEN) {
            if (be->probe_busy) {
                snprintf(why, cap, "circuit half-open: another request is probing it");
                f = PONDER_BACKEND_CIRCUIT_OPEN;
            } else {
                be->probe_busy = true;
            }
        }
    }
    if (f != PONDER_BACKEND_OK)
        be->failures[f]++;
    pthread_mutex_unlock(&r->mu);
    return f;
}

/* An admitted request that sent nothing gives the half-open probe back. */
static void release_probe(ponder_router *r, rt_be *be)
{
    pthread_mutex_lock(&r->mu);
    be->probe_busy = false;
    pthread_mutex_unlock(&r->mu);
}

static void report(ponder_router *r, rt_be *be, const ponder_backend_result *res, double now)
{
    const ponder_route_settings *s = &r->cfg->settings;
    ponder_backend_failure f = res->failure;
    pthread_mutex_lock(&r->mu);
    be->attempts++;
    if (f == PONDER_BACKEND_OK)
        be->successes++;
    else
        be->failures[f]++;
    if (f == PONDER_BACKEND_HTTP_429 && res->retry_after_s > 0)
        be->not_before_ms = now + res->retry_after_s * 1000;
    /* a refused request or a client that left says nothing about the backend's health */
    bool neutral = f == PONDER_BACKEND_HTTP_CLIENT || f == PONDER_BACKEND_CANCELLED;
    if (f == PONDER_BACKEND_OK) {
        if (be->br != BR_CLOSED)
            rlog(r, PONDER_LOG_INFO, "backend %s: circuit closed", be->cfg->name);
        be->br = BR_CLOSED;
        be->consecutive = 0;
        be->probe_busy = false;
    } else if (!neutral) {
        be->consecutive++;
        if (s->breaker_failures > 0 &&
            (be->br == BR_HALF_OPEN || (be->br == BR_CLOSED && be->consecutive >= s->breaker_failures))) {
            be->br = BR_OPEN;
            be->opened_ms = now;
            be->opens++;
            rlog(r, PONDER_LOG_WARN, "backend %s: circuit open for %g s after %d consecutive failures",
                 be->cfg->name, s->breaker_cooldown_s, (int)be->consecutive);
        }
        be->probe_busy = false;
    } else {
        be->probe_busy = false;
    }
    pthread_mutex_unlock(&r->mu);
}

static char *render_metrics(ponder_router *r)
{
    http_buf b = { 0 };
    double now = http_now_ms();
    pthread_mutex_lock(&r->mu);
    http_buf_printf(&b, "# HELP ponder_router_requests_total Requests by outcome.\n"
                       "# TYPE ponder_router_requests_total counter\n");
    const char *outs[] = { "ok", "failed", "client_error", "cancelled" };
    uint64_t vals[] = { r->req_ok, r->req_failed, r->req_client_error, r->req_cancelled };
    for (int i = 0; i < 4; i++)
        http_buf_printf(&b, "ponder_router_requests_total{outcome=\"%s\"} %llu\n", outs[i], (unsigned long long)vals[i]);
    http_buf_printf(&b, "# HELP ponder_router_fallbacks_total Requests answered by a backend after another failed.\n"
                       "# TYPE ponder_router_fallbacks_total counter\nponder_router_fallbacks_total %llu\n",
                   (unsigned long long)r->fallbacks);
    http_buf_printf(&b, "# HELP ponder_router_continuations_total Streams continued on another backend mid-answer.\n"
                       "# TYPE ponder_router_continuations_total counter\nponder_router_continuations_total %llu\n",
                   (unsigned long long)r->continuations);
    http_buf_printf(&b, "# HELP ponder_backend_attempts_total Requests sent to a backend.\n"
                       "# TYPE ponder_backend_attempts_total counter\n");
    for (int32_t i = 0; i < r->n_be; i++)
        http_buf_printf(&b, "ponder_backend_attempts_total{backend=\"%s\"} %llu\n", r->be[i].cfg->name,
                       (unsigned long long)r->be[i].attempts);
    http_buf_printf(&b, "# HELP ponder_backend_successes_total Complete answers from a backend.\n"
                       "# TYPE ponder_backend_successes_total counter\n");
    for (int32_t i = 0; i < r->n_be; i++)
        http_buf_printf(&b, "ponder_backend_successes_total{backend=\"%s\"} %llu\n", r->be[i].cfg->name,
                       (unsigned long long)r->be[i].successes);
    http_buf_printf(&b, "# HELP ponder_backend_failures_total Failed or skipped attempts by reason.\n"
                       "# TYPE ponder_backend_failures_total counter\n");
    for (int32_t i = 0; i < r->n_be; i++)
        for (int f = 1; f < PONDER_BACKEND_FAILURE_COUNT; f++)
            if (r->be[i].failures[f])
                http_buf_printf(&b, "ponder_backend_failures_total{backend=\"%s\",reason=\"%s\"} %llu\n",
                               r->be[i].cfg->name, ponder_backend_failure_name((ponder_backend_failure)f),
                               (unsigned long long)r->be[i].failures[f]);
    http_buf_printf(&b, "# HELP ponder_backend_circuit_state 0 closed, 1 open, 2 half-open (cooldown over).\n"
                       "# TYPE ponder_backend_circuit_state gauge\n");
    for (int32_t i = 0; i < r->n_be; i++) {
        rt_breaker st = r->be[i].br;
        if (st == BR_OPEN && now - r->be[i].opened_ms >= r->cfg->settings.breaker_cooldown_s * 1000)
            st = BR_HALF_OPEN;
        http_buf_printf(&b, "ponder_backend_circuit_state{backend=\"%s\",state=\"%s\"} %d\n", r->be[i].cfg->name,
                       breaker_names[st], (int)st);
    }
    http_buf_printf(&b, "# HELP ponder_backend_circuit_opens_total Times a backend's circuit opened.\n"
                       "# TYPE ponder_backend_circuit_opens_total counter\n");
    for (int32_t i = 0; i < r->n_be; i++)
        http_buf_printf(&b, "ponder_backend_circuit_opens_total{backend=\"%s\"} %llu\n", r->be[i].cfg->name,
                       (unsigned long long)r->be[i].opens);
    http_buf_printf(&b, "# HELP ponder_backend_up 1 if the backend started (a local model loaded).\n"
                       "# TYPE ponder_backend_up gauge\n");
    for (int32_t i = 0; i < r->n_be; i++)
        http_buf_printf(&b, "ponder_backend_up{backend=\"%s\"} %d\n", r->be[i].cfg->name, r->be[i].b ? 1 : 0);
    rt_cascade_metrics(r->cascade, &b);
    pthread_mutex_unlock(&r->mu);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* ponder serve's metrics (its load gauges: requests in flight here, no slots of its own —
 * local backends' engines are separate servers), then the router's. */
static char *metrics_text(ponder_router *r)
{
    http_metrics_set_load(&r->metrics, 0, r->front ? http_front_inflight(r->front) : 0, 0);
    char *a = http_metrics_render(&r->metrics), *b = render_metrics(r);
    char *out = NULL;
    if (a && b && (out = malloc(strlen(a) + strlen(b) + 1))) {
        strcpy(out, a);
        strcat(out, b);
    }
    free(a);
    free(b);
    return out;
}

/* ---- the ponder object and chunks ---- */

static json_t *ponder_object(rt_req *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "route", json_string(q->route_name));
    json_object_set_new(o, "backend", q->answered ? json_string(q->answered->cfg->name) : json_null());
    json_object_set_new(o, "model", q->answered ? json_string(q->answered->model->name) : json_null());
    json_object_set(o, "attempts", q->attempts);
    json_object_set_new(o, "continued", json_integer(q->continued));
    if (q->answered && json_is_object(q->usage)) {
        double in = (double)json_integer_value(json_object_get(q->usage, "prompt_tokens"));
        double outt = (double)json_integer_value(json_object_get(q->usage, "completion_tokens"));
        json_object_set_new(o, "cost_usd", json_real(in * q->answered->model->price_input_per_1m / 1e6 +
                                                     outt * q->answered->model->price_output_per_1m / 1e6));
    }
    if (q->upstream)
        json_object_set(o, "upstream", q->upstream);
    return o;
}

/* After a continuation the answering backend counted the partial text as prompt: move it
 * back to completion tokens, so usage reads as one answer. */
static void fix_usage(rt_req *q)
{
    if (!json_is_object(q->usage) || q->n_content_at_attempt == 0)
        return;
    int64_t p = json_integer_value(json_object_get(q->usage, "prompt_tokens"));
    int64_t c = json_integer_value(json_object_get(q->usage, "completion_tokens"));
    int64_t k = q->n_content_at_attempt;
    p = p > k ? p - k : 0;
    c += k;
    json_object_set_new(q->usage, "prompt_tokens", json_integer(p));
    json_object_set_new(q->usage, "completion_tokens", json_integer(c));
    json_object_set_new(q->usage, "total_tokens", json_integer(p + c));
}

static void stamp(rt_req *q, json_t *chunk)
{
    json_object_set_new(chunk, "id", json_string(q->id));
    json_object_set_new(chunk, "model", json_string(q->route_name));
    json_object_set_new(chunk, "created", json_integer(q->created));
}

/* Appends "data: JSON\n\n" to the client's buffer (q->mu held). */
static void push_json(rt_req *q, json_t *chunk)
{
    char *s = json_dumps(chunk, RT_DUMP);
    if (!s)
        return;
    http_buf_printf(&q->out, "data: %s\n\n", s);
    free(s);
}

static void push_text(rt_req *q, const char *s)
{
    http_buf_append(&q->out, s, strlen(s));
}

/* One chunk from the backend in the current attempt (worker thread). */
static bool on_chunk(const char *data, size_t len, void *user)
{
    rt_req *q = user;
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j)
        return true;
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) {
        json_decref(q->usage);
        q->usage = json_incref(usage);
    }
    json_object_del(j, "usage");
    json_t *pond = json_object_get(j, "ponder");
    if (pond) {
        json_decref(q->upstream);
        q->upstream = json_incref(pond);
        json_object_del(j, "ponder");
    }
    json_t *choices = json_object_get(j, "choices");
    bool token = false, finish = false, any = false;
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        json_t *d = json_object_get(c, "delta");
        char idx[24];
        snprintf(idx, sizeof idx, "%lld", (long long)json_integer_value(json_object_get(c, "index")));
        if (json_is_object(d) && json_object_get(d, "role") && json_object_get(q->roles_sent, idx))
            json_object_del(d, "role"); /* this choice already has its role chunk */
        json_t *txt = q->ep == PONDER_BACKEND_CHAT ? json_object_get(d, "content") : json_object_get(c, "text");
        bool has_text = json_is_string(txt) && json_string_length(txt) > 0;
        if (has_text || json_object_get(d, "tool_calls") || json_object_get(d, "role"))
            any = true;
        if (has_text) {
            token = true;
            if (q->can_continue && json_integer_value(json_object_get(c, "index")) == 0) {
                /* kept only for a continuation: other streams are never buffered */
                http_buf_append(&q->partial, json_string_value(txt), json_string_length(txt));
                q->n_content++;
            }
        }
        json_t *fr = json_object_get(c, "finish_reason");
        if (fr && !json_is_null(fr))
            finish = any = true;
        json_t *lp = json_object_get(c, "logprobs");
        if (lp && !json_is_null(lp))
            any = true;
    }
    if (!any) {
        json_decref(j); /* an empty delta (a role chunk after the first, a usage chunk) */
        return true;
    }
    stamp(q, j);
    pthread_mutex_lock(&q->mu);
    json_array_foreach(choices, i, c) {
        json_t *d = json_object_get(c, "delta");
        char idx[24];
        snprintf(idx, sizeof idx, "%lld", (long long)json_integer_value(json_object_get(c, "index")));
        if (json_is_object(d) && json_object_get(d, "role"))
            json_object_set_new(q->roles_sent, idx, json_true());
    }
    if (finish) {
        /* the last finish chunk carries the ponder object, known only at the end */
        if (q->held) {
            http_buf_printf(&q->out, "data: %s\n\n", q->held);
            free(q->held);
        }
        q->held = json_dumps(j, RT_DUMP);
        q->finished = true;
    } else {
        push_json(q, j);
    }
    if ((token || finish) && !q->started) {
        q->started = true;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    json_decref(j);
    return true;
}

/* The body a backend gets: its model name, usage asked for, and the answer so far when
 * it continues one. *nothing_left: max_tokens is already spent. */
static char *attempt_body(rt_req *q, const rt_be *be, bool *nothing_left)
{
    *nothing_left = false;
    json_t *b = json_deep_copy(q->body);
    if (!b)
        return NULL;
    if (be->cfg->kind == PONDER_BACKEND_LOCAL)
        json_object_del(b, "model"); /* the in-process server serves only its file */
    else
        json_object_set_new(b, "model", json_string(be->cfg->model ? be->cfg->model : be->model->name));
    if (q->stream || q->collect) {
        json_t *so = json_object();
        json_object_set_new(so, "include_usage", json_true());
        json_object_set_new(b, "stream_options", so);
        json_object_set_new(b, "stream", json_true());
    }
    if (q->can_continue && (q->partial.len > 0 || q->n_content > 0)) {
        if (q->ep == PONDER_BACKEND_CHAT) {
            json_t *msgs = json_object_get(b, "messages");
            json_t *m = json_object();
            json_object_set_new(m, "role", json_string("assistant"));
            json_object_set_new(m, "content", json_stringn(q->partial.data ? q->partial.data : "", q->partial.len));
            json_array_append_new(msgs, m);
            json_object_set_new(b, "continue_final_message", json_true());
            json_object_set_new(b, "add_generation_prompt", json_false());
        } else {
            json_t *p = json_object_get(b, "prompt");
            http_buf np = { 0 };
            http_buf_append(&np, json_string_value(p), json_string_length(p));
            http_buf_append(&np, q->partial.data ? q->partial.data : "", q->partial.len);
            json_object_set_new(b, "prompt", json_stringn(np.data ? np.data : "", np.len));
            free(np.data);
        }
        if (q->max_tokens >= 0) {
            int64_t left = q->max_tokens - q->n_content;
            if (left <= 0)
                *nothing_left = true;
            const char *keys[] = { "max_tokens", "max_completion_tokens" };
            for (int k = 0; k < 2; k++)
                if (json_is_integer(json_object_get(b, keys[k])))
                    json_object_set_new(b, keys[k], json_integer(left > 0 ? left : 1));
        }
    }
    char *s = json_dumps(b, RT_DUMP);
    json_decref(b);
    return s;
}

static void record(rt_req *q, const rt_be *be, ponder_backend_failure f, const ponder_backend_result *res,
                   const char *why)
{
    json_t *a = json_object();
    json_object_set_new(a, "backend", json_string(be->cfg->name));
    json_object_set_new(a, "model", json_string(be->model->name));
    json_object_set_new(a, "outcome", json_string(ponder_backend_failure_name(f)));
    if (res) {
        json_object_set_new(a, "http_status", res->http_status ? json_integer(res->http_status) : json_null());
        json_object_set_new(a, "ms", json_real(round(res->total_ms * 10) / 10));
        json_object_set_new(a, "events", json_integer(res->n_events));
    }
    if (f != PONDER_BACKEND_OK && why && why[0])
        json_object_set_new(a, "message", http_json_string_lossy(why, strlen(why)));
    json_array_append_new(q->attempts, a);
}

static void sleep_ms(rt_req *q, double ms)
{
    double end = http_now_ms() + ms;
    while (!req_cancelled(q)) {
        double left = end - http_now_ms();
        if (left <= 0)
            break;
        double slice = left < RT_SLEEP_SLICE_MS ? left : RT_SLEEP_SLICE_MS;
        struct timespec ts = { 0, (long)(slice * 1e6) };
        nanosleep(&ts, NULL);
    }
}

static double jitter(ponder_router *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t x = r->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->rng = x;
    pthread_mutex_unlock(&r->mu);
    return 0.5 + (double)(x >> 11) / (double)(1ull << 53); /* [0.5, 1.5) */
}

typedef enum rt_outcome { RT_ANSWERED, RT_FAILED, RT_REFUSED, RT_CANCELLED } rt_outcome;

/* Forgets a collected partial answer (nothing of it reached the client). */
static void restart(rt_req *q)
{
    pthread_mutex_lock(&q->mu);
    q->out.len = q->out_pos = 0;
    free(q->held);
    q->held = NULL;
    json_object_clear(q->roles_sent);
    q->started = q->finished = false;
    q->partial.len = 0;
    q->n_content = 0;
    pthread_mutex_unlock(&q->mu);
}

/* Walks the chain; on RT_ANSWERED the stream is complete in q->out (or q->final_body). */
static rt_outcome run_chain(rt_req *q)
{
    ponder_router *r = q->r;
    const ponder_route_settings *s = &r->cfg->settings;
    bool first_backend = true;
    for (int32_t pass = 0; pass <= s->num_retries; pass++) {
        if (pass > 0) {
            double wait = s->retry_backoff_ms * pow(2, pass - 1);
            if (wait > s->retry_backoff_max_ms)
                wait = s->retry_backoff_max_ms;
            wait *= jitter(r);
            /* a backend that asked to wait (429) and will be free sooner than the cap:
             * wait for it rather than fail */
            double soonest = -1, now = http_now_ms();
            pthread_mutex_lock(&r->mu);
            for (int32_t i = 0; i < r->n_be; i++)
                if (r->be[i].not_before_ms > now && (soonest < 0 || r->be[i].not_before_ms < soonest))
                    soonest = r->be[i].not_before_ms;
            pthread_mutex_unlock(&r->mu);
            if (soonest > 0 && soonest - now > wait && soonest - now <= s->retry_after_max_s * 1000)
                wait = soonest - now + 1;
            sleep_ms(q, wait);
        }
        for (int32_t ci = 0; ci < q->route->n_chain; ci++) {
            const ponder_route_model_cfg *m = ponder_route_config_model(r->cfg, q->route->chain[ci]);
            for (int32_t bi = 0; m && bi < m->n_backends; bi++) {
                if (req_cancelled(q))
                    return RT_CANCELLED;
                rt_be *be = NULL;
                for (int32_t k = 0; k < r->n_be; k++)
                    if (r->be[k].cfg == &m->backends[bi])
                        be = &r->be[k];
                char why[PONDER_ERROR_MSG_BYTES + 64];
                ponder_backend_failure f = admit(r, be, http_now_ms(), why, sizeof why);
                if (f != PONDER_BACKEND_OK) {
                    record(q, be, f == PONDER_BACKEND_HTTP_429 ? PONDER_BACKEND_HTTP_429 : f, NULL, why);
                    first_backend = false;
                    continue;
                }
                bool nothing_left = false;
                char *body = attempt_body(q, be, &nothing_left);
                if (!body || nothing_left)
                    release_probe(r, be);
                if (!body)
                    return RT_FAILED;
                bool continuing = q->can_continue && q->n_content > 0;
                q->n_content_at_attempt = q->n_content;
                if (nothing_left) {
                    /* max_tokens was spent by the text already sent: the answer ends here */
                    free(body);
                    pthread_mutex_lock(&q->mu);
                    bool chat = q->ep == PONDER_BACKEND_CHAT;
                    json_t *ch = json_pack("{s:i,s:s}", "index", 0, "finish_reason", "length");
                    json_object_set_new(ch, chat ? "delta" : "text", chat ? json_object() : json_string(""));
                    json_t *c = json_pack("{s:s,s:[o]}", "object", chat ? "chat.completion.chunk" : "text_completion",
                                          "choices", ch);
                    stamp(q, c);
                    q->held = json_dumps(c, RT_DUMP);
                    json_decref(c);
                    q->finished = true;
                    pthread_mutex_unlock(&q->mu);
                    return RT_ANSWERED;
                }
                ponder_backend_call call = { .endpoint = q->ep,
                                             .body = body,
                                             .body_len = strlen(body),
                                             .stream = q->stream || q->collect,
                                             .on_event = on_chunk,
                                             .user = q,
                                             .cancelled = req_cancelled };
                ponder_backend_result res;
                f = ponder_backend_request(be->b, &call, &res);
                free(body);
                /* a one-choice stream that failed after its finish chunk (no [DONE], a
                 * silence) is complete: continuing it would add a second finish */
                if (f != PONDER_BACKEND_OK && f != PONDER_BACKEND_CANCELLED && (q->stream || q->collect) &&
                    q->finished && q->can_continue)
                    f = res.failure = PONDER_BACKEND_OK;
                report(r, be, &res, http_now_ms());
                record(q, be, f, &res, res.message);
                if (f != PONDER_BACKEND_OK)
                    rlog(r, PONDER_LOG_WARN, "route %s: backend %s failed (%s): %s", q->route_name, be->cfg->name,
                         ponder_backend_failure_name(f), res.message);
                if (f == PONDER_BACKEND_OK) {
                    q->answered = be;
                    if (continuing) {
                        q->continued++;
                        pthread_mutex_lock(&r->mu);
                        r->continuations++;
                        pthread_mutex_unlock(&r->mu);
                    }
                    if (!first_backend) {
                        pthread_mutex_lock(&r->mu);
                        r->fallbacks++;
                        pthread_mutex_unlock(&r->mu);
                    }
                    if (!q->stream && !q->collect) {
                        q->final_body = res.body;
                        res.body = NULL;
                    }
                    ponder_backend_result_clear(&res);
                    return RT_ANSWERED;
                }
                first_backend = false;
                if (f == PONDER_BACKEND_CANCELLED) {
                    ponder_backend_result_clear(&res);
                    return RT_CANCELLED;
                }
                if (f == PONDER_BACKEND_HTTP_CLIENT && !q->started) {
                    /* the request itself is refused: every backend would say the same */
                    q->status = res.http_status;
                    q->final_body = res.body;
                    res.body = NULL;
                    ponder_backend_result_clear(&res);
                    return RT_REFUSED;
                }
                if (f == PONDER_BACKEND_HTTP_429 && res.retry_after_s > 0 &&
                    (q->retry_after_s <= 0 || res.retry_after_s < q->retry_after_s))
                    q->retry_after_s = res.retry_after_s;
                ponder_backend_result_clear(&res);
                if (q->started && !q->can_continue) {
                    if (!q->collect)
                        return RT_FAILED; /* n > 1 or logprobs: a partial stream cannot be continued */
                    restart(q);       /* the client has seen nothing: the next backend starts afresh */
                }
            }
        }
    }
    return RT_FAILED;
}

/* {"error": {...}, "ponder": {...}} for a request no backend answered. */
static char *failure_json(rt_req *q, http_err kind, const char *code)
{
    http_buf msg = { 0 };
    http_buf_printf(&msg, "All backends for '%s' failed:", q->route_name);
    size_t i;
    json_t *a;
    json_array_foreach(q->attempts, i, a) {
        json_t *m = json_object_get(a, "message");
        http_buf_printf(&msg, "%s %s: %s%s%s", i ? ";" : "", json_string_value(json_object_get(a, "backend")),
                       json_string_value(json_object_get(a, "outcome")), m ? " — " : "", m ? json_string_value(m) : "");
    }
    http_api_error e;
    http_fail(&e, kind, NULL, code, "%s", msg.data ? msg.data : "All backends failed.");
    free(msg.data);
    char *ej = http_error_json(&e);
    json_t *o = ej ? json_loads(ej, 0, NULL) : NULL;
    free(ej);
    if (!o)
        return NULL;
    json_object_set_new(o, "ponder", ponder_object(q));
    char *s = json_dumps(o, RT_DUMP);
    json_decref(o);
    return s;
}

/* The answer's tokens into /metrics (after finish_*: usage is final). */
static void count_tokens(ponder_router *r, const rt_req *q)
{
    if (q->answered && json_is_object(q->usage))
        http_metrics_add_tokens(&r->metrics, json_integer_value(json_object_get(q->usage, "prompt_tokens")),
                               json_integer_value(json_object_get(q->usage, "completion_tokens")));
}

static void count_outcome(ponder_router *r, rt_outcome o)
{
    pthread_mutex_lock(&r->mu);
    if (o == RT_ANSWERED)
        r->req_ok++;
    else if (o == RT_REFUSED)
        r->req_client_error++;
    else if (o == RT_CANCELLED)
        r->req_cancelled++;
    else
        r->req_failed++;
    pthread_mutex_unlock(&r->mu);
}

/* Non-streaming: the answer re-stamped, with the router's ponder object. */
static void finish_whole(rt_req *q, rt_outcome o)
{
    if (o == RT_ANSWERED) {
        json_t *j = json_loads(q->final_body, 0, NULL);
        free(q->final_body);
        q->final_body = NULL;
        if (j) {
            json_t *pond = json_object_get(j, "ponder");
            if (pond)
                q->upstream = json_incref(pond);
            json_t *u = json_object_get(j, "usage");
            if (json_is_object(u))
                q->usage = json_incref(u);
            stamp(q, j);
            json_object_set_new(j, "ponder", ponder_object(q));
            q->final_body = json_dumps(j, RT_DUMP);
            json_decref(j);
        }
        q->status = 200;
    } else if (o != RT_REFUSED) {
        q->status = 503;
        q->final_body = failure_json(q, HTTP_ERR_UNAVAILABLE, "backends_failed");
    }
}

/* Streaming: the stream's end (q->mu held). */
static void finish_stream(rt_req *q, rt_outcome o)
{
    if (o == RT_ANSWERED) {
        fix_usage(q);
        json_t *pond = ponder_object(q);
        if (q->held) {
            json_t *h = json_loads(q->held, 0, NULL);
            if (h && !q->include_usage)
                json_object_set(h, "ponder", pond);
            if (h)
                push_json(q, h);
            json_decref(h);
        }
        if (q->include_usage) {
            json_t *u = json_object();
            json_object_set_new(u, "object",
                                json_string(q->ep == PONDER_BACKEND_CHAT ? "chat.completion.chunk" : "text_completion"));
            json_object_set_new(u, "choices", json_array());
            json_object_set(u, "usage", q->usage ? q->usage : json_null());
            json_object_set(u, "ponder", pond);
            stamp(q, u);
            push_json(q, u);
            json_decref(u);
        }
        json_decref(pond);
        push_text(q, "data: [DONE]\n\n");
        q->started = true; /* an answer of no tokens still streams */
    } else if (q->started) {
        /* text was sent and cannot be continued: the client learns it in an error event */
        if (q->held) {
            http_buf_printf(&q->out, "data: %s\n\n", q->held);
            free(q->held);
            q->held = NULL;
        }
        char *ej = failure_json(q, HTTP_ERR_UNAVAILABLE, "backends_failed");
        if (ej) {
            http_buf_printf(&q->out, "data: %s\n\n", ej);
            free(ej);
        }
        push_text(q, "data: [DONE]\n\n");
    } else if (o != RT_REFUSED) {
        q->status = 503;
        q->final_body = failure_json(q, HTTP_ERR_UNAVAILABLE, "backends_failed");
    }
}

/* A collected answer: its SSE events (as a stream would have sent them) folded into one
 * completion object. */
typedef struct rt_fold {
    rt_req *q;
    http_buf *text;                /* per choice index */
    char (*finish)[16];
    size_t n;
    json_t *last;                 /* the usage chunk: usage and the ponder object */
    json_t *fingerprint;
} rt_fold;

#define RT_MAX_FOLD_CHOICES 65536

static bool fold_event(const char *data, size_t len, void *user)
{
    rt_fold *f = user;
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j)
        return true; /* [DONE] */
    if (!f->fingerprint && json_is_string(json_object_get(j, "system_fingerprint")))
        f->fingerprint = json_incref(json_object_get(j, "system_fingerprint"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "choices"), i, c) {
        json_int_t idx = json_integer_value(json_object_get(c, "index"));
        if (idx < 0 || idx >= RT_MAX_FOLD_CHOICES)
            continue;
        if ((size_t)idx >= f->n) {
            size_t n = (size_t)idx + 1;
            http_buf *t = realloc(f->text, n * sizeof *t);
            if (!t)
                break;
            f->text = t;
            char(*fin)[16] = realloc(f->finish, n * sizeof *fin);
            if (!fin)
                break;
            f->finish = fin;
            memset(t + f->n, 0, (n - f->n) * sizeof *t);
            memset(fin + f->n, 0, (n - f->n) * sizeof *fin);
            f->n = n;
        }
        json_t *txt = f->q->ep == PONDER_BACKEND_CHAT ? json_object_get(json_object_get(c, "delta"), "content")
                                                      : json_object_get(c, "text");
        if (json_is_string(txt))
            http_buf_append(&f->text[idx], json_string_value(txt), json_string_length(txt));
        json_t *fr = json_object_get(c, "finish_reason");
        if (json_is_string(fr))
            snprintf(f->finish[idx], sizeof f->finish[idx], "%s", json_string_value(fr));
    }
    if (json_object_get(j, "usage")) {
        json_decref(f->last);
        f->last = j;
    } else {
        json_decref(j);
    }
    return true;
}

static void finish_collected(rt_req *q, rt_outcome o)
{
    if (o != RT_ANSWERED) {
        finish_whole(q, o);
        return;
    }
    pthread_mutex_lock(&q->mu);
    finish_stream(q, o);
    pthread_mutex_unlock(&q->mu);
    rt_fold f = { .q = q };
    rt_sse sse;
    rt_sse_init(&sse);
    rt_sse_feed(&sse, q->out.data ? q->out.data : "", q->out.len, fold_event, &f);
    rt_sse_free(&sse);
    bool chat = q->ep == PONDER_BACKEND_CHAT;
    json_t *choices = json_array();
    for (size_t i = 0; i < f.n; i++) {
        json_t *t = json_stringn(f.text[i].data ? f.text[i].data : "", f.text[i].len);
        json_t *ch = json_pack("{s:i}", "index", (json_int_t)i);
        if (chat)
            json_object_set_new(ch, "message", json_pack("{s:s,s:o}", "role", "assistant", "content", t));
        else
            json_object_set_new(ch, "text", t);
        json_object_set_new(ch, "logprobs", json_null());
        json_object_set_new(ch, "finish_reason", f.finish[i][0] ? json_string(f.finish[i]) : json_null());
        json_array_append_new(choices, ch);
        free(f.text[i].data);
    }
    free(f.text);
    free(f.finish);
    json_t *resp = json_pack("{s:s,s:s,s:I,s:s}", "id", q->id, "object", chat ? "chat.completion" : "text_completion",
                             "created", (json_int_t)q->created, "model", q->route_name);
    if (f.fingerprint)
        json_object_set_new(resp, "system_fingerprint", f.fingerprint);
    json_object_set_new(resp, "choices", choices);
    json_object_set(resp, "usage", f.last ? json_object_get(f.last, "usage") : json_null());
    json_object_set(resp, "ponder", f.last ? json_object_get(f.last, "ponder") : json_null());
    json_decref(f.last);
    free(q->final_body);
    q->final_body = json_dumps(resp, RT_DUMP);
    json_decref(resp);
    q->status = 200;
}

static void *worker_main(void *arg)
{
    rt_req *q = arg;
    ponder_router *r = q->r;
    rt_outcome o = run_chain(q);
    count_outcome(r, o);
    pthread_mutex_lock(&q->mu);
    finish_stream(q, o);
    count_tokens(r, q);
    q->worker_done = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    req_unref(q);
    pthread_mutex_lock(&r->mu);
    if (--r->n_workers == 0)
        pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* A request for route `name` (NULL route when unknown); takes body. NULL: out of memory. */
static rt_req *req_create(ponder_router *r, const char *name, ponder_backend_endpoint ep, json_t *body)
{
    rt_req *q = calloc(1, sizeof *q);
    if (!q) {
        json_decref(body);
        return NULL;
    }
    q->r = r;
    q->refs = 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->body = body;
    q->ep = ep;
    q->route = ponder_route_config_find(r->cfg, name, &q->scratch);
    q->route_name = strdup(name);
    q->attempts = json_array();
    q->roles_sent = json_object();
    q->created = (int64_t)time(NULL);
    q->max_tokens = -1;
    make_id(r, ep, q->id, sizeof q->id);
    if (!q->route_name || !q->attempts || !q->roles_sent) {
        req_unref(q);
        return NULL;
    }
    return q;
}

/* One request for a cascade stage (cascade.c): the chain walk of a non-streaming client. */
int rt_route_call(ponder_router *r, const char *name, ponder_backend_endpoint ep, json_t *body, json_t **out,
                  double *retry_after_s)
{
    *out = NULL;
    rt_req *q = req_create(r, name, ep, json_incref(body));
    if (!q)
        return 500;
    int status = 500;
    if (q->route) {
        finish_whole(q, run_chain(q));
        status = q->status ? q->status : 500;
        *out = q->final_body ? json_loads(q->final_body, 0, NULL) : NULL;
        if (retry_after_s && status == 503 && q->retry_after_s > 0)
            *retry_after_s = q->retry_after_s;
    }
    req_unref(q);
    return status;
}

rt_cascade_stats *rt_router_cascade_stats(ponder_router *r) { return r->cascade; }
const ponder_route_config *rt_router_config(const ponder_router *r) { return r->cfg; }

/* ---- HTTP ---- */

/* The request's end (answered, or the client left): a worker still running stops. */
static void req_done(void *user)
{
    rt_req *q = user;
    __atomic_store_n(&q->cancel, 1, __ATOMIC_RELAXED);
    req_unref(q);
}

/* Moves what the worker appended to q->out into the client's buffer, waiting for it (a
 * keep-alive comment after HTTP_KEEPALIVE_MS of silence). */
static bool stream_fill(void *cls, http_buf *out)
{
    rt_req *q = cls;
    pthread_mutex_lock(&q->mu);
    while (q->out_pos == q->out.len && !q->worker_done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += HTTP_KEEPALIVE_MS / 1000;
        if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT && q->out_pos == q->out.len &&
            !q->worker_done) {
            pthread_mutex_unlock(&q->mu);
            http_buf_append(out, HTTP_SSE_KEEPALIVE, strlen(HTTP_SSE_KEEPALIVE));
            return true;
        }
    }
    bool more = true;
    if (q->out_pos < q->out.len) {
        http_buf_append(out, q->out.data + q->out_pos, q->out.len - q->out_pos);
        q->out_pos = q->out.len = 0; /* only unread bytes are kept */
    } else {
        more = false;
    }
    pthread_mutex_unlock(&q->mu);
    return more;
}

/* The request body as JSON, its model name checked; false: answered with the error. */
static json_t *parse_body(ponder_router *r, http_req *hq, bool *answered)
{
    *answered = true;
    json_error_t jerr;
    size_t len;
    const char *text = http_req_body(hq, &len);
    json_t *body = json_loadb(text, len, 0, &jerr);
    if (!body) {
        *answered = http_respond_fail(hq, HTTP_ERR_BAD_REQUEST, NULL, "invalid_json",
                                      "We could not parse the JSON body of your request: %s (line %d, column %d).",
                                      jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        *answered = http_respond_fail(hq, HTTP_ERR_BAD_REQUEST, NULL, "invalid_json",
                                      "The request body must be a JSON object.");
        return NULL;
    }
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) {
        json_decref(body);
        *answered = http_respond_fail(hq, HTTP_ERR_BAD_REQUEST, "model", "invalid_type",
                                      "Invalid type for 'model': expected a string.");
        return NULL;
    }
    (void)r;
    return body;
}

/* A cascade: each stage is a request of its own through its model's chain. */
static bool answer_cascade(ponder_router *r, http_req *hq, const ponder_route_cfg *route, ponder_backend_endpoint ep,
                           json_t *body)
{
    char *text = NULL;
    bool sse = false;
    double ra = 0;
    int status = rt_cascade_request(r, route, ep, body, &text, &sse, &ra);
    count_outcome(r, status == 200 ? RT_ANSWERED : status >= 400 && status < 500 && status != 429 ? RT_REFUSED : RT_FAILED);
    return http_respond(hq, status, sse ? "text/event-stream" : "application/json", text, status == 503 ? ra : 0);
}

/* What the body asks for that decides how the chain is walked. */
static void read_options(rt_req *q)
{
    json_t *body = q->body;
    q->stream = json_is_true(json_object_get(body, "stream"));
    json_t *so = json_object_get(body, "stream_options");
    q->include_usage = q->stream && json_is_true(json_object_get(so, "include_usage"));
    json_t *n = json_object_get(body, "n");
    json_t *lp = json_object_get(body, "logprobs");
    bool lp_on = lp && !json_is_null(lp) && !json_is_false(lp);
    q->max_tokens = -1;
    const char *keys[] = { "max_tokens", "max_completion_tokens" };
    for (int k = 0; k < 2; k++)
        if (json_is_integer(json_object_get(body, keys[k])))
            q->max_tokens = json_integer_value(json_object_get(body, keys[k]));
    /* a non-streaming request is streamed upstream too (the first-token timeout applies, a
     * cut answer continues) unless the answer has parts a fold would lose */
    json_t *tools = json_object_get(body, "tools");
    q->collect = !q->stream && !lp_on && !(json_is_array(tools) && json_array_size(tools) > 0);
    if (q->collect)
        q->include_usage = true;
    q->can_continue = (q->stream || q->collect) && (!n || json_is_null(n) || json_integer_value(n) == 1) && !lp_on &&
                      (q->ep == PONDER_BACKEND_CHAT ? json_is_array(json_object_get(body, "messages"))
                                                    : json_is_string(json_object_get(body, "prompt")));
}

/* A stream: a worker walks the chain; the response starts with the first token, until
 * then a failure is an HTTP error. */
static bool answer_stream(ponder_router *r, http_req *hq, rt_req *q)
{
    pthread_mutex_lock(&r->mu);
    r->n_workers++;
    pthread_mutex_unlock(&r->mu);
    q->refs = 2; /* this handler (then the request's end) and the worker */
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, worker_main, q);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&r->mu);
        r->n_workers--;
        pthread_mutex_unlock(&r->mu);
        q->refs = 1;
        req_unref(q);
        return http_respond_fail(hq, HTTP_ERR_INTERNAL, NULL, NULL, "cannot start a thread");
    }
    pthread_mutex_lock(&q->mu);
    while (!q->started && !q->worker_done)
        pthread_cond_wait(&q->cv, &q->mu);
    bool started = q->started;
    pthread_mutex_unlock(&q->mu);
    if (!started) {
        int status = q->status ? q->status : 503;
        char *text = q->final_body;
        q->final_body = NULL;
        double ra = q->retry_after_s;
        req_unref(q);
        return http_respond(hq, status, "application/json", text, status == 503 ? ra : 0);
    }
    http_metrics_observe_ttft(&r->metrics, (http_now_ms() - http_req_start_ms(hq)) / 1000);
    http_req_on_done(hq, req_done, q);
    return http_respond_stream(hq, stream_fill, q);
}

static bool handle_generate(ponder_router *r, http_req *hq, ponder_backend_endpoint ep)
{
    http_req_set_generation(hq);
    if (http_req_body_too_large(hq))
        return http_respond_fail(hq, HTTP_ERR_TOO_LARGE, NULL, "request_too_large",
                                 "The request body is larger than the server's limit of %zu bytes.",
                                 http_req_max_body(hq));
    if (__atomic_load_n(&r->stopping, __ATOMIC_RELAXED))
        return http_respond_fail(hq, HTTP_ERR_UNAVAILABLE, NULL, NULL, "The server is shutting down.");
    bool answered;
    json_t *body = parse_body(r, hq, &answered);
    if (!body)
        return answered;
    /* no model: the first of model_list, as `ponder serve -m` accepts a request without one */
    json_t *model = json_object_get(body, "model");
    const char *name = json_is_string(model) ? json_string_value(model) : r->cfg->models[0].name;
    rt_req *q = req_create(r, name, ep, body);
    if (!q)
        return http_respond_fail(hq, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    if (!q->route) {
        /* name lives in q->body: answer before letting q go */
        bool ret = http_respond_fail(hq, HTTP_ERR_NOT_FOUND, "model", "model_not_found",
                                     "The model '%s' does not exist or you do not have access to it.", name);
        req_unref(q);
        return ret;
    }
    if (q->route->n_stages > 0) {
        const ponder_route_cfg *route = q->route;
        json_t *b = json_incref(q->body);
        req_unref(q);
        bool ret = answer_cascade(r, hq, route, ep, b);
        json_decref(b);
        return ret;
    }
    read_options(q);
    if (q->stream)
        return answer_stream(r, hq, q);
    rt_outcome o = run_chain(q);
    count_outcome(r, o);
    if (q->collect)
        finish_collected(q, o);
    else
        finish_whole(q, o);
    count_tokens(r, q);
    int status = q->status ? q->status : 500;
    char *text = q->final_body;
    q->final_body = NULL;
    double ra = status == 503 ? q->retry_after_s : 0;
    req_unref(q);
    return http_respond(hq, status, "application/json", text, ra);
}

static json_t *model_entry(const char *id)
{
    return json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model", "created", 0, "owned_by", "ponder");
}

static bool handle_models(ponder_router *r, http_req *hq, const char *id)
{
    ponder_route_cfg scratch;
    if (id) {
        if (!ponder_route_config_find(r->cfg, id, &scratch))
            return http_respond_fail(hq, HTTP_ERR_NOT_FOUND, "model", "model_not_found",
                                     "The model '%s' does not exist or you do not have access to it.", id);
        json_t *m = model_entry(id);
        char *s = json_dumps(m, RT_DUMP);
        json_decref(m);
        return http_respond_json(hq, 200, s);
    }
    json_t *data = json_array();
    for (int32_t i = 0; i < r->cfg->n_models; i++)
        json_array_append_new(data, model_entry(r->cfg->models[i].name));
    for (int32_t i = 0; i < r->cfg->n_routes; i++)
        if (!ponder_route_config_model(r->cfg, r->cfg->routes[i].name))
            json_array_append_new(data, model_entry(r->cfg->routes[i].name));
    json_t *o = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *s = json_dumps(o, RT_DUMP);
    json_decref(o);
    return http_respond_json(hq, 200, s);
}

static bool on_request(http_req *hq, void *cls)
{
    ponder_router *r = cls;
    const char *url = http_req_url(hq), *method = http_req_method(hq);
    if (!strcmp(method, "OPTIONS"))
        return http_respond_options(hq);
    bool chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions");
    bool compl = !strcmp(url, "/v1/completions") || !strcmp(url, "/completions");
    bool models = !strcmp(url, "/v1/models") || !strcmp(url, "/models");
    bool model = !strncmp(url, "/v1/models/", 11);
    http_api_error e;
    if (chat || compl) {
        if (!http_req_is_post(hq))
            return http_respond_method_not_allowed(hq, "POST");
        if (!http_req_authorized(hq, &e))
            return http_respond_error(hq, &e);
        return handle_generate(r, hq, chat ? PONDER_BACKEND_CHAT : PONDER_BACKEND_COMPLETIONS);
    }
    if (models || model || !strcmp(url, "/metrics") || !strcmp(url, "/health")) {
        if (!http_req_is_get(hq))
            return http_respond_method_not_allowed(hq, "GET");
        if (!strcmp(url, "/health"))
            return http_respond_static(hq, 200, "application/json", "{\"status\":\"ok\"}", 15);
        if (!http_req_authorized(hq, &e))
            return http_respond_error(hq, &e);
        if (!strcmp(url, "/metrics"))
            return http_respond(hq, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(r), 0);
        return handle_models(r, hq, model ? url + 11 : NULL);
    }
    return http_respond_fail(hq, HTTP_ERR_NOT_FOUND, NULL, "unknown_url", "Invalid URL (%s %s)", method, url);
}

/* ---- lifecycle ---- */

ponder_status ponder_router_create(ponder_route_config *cfg, const ponder_router_params *p, ponder_router **out,
                                   ponder_error *err)
{
    *out = NULL;
    ponder_router *r = calloc(1, sizeof *r);
    if (!r) {
        ponder_route_config_free(cfg);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    r->cfg = cfg;
    r->p = p ? *p : ponder_router_params_default();
    snprintf(r->host, sizeof r->host, "%s", r->p.host ? r->p.host : "127.0.0.1");
    r->p.host = r->host;
    if (!r->p.max_body_bytes)
        r->p.max_body_bytes = PONDER_SERVER_MAX_BODY_BYTES_DEFAULT;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    http_metrics_init(&r->metrics);
    if (r->p.api_key && !(r->api_key = strdup(r->p.api_key))) {
        ponder_router_free(r);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    r->p.api_key = NULL;
    uint64_t seed = r->p.seed ? r->p.seed : (uint64_t)http_now_ms() * 0x9E3779B97F4A7C15ull;
    r->rng = seed ? seed : 1;
    r->id_state = seed;
    snprintf(r->fingerprint, sizeof r->fingerprint, "fp_ponder_router");
    if (!(r->cascade = rt_cascade_stats_create(cfg))) {
        ponder_router_free(r);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    int32_t n = 0;
    for (int32_t i = 0; i < cfg->n_models; i++)
        n += cfg->models[i].n_backends;
    r->be = calloc((size_t)n, sizeof *r->be);
    if (!r->be) {
        ponder_router_free(r);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i < cfg->n_models; i++)
        for (int32_t j = 0; j < cfg->models[i].n_backends; j++) {
            rt_be *be = &r->be[r->n_be++];
            be->cfg = &cfg->models[i].backends[j];
            be->model = &cfg->models[i];
            ponder_error e;
            ponder_status st = ponder_backend_create(be->cfg, &r->p.local, &be->b, &e);
            if (st == PONDER_OK)
                continue;
            if (be->cfg->kind == PONDER_BACKEND_REMOTE) {
                /* a remote backend that cannot be set up (its key variable unset) is a
                 * configuration error: refuse to start */
                ponder_error_set(err, st, "%s:%d: %s", cfg->source, be->cfg->line, e.msg);
                ponder_router_free(r);
                return st;
            }
            /* a local model that fails to load is a backend failure: its chain falls back */
            snprintf(be->load_error, sizeof be->load_error, "the model failed to load: %s", e.msg);
            rlog(r, PONDER_LOG_WARN, "backend %s: %s", be->cfg->name, be->load_error);
        }
    *out = r;
    return PONDER_OK;
}

ponder_status ponder_router_start(ponder_router *r, ponder_error *err)
{
    const http_front_params fp = {.host = r->host, .port = r->p.port, .max_body_bytes = r->p.max_body_bytes,
                                  .api_key = r->api_key, .handle = on_request, .cls = r, .metrics = &r->metrics,
                                  .log = r->p.log, .log_user = r->p.log_user};
    ponder_status st = http_front_start(&fp, &r->front, err);
    if (st == PONDER_OK)
        r->port = http_front_port(r->front);
    return st;
}

int ponder_router_port(const ponder_router *r) { return r->port; }

void ponder_router_stop(ponder_router *r)
{
    if (!r)
        return;
    __atomic_store_n(&r->stopping, 1, __ATOMIC_RELAXED);
    /* workers see the flag within a poll interval, end their streams and leave */
    pthread_mutex_lock(&r->mu);
    while (r->n_workers > 0)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    http_front_free(r->front);
    r->front = NULL;
}

void ponder_router_free(ponder_router *r)
{
    if (!r)
        return;
    ponder_router_stop(r);
    for (int32_t i = 0; i < r->n_be; i++)
        ponder_backend_free(r->be[i].b);
    free(r->be);
    rt_cascade_stats_free(r->cascade);
    free(r->api_key);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    http_metrics_destroy(&r->metrics);
    ponder_route_config_free(r->cfg);
    free(r);
}
