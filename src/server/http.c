/*
 * http.c — `ponder serve`'s handler on the shared HTTP front end (src/http): which path
 * is which endpoint, authentication, and each generation request answered through a call
 * (call.c), whole or as an SSE stream; the small GET endpoints and the web page.
 *
 * libmicrohttpd runs one thread per connection, so a handler may block: it waits for the
 * engine to accept its job, and a stream's fill callback waits for the next tokens. While
 * waiting it wakes every HTTP_KEEPALIVE_MS to send an SSE comment, so a client that left
 * while its request was still queued is noticed too; the request's end then cancels the
 * job at the next step.
 */
#include "server/server_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_PEER_CHECK_MS 20        /* how often a waiting non-streaming handler checks its client */
/* Streams of cancelled requests still have their error event and [DONE] to send;
 * give them a moment before the front end closes every socket. */
#define SRV_SHUTDOWN_DRAIN_MS 2000

static void call_done(void *user)
{
    srv_call *c = user;
    srv_call_end(c);
    free(c);
}

static bool call_fill(void *cls, http_buf *out)
{
    srv_fill f = srv_call_stream(cls, out, HTTP_KEEPALIVE_MS);
    if (f == SRV_FILL_TIMEOUT)
        http_buf_append(out, HTTP_SSE_KEEPALIVE, strlen(HTTP_SSE_KEEPALIVE));
    return f != SRV_FILL_END;
}

static bool peer_gone(void *user) { return http_req_peer_gone(user); }

