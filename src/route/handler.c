/*
 * handler.c — `ponder serve --config`'s HTTP handler on the shared front end (src/http):
 * the endpoints, the request body read as JSON, the model name looked up as a route, and
 * the answer: a cascade's, a whole one after the chain walk, or a stream that starts with
 * the first token (until then a failure is an HTTP error).
 */
#include "route/router_internal.h"

#include "ponder/think.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>

/* The request's end (answered, or the client left): a worker still running stops. */
static void req_done(void *user)
{
    rt_req *q = user;
    __atomic_store_n(&q->cancel, 1, __ATOMIC_RELAXED);
    rt_req_unref(q);
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
        /* a stream that started and then failed (an error event ends it) counts as the
         * 503 it would have been, not the 200 its headers said */
        if (q->outcome != RT_ANSWERED && q->outcome != RT_CANCELLED)
            http_req_set_outcome(q->hq, 503);
    }
    pthread_mutex_unlock(&q->mu);
    return more;
}

/* "stream" and "stream_options" as ponder serve checks them (src/server/request.c): the
 * router rewrites both for its backends, so a wrong one would otherwise pass unnoticed. */
static bool check_stream(json_t *body, http_api_error *e)
{
    json_t *st = json_object_get(body, "stream"), *so = json_object_get(body, "stream_options");
    if (st && !json_is_null(st) && !json_is_boolean(st))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "stream", "invalid_type",
                         "Invalid type for 'stream': expected a boolean, but got %s instead.", http_json_kind(st));
    if (!so || json_is_null(so))
        return true;
    if (!json_is_object(so))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "stream_options", "invalid_type",
                         "Invalid type for 'stream_options': expected an object, but got %s instead.",
                         http_json_kind(so));
    if (!json_is_true(st))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "stream_options", "invalid_value",
                         "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    json_t *iu = json_object_get(so, "include_usage");
    if (iu && !json_is_null(iu) && !json_is_boolean(iu))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "stream_options.include_usage", "invalid_type",
                         "Invalid type for 'include_usage': expected a boolean, but got %s instead.",
                         http_json_kind(iu));
    return true;
}

/* The request body as JSON, its model name and stream fields checked; NULL: answered
 * with the error (*answered: what the answer returned). */
static json_t *parse_body(http_req *hq, bool generation, bool *answered)
{
    size_t len;
    const char *text = http_req_body(hq, &len);
    http_api_error e;
    json_t *body = http_json_body(text, len, &e);
    if (body && generation && !check_stream(body, &e)) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        *answered = http_respond_error(hq, &e);
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
    rt_count_outcome(r, status == 200 ? RT_ANSWERED : status >= 400 && status < 500 && status != 429 ? RT_REFUSED : RT_FAILED);
    return http_respond(hq, status, sse ? "text/event-stream" : "application/json", text, status == 503 || status == 429 ? ra : 0);
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
     * cut answer continues) unless the answer has parts a fold would lose, or the walk has
     * nothing to gain from it (`serve -m`: the engine's own whole answer, no per-token
     * chunks written, parsed and folded) */
    json_t *tools = json_object_get(body, "tools");
    q->collect = !q->stream && !lp_on && !(json_is_array(tools) && json_array_size(tools) > 0) &&
                 !q->r->whole_upstream;
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
    int rc = pthread_create(&th, &attr, rt_worker_main, q);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&r->mu);
        r->n_workers--;
        pthread_mutex_unlock(&r->mu);
        q->refs = 1;
        rt_req_unref(q);
        return http_respond_fail(hq, HTTP_ERR_INTERNAL, NULL, NULL, "cannot start a thread");
    }
    /* until the first token the client may leave (a request waiting for a slot): its
     * socket is looked at every RT_POLL_MS and the walk cancelled */
    pthread_mutex_lock(&q->mu);
    while (!q->started && !q->worker_done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += RT_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT && http_req_peer_gone(hq))
            __atomic_store_n(&q->cancel, 1, __ATOMIC_RELAXED);
    }
    bool started = q->started;
    pthread_mutex_unlock(&q->mu);
    if (!started) {
        int status = q->status ? q->status : 503;
        char *text = q->final_body;
        q->final_body = NULL;
        double ra = q->retry_after_s;
        rt_req_unref(q);
        return http_respond(hq, status, "application/json", text, status == 503 || status == 429 ? ra : 0);
    }
    http_metrics_observe_ttft(&r->metrics, (http_now_ms() - http_req_start_ms(hq)) / 1000);
    q->hq = hq;
    http_req_on_done(hq, req_done, q);
    return http_respond_stream(hq, stream_fill, q);
}

