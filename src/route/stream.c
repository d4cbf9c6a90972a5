/*
 * stream.c — what the client reads, built from the backends' chunks: each chunk re-stamped
 * with the stream's id, model and created, role chunks after the first dropped, the last
 * finish chunk held back to carry the ponder object (the answering backend, every
 * attempt, cost), usage mended after a continuation, and a non-streaming answer folded
 * from an upstream stream. The worker appends to the request's buffer; the HTTP reader
 * drains it (the buffer holds only what the client has not read yet).
 */
#include "route/router_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *ponder_object(rt_req *q)
{
    if (q->r->p.plain_ponder && json_is_object(q->upstream))
        return json_incref(q->upstream); /* `serve -m`: nothing was routed */
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
    /* the prompt cache may have supplied some of the moved tokens: cached stays within the prompt */
    json_t *d = json_object_get(q->usage, "prompt_tokens_details");
    json_t *cached = json_is_object(d) ? json_object_get(d, "cached_tokens") : NULL;
    if (json_is_integer(cached) && json_integer_value(cached) > p)
        json_object_set_new(d, "cached_tokens", json_integer(p));
}

void rt_stamp(rt_req *q, json_t *chunk)
{
    json_object_set_new(chunk, "id", json_string(q->id));
    json_object_set_new(chunk, "model", json_string(q->route_name));
    json_object_set_new(chunk, "created", json_integer(q->created));
}

/* Appends "data: JSON\n\n" to the client's buffer (q->mu held). */
static void push_json(rt_req *q, json_t *chunk)
{
    char *s = ponder_json_dumps(chunk);
    if (!s)
        return;
    http_buf_printf(&q->out, "data: %s\n\n", s);
    free(s);
}

static void push_text(rt_req *q, const char *s)
{
    http_buf_append(&q->out, s, strlen(s));
}

static void fold_chunk(rt_req *q, json_t *j);

/* One chunk from the backend in the current attempt (worker thread). */
bool rt_on_chunk(const char *data, size_t len, void *user)
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
    /* usage comes once, in the last chunk; the others say null when it was asked for (as
     * OpenAI's and ponder serve's chunks do) */
    if (q->include_usage)
        json_object_set_new(j, "usage", json_null());
    else
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
    if (q->collect) {
        /* nobody reads a stream: the chunk goes straight into the answer */
        pthread_mutex_lock(&q->mu);
        fold_chunk(q, j);
        q->finished = q->finished || finish;
        q->started = q->started || token || finish;
        if (q->started && q->t_first_ms == 0)
            q->t_first_ms = http_now_ms();
        pthread_mutex_unlock(&q->mu);
        json_decref(j);
        return true;
    }
    rt_stamp(q, j);
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
        q->held = ponder_json_dumps(j);
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
char *rt_attempt_body(rt_req *q, const rt_be *be, bool *nothing_left)
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
    char *s = ponder_json_dumps(b);
    json_decref(b);
    return s;
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
    char *s = ponder_json_dumps(o);
    json_decref(o);
    return s;
}

/* No backend answered: 503 backends_failed — or, when every attempt was a 429 (answered or
 * skipped for its Retry-After or rpm/tpm), 429 backends_rate_limited with Retry-After, as
 * ponder serve answers a full queue and LiteLLM a model whose deployments are all limited. */
static void finish_failed(rt_req *q)
{
    bool limited = json_array_size(q->attempts) > 0;
    size_t i;
    json_t *a;
    json_array_foreach(q->attempts, i, a) {
        const char *outcome = json_string_value(json_object_get(a, "outcome"));
        limited = limited && outcome && !strcmp(outcome, ponder_backend_failure_name(PONDER_BACKEND_HTTP_429));
    }
    q->status = limited ? 429 : 503;
    if (limited && q->retry_after_s <= 0)
        q->retry_after_s = HTTP_RETRY_AFTER_S;
    /* a backend's own 429 error object (its code and message) when one answered so */
    json_t *own = limited && q->limited_body ? json_loads(q->limited_body, 0, NULL) : NULL;
    if (json_is_object(json_object_get(own, "error"))) {
        json_object_set_new(own, "ponder", ponder_object(q));
        q->final_body = ponder_json_dumps(own);
    } else {
        q->final_body = limited ? failure_json(q, HTTP_ERR_RATE_LIMIT, "backends_rate_limited")
                                : failure_json(q, HTTP_ERR_UNAVAILABLE, "backends_failed");
    }
    json_decref(own);
}

/* Non-streaming: the answer re-stamped, with the router's ponder object. */
void rt_finish_whole(rt_req *q, rt_outcome o)
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
            if (q->ep == PONDER_BACKEND_EMBEDDINGS) /* a list: no id or created to stamp */
                json_object_set_new(j, "model", json_string(q->route_name));
            else
                rt_stamp(q, j);
            json_object_set_new(j, "ponder", ponder_object(q));
            q->final_body = ponder_json_dumps(j);
            json_decref(j);
        }
        q->status = 200;
    } else if (o != RT_REFUSED) {
        finish_failed(q);
    }
}

