/*
 * router.c — `ponder serve --config`: a request walks its chain of backends.
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
 * role chunk dropped, so the client reads one stream (stream.c). A worker thread runs a
 * stream's chain; the HTTP handler (handler.c) sends what it appends.
 */
#include "route/router_internal.h"

#include "ponder/server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RT_SLEEP_SLICE_MS 20 /* a back-off sleep looks at its client this often */

ponder_router_params ponder_router_params_default(void)
{
    ponder_router_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.max_body_bytes = PONDER_ROUTER_MAX_BODY_BYTES_DEFAULT;
    p.local.n_parallel = 4;
    p.local.n_threads = 1;
    p.local.type_k = p.local.type_v = PONDER_TYPE_F16;
    p.local.queue_max = -1;
    return p;
}

void rt_req_unref(rt_req *q)
{
    pthread_mutex_lock(&q->mu);
    int left = --q->refs;
    pthread_mutex_unlock(&q->mu);
    if (left > 0)
        return;
    if (q->admitted)
        ponder_backend_admit_release(q->admitted); /* never used: refused, or fell through */
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
    rt_fold_reset(q);
    free(q->out.data);
    free(q->final_body);
    free(q->limited_body);
    free(q->auth_failed);
    free(q);
}

static bool req_cancelled(void *user)
{
    rt_req *q = user;
    if (__atomic_load_n(&q->cancel, __ATOMIC_RELAXED) || __atomic_load_n(&q->r->stopping, __ATOMIC_RELAXED))
        return true;
    /* a whole answer is walked on its connection's thread: the client that left is seen
     * on its socket, and the attempt in flight is cancelled as ponder serve cancels it */
    if (q->waiting_client && http_req_peer_gone(q->waiting_client))
        __atomic_store_n(&q->cancel, 1, __ATOMIC_RELAXED);
    return __atomic_load_n(&q->cancel, __ATOMIC_RELAXED);
}