/* optillm's model-name prefixes, as `ponder serve -m` takes them (one rule, think's
 * ponder_strategy_from_model_name): "sc8-small" is model "small" with the strategy sc:8 in
 * the body's "ponder" object, where a strategy the body names itself wins. The backends
 * then run it (a local backend in its batch; a remote `ponder serve` alike). A cascade
 * route's stages choose their own strategies, so a prefix on one is refused. *name is
 * updated to the model's own name (pointing into body); false with *e set on refusal. */
static bool apply_strategy_prefix(ponder_router *r, json_t *body, const char **name, http_api_error *e)
{
    ponder_route_cfg scratch;
    ponder_strategy st;
    const char *rest = NULL;
    if (ponder_route_config_find(r->cfg, *name, &scratch) || !ponder_strategy_from_model_name(*name, &st, &rest) ||
        !rest || !rest[0])
        return true; /* a name as it is (found, or a 404 later) */
    const ponder_route_cfg *rc = ponder_route_config_find(r->cfg, rest, &scratch);
    if (!rc)
        return true;
    if (rc->n_stages > 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "model", NULL,
                         "'%s': '%s' is a cascade route, whose stages choose their own strategies; ask for '%s'",
                         *name, rest, rest);
    json_t *p = json_object_get(body, "ponder");
    if (p && !json_is_object(p))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "ponder", NULL, "Invalid type for 'ponder': expected an object.");
    char text[32];
    ponder_strategy_format(&st, text, sizeof text);
    json_t *own = json_string(rest);
    if (!own)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    if (!p) {
        p = json_object();
        json_object_set_new(body, "ponder", p);
    }
    if (!json_object_get(p, "strategy"))
        json_object_set_new(p, "strategy", json_string(text));
    json_object_set_new(body, "model", own); /* frees the old name, which rest pointed into */
    *name = json_string_value(own);
    return true;
}