/* Streaming: the stream's end (q->mu held). */
void rt_finish_stream(rt_req *q, rt_outcome o)
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
            rt_stamp(q, u);
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
        finish_failed(q);
    }
}

/* A collected answer: the chunks a stream would have sent, folded into one completion
 * object as they come (nothing of them is kept as text). */
#define RT_MAX_FOLD_CHOICES 65536

void rt_fold_reset(rt_req *q)
{
    for (size_t i = 0; i < q->fold_n; i++)
        free(q->fold_text[i].data);
    free(q->fold_text);
    free(q->fold_finish);
    json_decref(q->fold_fingerprint);
    q->fold_text = NULL;
    q->fold_finish = NULL;
    q->fold_n = 0;
    q->fold_fingerprint = NULL;
}

static void fold_chunk(rt_req *q, json_t *j)
{
    if (!q->fold_fingerprint && json_is_string(json_object_get(j, "system_fingerprint")))
        q->fold_fingerprint = json_incref(json_object_get(j, "system_fingerprint"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "choices"), i, c) {
        json_int_t idx = json_integer_value(json_object_get(c, "index"));
        if (idx < 0 || idx >= RT_MAX_FOLD_CHOICES)
            continue;
        if ((size_t)idx >= q->fold_n) {
            size_t n = (size_t)idx + 1;
            http_buf *t = realloc(q->fold_text, n * sizeof *t);
            if (!t)
                break;
            q->fold_text = t;
            char(*fin)[16] = realloc(q->fold_finish, n * sizeof *fin);
            if (!fin)
                break;
            q->fold_finish = fin;
            memset(t + q->fold_n, 0, (n - q->fold_n) * sizeof *t);
            memset(fin + q->fold_n, 0, (n - q->fold_n) * sizeof *fin);
            q->fold_n = n;
        }
        json_t *txt = q->ep == PONDER_BACKEND_CHAT ? json_object_get(json_object_get(c, "delta"), "content")
                                                   : json_object_get(c, "text");
        if (json_is_string(txt))
            http_buf_append(&q->fold_text[idx], json_string_value(txt), json_string_length(txt));
        json_t *fr = json_object_get(c, "finish_reason");
        if (json_is_string(fr))
            snprintf(q->fold_finish[idx], sizeof q->fold_finish[idx], "%s", json_string_value(fr));
    }
}

void rt_end_by_length(rt_req *q)
{
    bool chat = q->ep == PONDER_BACKEND_CHAT;
    json_t *ch = json_pack("{s:i,s:s}", "index", 0, "finish_reason", "length");
    json_object_set_new(ch, chat ? "delta" : "text", chat ? json_object() : json_string(""));
    json_t *c = json_pack("{s:s,s:[o]}", "object", chat ? "chat.completion.chunk" : "text_completion", "choices", ch);
    rt_stamp(q, c);
    pthread_mutex_lock(&q->mu);
    if (q->collect) {
        fold_chunk(q, c);
    } else {
        free(q->held);
        q->held = ponder_json_dumps(c);
    }
    q->finished = true;
    pthread_mutex_unlock(&q->mu);
    json_decref(c);
}

void rt_finish_collected(rt_req *q, rt_outcome o)
{
    if (o != RT_ANSWERED) {
        rt_finish_whole(q, o);
        return;
    }
    fix_usage(q);
    bool chat = q->ep == PONDER_BACKEND_CHAT;
    json_t *choices = json_array();
    for (size_t i = 0; i < q->fold_n; i++) {
        const http_buf *tb = &q->fold_text[i];
        json_t *t = json_stringn(tb->data ? tb->data : "", tb->len);
        json_t *ch = json_pack("{s:i}", "index", (json_int_t)i);
        if (chat)
            json_object_set_new(ch, "message", json_pack("{s:s,s:o}", "role", "assistant", "content", t));
        else
            json_object_set_new(ch, "text", t);
        json_object_set_new(ch, "logprobs", json_null());
        json_object_set_new(ch, "finish_reason", q->fold_finish[i][0] ? json_string(q->fold_finish[i]) : json_null());
        json_array_append_new(choices, ch);
    }
    json_t *resp = json_pack("{s:s,s:s,s:I,s:s}", "id", q->id, "object", chat ? "chat.completion" : "text_completion",
                             "created", (json_int_t)q->created, "model", q->route_name);
    if (q->fold_fingerprint)
        json_object_set(resp, "system_fingerprint", q->fold_fingerprint);
    json_object_set_new(resp, "choices", choices);
    json_object_set(resp, "usage", q->usage ? q->usage : json_null());
    json_object_set_new(resp, "ponder", ponder_object(q));
    free(q->final_body);
    q->final_body = ponder_json_dumps(resp);
    json_decref(resp);
    q->status = 200;
}