static void make_id(ponder_router *r, ponder_backend_endpoint ep, char *out, size_t cap)
{
    http_openai_id(&r->id_state, ep == PONDER_BACKEND_CHAT ? "chatcmpl" : "cmpl", out, cap);
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

/* Forgets a collected partial answer (nothing of it reached the client). */
static void restart(rt_req *q)
{
    pthread_mutex_lock(&q->mu);
    q->out.len = q->out_pos = 0;
    free(q->held);
    q->held = NULL;
    rt_fold_reset(q);
    json_object_clear(q->roles_sent);
    q->started = q->finished = false;
    q->partial.len = 0;
    q->n_content = 0;
    pthread_mutex_unlock(&q->mu);
}

/* The wait before pass `pass` (> 0): exponential back-off with jitter, or — when a
 * backend asked to wait (429) and will be free sooner than retry_after_max_s — until then. */
static void backoff(rt_req *q, int32_t pass)
{
    ponder_router *r = q->r;
    const ponder_route_settings *s = &r->cfg->settings;
    double wait = s->retry_backoff_ms * pow(2, pass - 1);
    if (wait > s->retry_backoff_max_ms)
        wait = s->retry_backoff_max_ms;
    wait *= jitter(r);
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

/* One walk of the chain: what happened so far, and what comes next. */
typedef struct rt_walk {
    char *const *chain;           /* the route's chain, or its context_window_fallbacks */
    int32_t n_chain;
    bool first_backend;           /* no backend was tried or skipped yet */
    bool attempted;               /* this pass sent a request to some backend */
    rt_be *earliest;              /* this pass's skipped open circuit whose cool-down ends first */
} rt_walk;

typedef enum rt_step { RT_STEP_NEXT, RT_STEP_DONE, RT_STEP_SWITCH } rt_step;

static void count_success(rt_req *q, bool continuing, bool first_backend)
{
    ponder_router *r = q->r;
    if (continuing)
        q->continued++;
    pthread_mutex_lock(&r->mu);
    r->continuations += continuing;
    r->fallbacks += !first_backend;
    pthread_mutex_unlock(&r->mu);
}

/* After a failed attempt: whether the walk goes on (RT_STEP_NEXT), ends (*out), or moves
 * to the context-window chain. res is cleared. */
static rt_step after_failure(rt_req *q, rt_walk *w, rt_be *be, ponder_backend_result *res, rt_outcome *out)
{
    ponder_router *r = q->r;
    ponder_backend_failure f = res->failure;
    rt_step step = RT_STEP_NEXT;
    if (f == PONDER_BACKEND_CANCELLED) {
        *out = RT_CANCELLED;
        step = RT_STEP_DONE;
    } else if (f == PONDER_BACKEND_HTTP_CLIENT && !q->started && w->chain != q->route->ctx_chain &&
               q->route->n_ctx_chain > 0 && res->body && strstr(res->body, "context_length_exceeded")) {
        rt_log(r, PONDER_LOG_INFO, "route %s: %s refused the request as too long: context window fallbacks",
               q->route_name, be->cfg->name);
        w->chain = q->route->ctx_chain;
        w->n_chain = q->route->n_ctx_chain;
        step = RT_STEP_SWITCH;
    } else if (f == PONDER_BACKEND_HTTP_CLIENT && !q->started) {
        /* the request itself is refused: every backend would say the same */
        q->status = res->http_status;
        q->final_body = res->body;
        res->body = NULL;
        *out = RT_REFUSED;
        step = RT_STEP_DONE;
    } else {
        if (f == PONDER_BACKEND_HTTP_AUTH) {
            if (!q->auth_failed)
                q->auth_failed = calloc((size_t)r->n_be, 1);
            if (q->auth_failed)
                q->auth_failed[be - r->be] = 1;
        }
        if (f == PONDER_BACKEND_HTTP_429 && res->retry_after_s > 0 &&
            (q->retry_after_s <= 0 || res->retry_after_s < q->retry_after_s))
            q->retry_after_s = res->retry_after_s;
        if (f == PONDER_BACKEND_HTTP_429 && res->body) { /* the client's answer if all say 429 */
            free(q->limited_body);
            q->limited_body = res->body;
            res->body = NULL;
        }
        if (q->started && !q->can_continue) {
            if (!q->collect) {
                *out = RT_FAILED; /* n > 1 or logprobs: a partial stream cannot be continued */
                step = RT_STEP_DONE;
            } else {
                restart(q); /* the client has seen nothing: the next backend starts afresh */
            }
        }
    }
    ponder_backend_result_clear(res);
    return step;
}

/* One attempt on an admitted backend (its admission is given back if nothing is sent). */
static rt_step attempt(rt_req *q, rt_walk *w, rt_be *be, rt_outcome *out)
{
    ponder_router *r = q->r;
    w->attempted = true;
    bool nothing_left = false;
    char *body = rt_attempt_body(q, be, &nothing_left);
    if (!body || nothing_left)
        rt_release_probe(r, be);
    if (!body) {
        *out = RT_FAILED;
        return RT_STEP_DONE;
    }
    bool continuing = q->can_continue && q->n_content > 0;
    q->n_content_at_attempt = q->n_content;
    if (nothing_left) {
        /* max_tokens was spent by the text already sent: the answer ends here */
        free(body);
        rt_end_by_length(q);
        *out = RT_ANSWERED;
        return RT_STEP_DONE;
    }
    ponder_backend_call call = { .endpoint = q->ep, .body = body, .body_len = strlen(body),
                                 .stream = q->stream || q->collect, .on_event = rt_on_chunk, .user = q,
                                 .cancelled = req_cancelled, .admitted = q->admitted && q->admitted == be->b };
    if (call.admitted)
        q->admitted = NULL; /* the request takes it over */
    ponder_backend_result res;
    ponder_backend_failure f = ponder_backend_request(be->b, &call, &res);
    free(body);
    /* a one-choice stream that failed after its finish chunk (no [DONE], a silence) is
     * complete: continuing it would add a second finish */
    if (f != PONDER_BACKEND_OK && f != PONDER_BACKEND_CANCELLED && (q->stream || q->collect) && q->finished &&
        q->can_continue)
        f = res.failure = PONDER_BACKEND_OK;
    rt_report(r, be, &res, http_now_ms());
    record(q, be, f, &res, res.message);
    bool first_backend = w->first_backend;
    w->first_backend = false;
    if (f != PONDER_BACKEND_OK) {
        rt_log(r, PONDER_LOG_WARN, "route %s: backend %s failed (%s): %s", q->route_name, be->cfg->name,
               ponder_backend_failure_name(f), res.message);
        return after_failure(q, w, be, &res, out);
    }
    q->answered = be;
    if (q->t_first_ms == 0) /* a whole answer upstream: its first token as the backend tells, else its end */
        q->t_first_ms = http_now_ms() - (res.ttft_ms > 0 ? res.total_ms - res.ttft_ms : 0);
    count_success(q, continuing, first_backend);
    if (!q->stream && !q->collect) {
        q->final_body = res.body;
        res.body = NULL;
    }
    ponder_backend_result_clear(&res);
    *out = RT_ANSWERED;
    return RT_STEP_DONE;
}

/* One backend of the walk: skipped (admission refused, or it refused this request's
 * credentials before), or attempted. */
static rt_step visit(rt_req *q, rt_walk *w, rt_be *be, rt_outcome *out)
{
    ponder_router *r = q->r;
    if (q->auth_failed && q->auth_failed[be - r->be])
        return RT_STEP_NEXT; /* it said 401/403/404 to this request: asking again changes nothing */
    char why[PONDER_ERROR_MSG_BYTES + 64];
    double now = http_now_ms();
    ponder_backend_failure f = rt_admit(r, be, now, why, sizeof why);
    if (f == PONDER_BACKEND_OK)
        return attempt(q, w, be, out);
    record(q, be, f, NULL, why);
    w->first_backend = false;
    double ends = f == PONDER_BACKEND_CIRCUIT_OPEN ? rt_cooldown_end(r, be) : -1;
    if (ends >= 0 && (!w->earliest || ends < rt_cooldown_end(r, w->earliest)))
        w->earliest = be;
    return RT_STEP_NEXT;
}

/* One pass over the chain (each model's backends in its balance order). */
static rt_step run_pass(rt_req *q, rt_walk *w, rt_outcome *out)
{
    ponder_router *r = q->r;
    w->attempted = false;
    w->earliest = NULL;
    for (int32_t ci = 0; ci < w->n_chain; ci++) {
        const ponder_route_model_cfg *m = ponder_route_config_model(r->cfg, w->chain[ci]);
        if (!m)
            continue;
        rt_be *stack[RT_MAX_DEPLOYMENTS];
        rt_be **order = m->n_backends <= RT_MAX_DEPLOYMENTS ? stack : malloc((size_t)m->n_backends * sizeof *order);
        if (order)
            rt_order_backends(r, m, order); /* the model's balance rule (balance.c) */
        rt_step step = RT_STEP_NEXT;
        for (int32_t bi = 0; step == RT_STEP_NEXT && bi < m->n_backends; bi++) {
            if (req_cancelled(q)) {
                *out = RT_CANCELLED;
                step = RT_STEP_DONE;
                break;
            }
            step = visit(q, w, order ? order[bi] : rt_model_backend(r, m, bi), out);
        }
        if (order != stack)
            free(order);
        if (step == RT_STEP_DONE)
            return step;
        if (step == RT_STEP_SWITCH)
            ci = -1; /* the context-window chain from its start */
    }
    /* every backend was skipped and a circuit is open: rather than answer 503 until its
     * cool-down ends, probe the backend whose cool-down ends first (at most one probe at
     * a time and one a second: breaker.c) */
    if (!w->attempted && w->earliest && rt_admit_early_probe(r, w->earliest, http_now_ms())) {
        rt_step step = attempt(q, w, w->earliest, out);
        if (step == RT_STEP_SWITCH)
            return run_pass(q, w, out);
        return step;
    }
    return RT_STEP_NEXT;
}

/* Walks the chain; on RT_ANSWERED the stream is complete in q->out (or q->final_body).
 * After a pass where all failed, up to num_retries more follow, each after a back-off. */
rt_outcome rt_run_chain(rt_req *q)
{
    const ponder_route_settings *s = &q->r->cfg->settings;
    rt_walk w = { .chain = q->route->chain, .n_chain = q->route->n_chain, .first_backend = true };
    rt_outcome out = RT_FAILED;
    for (int32_t pass = 0; pass <= s->num_retries; pass++) {
        if (pass > 0)
            backoff(q, pass);
        if (run_pass(q, &w, &out) == RT_STEP_DONE)
            return out;
    }
    return RT_FAILED;
}

/* The answer's tokens into /metrics (after finish_*: usage is final). */
void rt_count_tokens(ponder_router *r, const rt_req *q)
{
    if (q->answered && json_is_object(q->usage)) {
        const json_int_t in = json_integer_value(json_object_get(q->usage, "prompt_tokens")),
                         out = json_integer_value(json_object_get(q->usage, "completion_tokens"));
        http_metrics_add_tokens(&r->metrics, in, out);
        rt_count_backend_tokens(r, q->answered, in + out); /* its tpm limit */
    }
}

void rt_count_outcome(ponder_router *r, rt_outcome o)
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
    /* as ponder serve counts them; their tokens are the local engines' (rt_metrics_text) */
    if (o == RT_CANCELLED && !__atomic_load_n(&r->stopping, __ATOMIC_RELAXED))
        http_metrics_count_cancelled(&r->metrics);
}

void *rt_worker_main(void *arg)
{
    rt_req *q = arg;
    ponder_router *r = q->r;
    rt_outcome o = rt_run_chain(q);
    rt_count_outcome(r, o);
    pthread_mutex_lock(&q->mu);
    rt_finish_stream(q, o);
    rt_count_tokens(r, q);
    q->outcome = o;
    q->worker_done = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    rt_req_unref(q);
    pthread_mutex_lock(&r->mu);
    if (--r->n_workers == 0)
        pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* A request for route `name` (NULL route when unknown); takes body. NULL: out of memory. */
rt_req *rt_req_create(ponder_router *r, const char *name, ponder_backend_endpoint ep, json_t *body)
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
        rt_req_unref(q);
        return NULL;
    }
    return q;
}

