/*
 * backend_local.c — a local backend: a GGUF model served by a ponder_server in this
 * process (the ordinary engine, continuous batching and all), asked through the server's
 * in-process API. The request body and the answer's bytes are exactly those of
 * `ponder serve -m` over HTTP, and they go through backend.c's rules as a remote's do,
 * but no socket, HTTP parse or loopback hop lies between the router and the engine.
 */
#include "route/backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ponder_status rt_local_create(ponder_backend *b, const ponder_backend_local_params *lp, ponder_error *err)
{
    const ponder_route_backend_cfg *cfg = &b->cfg;
    ponder_server_params sp = ponder_server_params_default();
    if (cfg->n_parallel > 0)
        sp.n_parallel = cfg->n_parallel;
    else if (lp && lp->n_parallel > 0)
        sp.n_parallel = lp->n_parallel;
    sp.n_ctx = cfg->n_ctx > 0 ? cfg->n_ctx : lp ? lp->n_ctx : 0;
    sp.n_threads = lp ? lp->n_threads : 1;
    sp.chatml = lp && lp->chatml;
    if (lp) {
        if (lp->queue_max >= 0)
            sp.queue_max = lp->queue_max;
        sp.parse_special_in_content = lp->parse_special_in_content;
        sp.no_cache_prompt = lp->no_cache_prompt;
        sp.version = lp->version;
        if (lp->max_messages > 0)
            sp.max_messages = lp->max_messages;
        sp.chat_template_file = lp->chat_template_file;
    }
    sp.draft_path = cfg->draft;
    if (lp) {
        sp.type_k = lp->type_k;
        sp.type_v = lp->type_v;
        sp.flash_attn = lp->flash_attn;
    }
    sp.type_k = cfg->has_type_k ? cfg->type_k : sp.type_k;
    sp.type_v = cfg->has_type_v ? cfg->type_v : sp.type_v;
    sp.log = lp ? lp->log : NULL;
    sp.log_user = lp ? lp->log_user : NULL;
    ponder_status st = ponder_server_create(cfg->path, &sp, &b->local, err);
    if (st == PONDER_OK)
        st = ponder_server_start_engine(b->local, err);
    return st;
}

/* The wait's poll: the caller's cancel and the whole-answer deadline. */
typedef struct local_wait {
    rt_xfer *x;
    ponder_backend_failure ours;
} local_wait;

static bool wait_stop(void *user)
{
    local_wait *w = user;
    w->ours = rt_xfer_check(w->x, http_now_ms());
    return w->ours != PONDER_BACKEND_OK;
}

static ponder_backend_failure stream(rt_xfer *x, ponder_server_request *q)
{
    for (;;) {
        const char *text;
        size_t len;
        ponder_server_read rd = ponder_server_request_read(q, RT_POLL_MS, &text, &len);
        if (len && !rt_xfer_stream_bytes(x, text, len))
            return PONDER_BACKEND_OK; /* an error event or the caller's stop: rt_xfer_finish tells */
        if (rd == PONDER_SERVER_READ_END)
            return PONDER_BACKEND_OK;
        ponder_backend_failure ours = rt_xfer_check(x, http_now_ms());
        if (ours != PONDER_BACKEND_OK)
            return ours;
    }
}

/* Embeddings: one call that returns the whole answer (the engine runs the job between
 * decode steps; no deadline or cancel reaches into it). */
static ponder_backend_failure embeddings(ponder_backend *b, rt_xfer *x)
{
    char *json = NULL;
    rt_xfer_end e = { .clean = true };
    e.http_status = x->call->admitted ? ponder_server_embeddings_admitted(b->local, x->call->body, x->call->body_len, &json)
                                      : ponder_server_embeddings(b->local, x->call->body, x->call->body_len, &json);
    if (!json || !rt_xfer_body_bytes(x, json, strlen(json))) {
        e.clean = false;
        e.transport_msg = "out of memory";
    }
    free(json);
    return rt_xfer_finish(x, &e);
}

ponder_backend_failure rt_local_request(ponder_backend *b, const ponder_backend_call *call, ponder_backend_result *res)
{
    rt_xfer x;
    rt_xfer_init(&x, b, call, res);
    if (call->endpoint == PONDER_BACKEND_EMBEDDINGS)
        return embeddings(b, &x);
    ponder_server_request *q = NULL;
    char *error_json = NULL;
    ponder_server_endpoint ep = call->endpoint == PONDER_BACKEND_CHAT ? PONDER_SERVER_CHAT : PONDER_SERVER_COMPLETIONS;
    rt_xfer_end e = { .clean = true };
    e.http_status = call->admitted ? ponder_server_request_start_admitted(b->local, ep, call->body, call->body_len, &q,
                                                                          &error_json, &res->retry_after_s)
                                   : ponder_server_request_start(b->local, ep, call->body, call->body_len, &q,
                                                                 &error_json, &res->retry_after_s);
    if (e.http_status != 200) {
        /* refused before any token: the error object, as a remote's error body */
        if (error_json)
            rt_xfer_body_bytes(&x, error_json, strlen(error_json));
        free(error_json);
        return rt_xfer_finish(&x, &e);
    }
    if (ponder_server_request_streams(q)) {
        e.ours = stream(&x, q);
    } else {
        local_wait w = { .x = &x, .ours = PONDER_BACKEND_OK };
        if (ponder_server_request_wait(q, wait_stop, &w, RT_POLL_MS)) {
            char *body = NULL;
            e.http_status = ponder_server_request_response(q, &body);
            e.ttft_ms = ponder_server_request_ttft_ms(q);
            if (!body || !rt_xfer_body_bytes(&x, body, strlen(body))) {
                e.clean = false;
                e.transport_msg = "out of memory";
            }
            free(body);
        } else {
            e.ours = w.ours;
        }
    }
    ponder_server_request_free(q);
    return rt_xfer_finish(&x, &e);
}