/* Chat, completions and embeddings: the model's (or route's) chain walked, or a cascade. */
static bool handle_api(ponder_router *r, http_req *hq, ponder_backend_endpoint ep)
{
    const bool embed = ep == PONDER_BACKEND_EMBEDDINGS;
    if (!embed)
        http_req_set_generation(hq);
    if (http_req_body_too_large(hq))
        return http_respond_fail(hq, HTTP_ERR_TOO_LARGE, NULL, "request_too_large",
                                 "The request body is larger than the server's limit of %zu bytes.",
                                 http_req_max_body(hq));
    if (__atomic_load_n(&r->stopping, __ATOMIC_RELAXED))
        return http_respond_fail(hq, HTTP_ERR_UNAVAILABLE, NULL, NULL, "The server is shutting down.");
    /* admission before work: a full local backend answers 429 before the body is parsed */
    ponder_backend *admitted = NULL;
    if (r->admit_early) {
        char *error_json = NULL;
        double ra = -1;
        int status = ponder_backend_admit(r->admit_early, &error_json, &ra);
        if (status != 200)
            return http_respond(hq, status, "application/json", error_json, status == 429 || status == 503 ? ra : 0);
        admitted = r->admit_early;
    }
    bool answered;
    json_t *body = parse_body(hq, !embed, &answered);
    if (!body) {
        ponder_backend_admit_release(admitted);
        return answered;
    }
    /* no model: the first of model_list, as `ponder serve -m` accepts a request without one */
    json_t *model = json_object_get(body, "model");
    const char *name = json_is_string(model) ? json_string_value(model) : r->cfg->models[0].name;
    http_api_error e;
    if (!embed && !apply_strategy_prefix(r, body, &name, &e)) {
        json_decref(body);
        ponder_backend_admit_release(admitted);
        return http_respond_error(hq, &e);
    }
    rt_req *q = rt_req_create(r, name, ep, body);
    if (!q) {
        ponder_backend_admit_release(admitted);
        return http_respond_fail(hq, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    }
    q->admitted = admitted; /* given back when q ends unless an attempt used it */
    if (!q->route) {
        /* name lives in q->body: answer before letting q go */
        bool ret = http_respond_fail(hq, HTTP_ERR_NOT_FOUND, "model", "model_not_found",
                                     "The model '%s' does not exist or you do not have access to it.", name);
        rt_req_unref(q);
        return ret;
    }
    if (q->route->n_stages > 0 && embed) {
        bool ret = http_respond_fail(hq, HTTP_ERR_BAD_REQUEST, "model", NULL,
                                     "'%s' is a cascade route, which answers chat and completions requests; ask "
                                     "one of its models for embeddings.", name);
        rt_req_unref(q);
        return ret;
    }
    if (q->route->n_stages > 0) {
        const ponder_route_cfg *route = q->route;
        json_t *b = json_incref(q->body);
        rt_req_unref(q);
        bool ret = answer_cascade(r, hq, route, ep, b);
        json_decref(b);
        return ret;
    }
    if (!embed)
        read_options(q);
    if (q->stream)
        return answer_stream(r, hq, q);
    q->waiting_client = hq;
    rt_outcome o = rt_run_chain(q);
    if (o == RT_CANCELLED && !__atomic_load_n(&r->stopping, __ATOMIC_RELAXED)) {
        rt_count_outcome(r, o);
        rt_log(r, PONDER_LOG_INFO, "route %s: the client left before its answer; request cancelled", q->route_name);
        rt_req_unref(q);
        return false; /* nobody to answer: the connection is closed */
    }
    rt_count_outcome(r, o);
    if (q->collect)
        rt_finish_collected(q, o);
    else
        rt_finish_whole(q, o);
    rt_count_tokens(r, q);
    if (o == RT_ANSWERED && !embed && q->t_first_ms > 0) /* ponder serve observes every request's */
        http_metrics_observe_ttft(&r->metrics, (q->t_first_ms - http_req_start_ms(hq)) / 1000);
    int status = q->status ? q->status : 500;
    char *text = q->final_body;
    q->final_body = NULL;
    double ra = status == 503 || status == 429 ? q->retry_after_s : 0;
    rt_req_unref(q);
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
        char *s = ponder_json_dumps(m);
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
    char *s = ponder_json_dumps(o);
    json_decref(o);
    return http_respond_json(hq, 200, s);
}

bool rt_handle(http_req *hq, void *cls)
{
    ponder_router *r = cls;
    const char *url = http_req_url(hq), *method = http_req_method(hq);
    if (!strcmp(method, "OPTIONS"))
        return http_respond_options(hq);
    bool chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions");
    bool compl = !strcmp(url, "/v1/completions") || !strcmp(url, "/completions");
    bool embed = !strcmp(url, "/v1/embeddings") || !strcmp(url, "/embeddings");
    bool models = !strcmp(url, "/v1/models") || !strcmp(url, "/models");
    bool model = !strncmp(url, "/v1/models/", 11);
    http_api_error e;
    if (chat || compl || embed) {
        if (!http_req_is_post(hq))
            return http_respond_method_not_allowed(hq, "POST");
        if (!http_req_authorized(hq, &e))
            return http_respond_error(hq, &e);
        return handle_api(r, hq, chat ? PONDER_BACKEND_CHAT : compl ? PONDER_BACKEND_COMPLETIONS : PONDER_BACKEND_EMBEDDINGS);
    }
    if (models || model || !strcmp(url, "/metrics") || !strcmp(url, "/health")) {
        if (!http_req_is_get(hq))
            return http_respond_method_not_allowed(hq, "GET");
        if (!strcmp(url, "/health"))
            return http_respond_static(hq, 200, "application/json", "{\"status\":\"ok\"}", 15);
        if (!http_req_authorized(hq, &e))
            return http_respond_error(hq, &e);
        if (!strcmp(url, "/metrics"))
            return http_respond(hq, 200, "text/plain; version=0.0.4; charset=utf-8", rt_metrics_text(r), 0);
        return handle_models(r, hq, model ? url + 11 : NULL);
    }
    if (http_web_find(url))
        return http_respond_web(hq, url);
    return http_respond_fail(hq, HTTP_ERR_NOT_FOUND, NULL, "unknown_url", "Invalid URL (%s %s)", method, url);
}