/* One request for a cascade stage (cascade.c): the chain walk of a non-streaming client. */
int rt_route_call(ponder_router *r, const char *name, ponder_backend_endpoint ep, json_t *body, json_t **out,
                  double *retry_after_s)
{
    *out = NULL;
    rt_req *q = rt_req_create(r, name, ep, json_incref(body));
    if (!q)
        return 500;
    int status = 500;
    if (q->route) {
        rt_finish_whole(q, rt_run_chain(q));
        status = q->status ? q->status : 500;
        *out = q->final_body ? json_loads(q->final_body, 0, NULL) : NULL;
        if (retry_after_s && (status == 503 || status == 429) && q->retry_after_s > 0)
            *retry_after_s = q->retry_after_s;
    }
    rt_req_unref(q);
    return status;
}

rt_cascade_stats *rt_router_cascade_stats(ponder_router *r) { return r->cascade; }
const ponder_route_config *rt_router_config(const ponder_router *r) { return r->cfg; }

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
        r->p.max_body_bytes = PONDER_ROUTER_MAX_BODY_BYTES_DEFAULT;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    http_metrics_init(&r->metrics);
    /* the clients' key: --api-key (and its file/environment forms), else the config's
     * general_settings.master_key, LiteLLM's name for it */
    const char *key = r->p.api_key ? r->p.api_key : cfg->master_key;
    if (!key && cfg->master_key_env) {
        key = getenv(cfg->master_key_env);
        if (!key || !key[0]) {
            ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                             "%s: general_settings.master_key: the environment variable %s is not set", cfg->source,
                             cfg->master_key_env);
            ponder_router_free(r); /* frees cfg too, as every failure here does */
            return PONDER_ERR_INVALID_ARG;
        }
    }
    if (key && !(r->api_key = strdup(key))) {
        ponder_router_free(r);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    r->p.api_key = NULL;
    if (r->p.max_messages > 0 && r->p.local.max_messages <= 0)
        r->p.local.max_messages = r->p.max_messages;
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
    r->model_first = calloc((size_t)cfg->n_models + 1, sizeof *r->model_first);
    if (!r->be || !r->model_first) {
        ponder_router_free(r);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i < cfg->n_models; i++)
        for (int32_t j = 0; j < cfg->models[i].n_backends; j++) {
            if (j == 0)
                r->model_first[i] = r->n_be;
            rt_be *be = &r->be[r->n_be++];
            be->cfg = &cfg->models[i].backends[j];
            be->model = &cfg->models[i];
            ponder_error e;
            ponder_status st = ponder_backend_create(be->cfg, &r->p.local, &be->b, &e);
            if (st == PONDER_OK)
                continue;
            if (be->cfg->kind == PONDER_BACKEND_REMOTE || r->p.local_required) {
                /* a remote backend that cannot be set up (its key variable unset) is a
                 * configuration error: refuse to start; so is `serve -m`'s model */
                if (be->cfg->kind == PONDER_BACKEND_REMOTE)
                    ponder_error_set(err, st, "%s:%d: %s", cfg->source, be->cfg->line, e.msg);
                else
                    ponder_error_set(err, st, "%s", e.msg);
                ponder_router_free(r);
                return st;
            }
            /* a local model that fails to load is a backend failure: its chain falls back */
            snprintf(be->load_error, sizeof be->load_error, "the model failed to load: %s", e.msg);
            rt_log(r, PONDER_LOG_WARN, "backend %s: %s", be->cfg->name, be->load_error);
        }
    /* `serve -m` (or a config like it): every request goes to one local backend, so its
     * place there is taken before the body is read, as `ponder serve` always did */
    const ponder_route_model_cfg *m0 = &cfg->models[0];
    if (cfg->n_models == 1 && cfg->n_routes == 0 && m0->n_backends == 1 && cfg->settings.num_retries == 0 &&
        m0->backends[0].kind == PONDER_BACKEND_LOCAL && r->be[0].b)
        r->admit_early = r->be[0].b;
    r->whole_upstream = cfg->n_models == 1 && cfg->n_routes == 0 && m0->n_backends == 1 &&
                        cfg->settings.num_retries == 0 && isinf(m0->backends[0].first_token_timeout_s) &&
                        isinf(m0->backends[0].timeout_s);
    *out = r;
    return PONDER_OK;
}

ponder_status ponder_router_start(ponder_router *r, ponder_error *err)
{
    const http_front_params fp = {.host = r->host, .port = r->p.port, .max_body_bytes = r->p.max_body_bytes,
                                  .limits = r->p.listen, .api_key = r->api_key, .handle = rt_handle, .cls = r, .metrics = &r->metrics,
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
    free(r->model_first);
    rt_cascade_stats_free(r->cascade);
    free(r->api_key);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    http_metrics_destroy(&r->metrics);
    ponder_route_config_free(r->cfg);
    free(r);
}