static bool handle_generate(struct ponder_server *s, http_req *q, srv_endpoint kind)
{
    http_req_set_generation(q);
    if (http_req_body_too_large(q))
        return http_respond_fail(q, HTTP_ERR_TOO_LARGE, NULL, "request_too_large",
                                 "The request body is larger than the server's limit of %zu bytes.",
                                 s->p.max_body_bytes);
    srv_call *c = calloc(1, sizeof *c);
    if (!c)
        return http_respond_fail(q, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    http_req_on_done(q, call_done, c);
    http_api_error e;
    size_t len;
    const char *body = http_req_body(q, &len);
    if (!srv_call_start(s, c, kind, body, len, http_req_start_ms(q), false, &e))
        return http_respond_error(q, &e);
    if (srv_call_streams(c))
        return http_respond_stream(q, call_fill, c);
    if (!srv_call_wait(c, peer_gone, q, SRV_PEER_CHECK_MS)) {
        srv_log(s, PONDER_LOG_INFO, "client left before its answer; request cancelled");
        return false; /* nobody to answer: the connection is closed */
    }
    char *json = srv_call_response(c, &e);
    return json ? http_respond_json(q, 200, json) : http_respond_error(q, &e);
}

/* ---- small endpoints ---- */

static json_t *model_object(struct ponder_server *s)
{
    json_t *m = json_object();
    json_object_set_new(m, "id", http_json_string_lossy(s->model_id, strlen(s->model_id)));
    json_object_set_new(m, "object", json_string("model"));
    json_object_set_new(m, "created", json_integer(0));
    json_object_set_new(m, "owned_by", json_string("ponder"));
    return m;
}

static bool handle_models(struct ponder_server *s, http_req *q, const char *id)
{
    if (id) {
        if (strcmp(id, s->model_id) != 0)
            return http_respond_fail(q, HTTP_ERR_NOT_FOUND, "model", "model_not_found",
                                     "The model '%s' does not exist or you do not have access to it.", id);
        json_t *m = model_object(s);
        char *js = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        return http_respond_json(q, 200, js);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_t *data = json_array();
    json_array_append_new(data, model_object(s));
    json_object_set_new(o, "data", data);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond_json(q, 200, js);
}

typedef enum route_kind { R_CHAT, R_COMPLETION, R_EMBEDDINGS, R_MODELS, R_MODEL, R_HEALTH, R_METRICS, R_ASSET, R_NONE } route_kind;

static route_kind route_of(const char *url, const char **arg)
{
    *arg = NULL;
    if (strcmp(url, "/v1/chat/completions") == 0 || strcmp(url, "/chat/completions") == 0)
        return R_CHAT;
    if (strcmp(url, "/v1/completions") == 0 || strcmp(url, "/completions") == 0)
        return R_COMPLETION;
    if (strcmp(url, "/v1/embeddings") == 0 || strcmp(url, "/embeddings") == 0)
        return R_EMBEDDINGS;
    if (strcmp(url, "/v1/models") == 0 || strcmp(url, "/models") == 0)
        return R_MODELS;
    if (strncmp(url, "/v1/models/", 11) == 0) {
        *arg = url + 11;
        return R_MODEL;
    }
    if (strcmp(url, "/health") == 0)
        return R_HEALTH;
    if (strcmp(url, "/metrics") == 0)
        return R_METRICS;
    if (http_web_find(url))
        return R_ASSET;
    return R_NONE;
}

static bool on_request(http_req *q, void *cls)
{
    struct ponder_server *s = cls;
    const char *url = http_req_url(q), *method = http_req_method(q);
    if (strcmp(method, "OPTIONS") == 0)
        return http_respond_options(q);
    const char *arg;
    route_kind rk = route_of(url, &arg);
    http_api_error e;
    bool get = http_req_is_get(q);
    switch (rk) {
    case R_CHAT:
    case R_COMPLETION:
        if (!http_req_is_post(q))
            return http_respond_method_not_allowed(q, "POST");
        if (!http_req_authorized(q, &e))
            return http_respond_error(q, &e);
        return handle_generate(s, q, rk == R_CHAT ? SRV_EP_CHAT : SRV_EP_COMPLETION);
    case R_EMBEDDINGS:
        if (!http_req_is_post(q))
            return http_respond_method_not_allowed(q, "POST");
        if (!http_req_authorized(q, &e))
            return http_respond_error(q, &e);
        return srv_handle_embeddings(s, q);
    case R_MODELS:
    case R_MODEL:
        if (!get)
            return http_respond_method_not_allowed(q, "GET");
        if (!http_req_authorized(q, &e))
            return http_respond_error(q, &e);
        return handle_models(s, q, arg);
    case R_HEALTH:
        if (!get)
            return http_respond_method_not_allowed(q, "GET");
        return http_respond_static(q, 200, "application/json", "{\"status\":\"ok\"}", 15);
    case R_METRICS:
        if (!get)
            return http_respond_method_not_allowed(q, "GET");
        if (!http_req_authorized(q, &e))
            return http_respond_error(q, &e);
        return http_respond(q, 200, "text/plain; version=0.0.4; charset=utf-8", http_metrics_render(&s->metrics), 0);
    case R_ASSET:
        return http_respond_web(q, url);
    case R_NONE:
        break;
    }
    return http_respond_fail(q, HTTP_ERR_NOT_FOUND, NULL, "unknown_url", "Invalid URL (%s %s)", method, url);
}

ponder_status srv_http_start(struct ponder_server *s, ponder_error *err)
{
    const http_front_params fp = {.host = s->host, .port = s->p.port, .max_body_bytes = s->p.max_body_bytes,
                                  .limits = s->p.listen, .api_key = s->api_key, .handle = on_request, .cls = s, .metrics = &s->metrics,
                                  .log = s->p.log, .log_user = s->p.log_user};
    ponder_status st = http_front_start(&fp, &s->front, err);
    if (st == PONDER_OK)
        s->port = http_front_port(s->front);
    return st;
}

void srv_http_stop(struct ponder_server *s)
{
    pthread_mutex_lock(&s->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += SRV_SHUTDOWN_DRAIN_MS / 1000;
    while (s->front && s->n_streams > 0)
        if (pthread_cond_timedwait(&s->streams_cv, &s->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->mu);
    http_front_free(s->front);
    s->front = NULL;
}
