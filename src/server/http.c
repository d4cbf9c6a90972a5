/*
 * http.c — the libmicrohttpd side: routing, authentication, bodies, the generation
 * handlers (non-streaming and SSE) and the small GET endpoints.
 *
 * libmicrohttpd runs one thread per connection, so a handler may block: it waits for
 * the engine to accept its job, and a streaming response's reader callback waits for
 * the next tokens. While waiting the reader wakes every SRV_KEEPALIVE_MS to send an SSE
 * comment, so a client that left while its request was still queued is noticed too;
 * MHD then reports MHD_REQUEST_TERMINATED_* and the job is cancelled at the next step.
 */
#include "server/http_listen.h"
#include "server/server_state.h"

#include <microhttpd.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SRV_KEEPALIVE_MS 5000       /* SSE comment while nothing else is sent */
#define SRV_CONNECTION_LIMIT 512
#define SRV_CONNECTION_TIMEOUT_S 600 /* idle connections; a slow client may take its time */
#define SRV_RETRY_AFTER_S "1"
#define SRV_PEER_CHECK_MS 20        /* how often a waiting non-streaming handler checks its client */

typedef struct srv_conn {
    struct ponder_server *s;
    double t_start_ms;
    srv_body body;
    int status;              /* HTTP status of the answer, for /metrics */
    bool generation;         /* a completions request (observed in the latency histogram) */
    srv_job *job;            /* streaming: the job the reader follows */
    /* streaming state */
    srv_meta meta;
    size_t ev_pos;
    int32_t n_fin;           /* finish events streamed */
    size_t *text_offset;     /* per choice (completions logprobs) */
    bool started, ended;
    bool counted;            /* in s->n_streams */
    srv_buf out;
    size_t out_pos;
} srv_conn;

/* ---- small helpers ---- */

static void add_common_headers(struct MHD_Response *r)
{
    /* the API is meant for local apps and browser pages on other origins */
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
}

static enum MHD_Result send_text(srv_conn *c, struct MHD_Connection *conn, int status, const char *type,
                                 const char *text, size_t len, bool copy)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)text, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
    if (!r) {
        if (!copy)
            free((void *)text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    add_common_headers(r);
    c->status = status;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(srv_conn *c, struct MHD_Connection *conn, int status, char *json)
{
    if (!json) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        return send_text(c, conn, 500, "application/json", oom, sizeof oom - 1, true);
    }
    return send_text(c, conn, status, "application/json", json, strlen(json), false);
}

static enum MHD_Result send_error(srv_conn *c, struct MHD_Connection *conn, const srv_api_error *e)
{
    int status = srv_err_http_status(e->kind);
    char *json = srv_error_json(e);
    if (!json)
        return send_json(c, conn, 500, NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    add_common_headers(r);
    if (e->kind == SRV_ERR_RATE_LIMIT)
        MHD_add_response_header(r, "Retry-After", SRV_RETRY_AFTER_S);
    if (e->kind == SRV_ERR_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    c->status = status;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fail(srv_conn *c, struct MHD_Connection *conn, srv_err kind, const char *param,
                            const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

static enum MHD_Result fail(srv_conn *c, struct MHD_Connection *conn, srv_err kind, const char *param,
                            const char *code, const char *fmt, ...)
{
    srv_api_error e;
    char msg[SRV_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_fail(&e, kind, param, code, "%s", msg);
    return send_error(c, conn, &e);
}

static void make_id(struct ponder_server *s, srv_endpoint kind, char *out, size_t cap)
{
    /* splitmix64 over a per-server counter: unique ids without a global */
    uint64_t z = __atomic_add_fetch(&s->id_state, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    uint64_t z2 = z * 0xD6E8FEB86659FD93ull;
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char tail[25];
    for (int i = 0; i < 24; i++) {
        uint64_t src = i < 12 ? z : z2;
        tail[i] = alnum[(src >> ((i % 12) * 5)) % 62];
    }
    tail[24] = '\0';
    snprintf(out, cap, "%s-%s", kind == SRV_EP_CHAT ? "chatcmpl" : "cmpl", tail);
}

static bool authorized(struct ponder_server *s, struct MHD_Connection *conn, srv_api_error *e)
{
    if (!s->api_key)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return srv_fail(e, SRV_ERR_UNAUTHORIZED, NULL, "invalid_api_key",
                        "You didn't provide an API key. You need to provide your API key in an Authorization "
                        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
    const char *key = h + 7;
    size_t a = strlen(key), b = strlen(s->api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++) /* no early exit: the time says nothing about the key */
        diff |= (unsigned)(key[i] ^ s->api_key[i]);
    if (diff)
        return srv_fail(e, SRV_ERR_UNAUTHORIZED, NULL, "invalid_api_key", "Incorrect API key provided.");
    return true;
}

/* ---- the prompt ---- */

/* The tokens of prompt ip (completions) or of the rendered conversation (chat). */
static bool build_one(struct ponder_server *s, const srv_request *r, int32_t ip, srv_sub *out, srv_api_error *e)
{
    char *text = NULL;
    const char *src;
    size_t len;
    bool add_special, parse_special;
    ponder_error err;
    const srv_prompt *pr = r->kind == SRV_EP_COMPLETION ? &r->prompts[ip] : NULL;
    if (pr && pr->ids) {
        int32_t n_vocab = ponder_tokenizer_n_vocab(s->tok);
        for (int32_t i = 0; i < pr->n_ids; i++)
            if (pr->ids[i] >= n_vocab)
                return srv_fail(e, SRV_ERR_BAD_REQUEST, "prompt", "invalid_value",
                                "Invalid 'prompt': token id %d at %d is outside the vocabulary (%d tokens).",
                                (int)pr->ids[i], (int)i, (int)n_vocab);
        out->prompt = malloc((size_t)pr->n_ids * sizeof *out->prompt);
        if (!out->prompt)
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        memcpy(out->prompt, pr->ids, (size_t)pr->n_ids * sizeof *out->prompt);
        out->n_prompt = pr->n_ids;
        return true;
    }
    if (pr) {
        /* as `ponder run`: the vocabulary's BOS rule, special-token texts not parsed */
        src = pr->text;
        len = pr->len;
        add_special = true;
        parse_special = false;
#ifdef PONDER_SERVER_HAVE_CHAT
    } else if (s->tmpl) {
        char *vars = srv_chat_vars_json(r, s->bos_text, s->eos_text);
        if (!vars)
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        ponder_status st = ponder_chat_render_json(s->tmpl, vars, strlen(vars), &text, &len, &err);
        free(vars);
        if (st == PONDER_ERR_INVALID_ARG)
            return srv_fail(e, SRV_ERR_BAD_REQUEST, "messages", "invalid_value", "%s", err.msg);
        if (st != PONDER_OK)
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "the chat template failed: %s", err.msg);
        src = text;
        /* the template writes bos_token itself (HF's apply_chat_template adds no specials) */
        add_special = false;
        parse_special = true;
#endif
    } else if (s->p.chatml) {
        text = srv_render_chatml(r->messages);
        if (!text)
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        src = text;
        len = strlen(text);
        add_special = true; /* ChatML has no bos_token of its own */
        parse_special = true;
    } else {
        return srv_fail(e, SRV_ERR_INTERNAL, NULL, "no_chat_template", "%s", s->tmpl_error);
    }
    if (!pr && r->assistant_prefix) {
        /* continue_final_message: the generation prompt, then the answer so far verbatim,
         * so the model sees what it saw when it wrote that text */
        size_t pl = strlen(r->assistant_prefix);
        char *t = malloc(len + pl + 1);
        if (!t) {
            free(text);
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
        memcpy(t, src, len);
        memcpy(t + len, r->assistant_prefix, pl + 1);
        free(text);
        text = t;
        src = t;
        len += pl;
    }
    ponder_token *ids = NULL;
    size_t n = 0;
    ponder_status st = ponder_tokenizer_encode(s->tok, src, len, add_special, parse_special, &ids, &n, &err);
    free(text);
    if (st != PONDER_OK)
        return srv_fail(e, SRV_ERR_BAD_REQUEST, r->kind == SRV_EP_CHAT ? "messages" : "prompt", "invalid_value",
                        "The prompt cannot be tokenized: %s", err.msg);
    if (n > INT32_MAX) {
        free(ids);
        return srv_fail(e, SRV_ERR_BAD_REQUEST, NULL, "context_length_exceeded", "The prompt is too long.");
    }
    out->prompt = ids;
    out->n_prompt = (int32_t)n;
    return true;
}

/* One sub per prompt; checks each against the context: the prompt must leave room for a
 * token, and prompt + max_tokens must fit (an answer is never cut short silently). */
static bool build_prompts(struct ponder_server *s, srv_job *j, srv_api_error *e)
{
    const srv_request *r = &j->req;
    const bool chat = r->kind == SRV_EP_CHAT;
    int32_t n = chat ? 1 : r->n_prompts;
    j->subs = calloc((size_t)n, sizeof *j->subs);
    if (!j->subs)
        return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
    j->n_subs = n;
    const char *what = chat ? "messages" : "prompt";
    for (int32_t i = 0; i < n; i++) {
        srv_sub *sub = &j->subs[i];
        sub->job = j;
        sub->choice_base = i * r->n;
        if (!build_one(s, r, i, sub, e))
            return false;
        if (sub->n_prompt == 0)
            return srv_fail(e, SRV_ERR_BAD_REQUEST, "prompt", "invalid_value", "The prompt is empty (0 tokens).");
        if (sub->n_prompt >= s->n_ctx)
            return srv_fail(e, SRV_ERR_BAD_REQUEST, what, "context_length_exceeded",
                            "This model's maximum context length is %d tokens. However, your %s resulted in %d "
                            "tokens. Please reduce the length of the %s.",
                            (int)s->n_ctx, what, (int)sub->n_prompt, what);
        if (r->max_tokens > 0 && (int64_t)sub->n_prompt + r->max_tokens > s->n_ctx)
            return srv_fail(e, SRV_ERR_BAD_REQUEST, "max_tokens", "context_length_exceeded",
                            "This model's maximum context length is %d tokens. However, you requested %lld tokens "
                            "(%d in the %s, %d in the completion). Please reduce the length of the %s or "
                            "completion.",
                            (int)s->n_ctx, (long long)sub->n_prompt + r->max_tokens, (int)sub->n_prompt, what,
                            (int)r->max_tokens, what);
    }
    return true;
}

/* ---- strategies ---- */

static bool runs_strategy(const srv_request *r)
{
    return r->strategy_given && r->strategy.kind != PONDER_THINK_DIRECT;
}

/* What a strategy request may not combine with, and the think parameters it runs with:
 * the request's sampling, max_tokens and stop for every chain. */
static bool check_strategy(struct ponder_server *s, srv_job *j, srv_api_error *e)
{
    srv_request *r = &j->req;
    bool one = r->strategy.kind == PONDER_THINK_DIRECT || r->strategy.kind == PONDER_THINK_COT;
    if (one && r->samples > 1)
        return srv_fail(e, SRV_ERR_BAD_REQUEST, "ponder.samples", "invalid_value",
                        "Invalid 'ponder.samples': the %s strategy runs one chain; use sc, asc or bon for %d.",
                        ponder_think_kind_name(r->strategy.kind), (int)r->samples);
    if (!runs_strategy(r))
        return true;
    if (r->n != 1)
        return srv_fail(e, SRV_ERR_BAD_REQUEST, "n", "invalid_value",
                        "Invalid 'n': a ponder strategy answers with one choice (the winner); use ponder.samples "
                        "for the chains.");
    if (r->logprobs)
        return srv_fail(e, SRV_ERR_BAD_REQUEST, "logprobs", "invalid_value",
                        "Invalid 'logprobs': not available with a ponder strategy (the answer is picked from "
                        "several chains).");
    if (r->kind == SRV_EP_COMPLETION && r->n_prompts > 1)
        return srv_fail(e, SRV_ERR_BAD_REQUEST, "prompt", "invalid_value",
                        "Invalid 'prompt': a ponder strategy runs on one prompt; %d given.", (int)r->n_prompts);
    ponder_think_params *p = &j->think_p;
    *p = ponder_think_params_default();
    p->strategy = r->strategy;
    p->sampling = r->sampling;
    p->max_tokens = r->max_tokens > 0 ? r->max_tokens : 0;
    p->stop = (const char *const *)r->stop;
    p->n_stop = r->n_stop;
    p->answer_kind = r->answer_kind;
    p->prefix = NULL;
    if (r->no_cue)
        p->cot_cue = NULL;
    if (p->asc_round > s->p.n_parallel)
        p->asc_round = s->p.n_parallel;
    int32_t need = ponder_think_job_max_choices(p);
    if (need > s->p.n_parallel)
        return srv_fail(e, SRV_ERR_BAD_REQUEST, "ponder.samples", "invalid_value",
                        "Invalid 'ponder.samples': %s decodes %d chains at once; this server decodes at most %d "
                        "sequences at once (--parallel).",
                        ponder_think_kind_name(r->strategy.kind), (int)need, (int)s->p.n_parallel);
    /* the chain-of-thought cue goes after the question, as `ponder run --strategy` puts
     * it: at the end of a completions prompt, at the end of a chat's last user message */
    const char *cue = p->cot_cue;
    if (!cue)
        return true;
    if (r->kind == SRV_EP_CHAT) {
        json_t *last = NULL;
        size_t i;
        json_t *m;
        json_array_foreach(r->messages, i, m) {
            json_t *role = json_object_get(m, "role");
            if (json_is_string(role) && strcmp(json_string_value(role), "user") == 0)
                last = m;
        }
        if (last) {
            json_t *content = json_object_get(last, "content");
            srv_buf b = { 0 };
            srv_buf_append(&b, json_string_value(content), json_string_length(content));
            srv_buf_append(&b, cue, strlen(cue));
            json_t *text = b.oom ? NULL : json_stringn(b.data, b.len);
            free(b.data);
            if (!text || json_object_set_new(last, "content", text) != 0)
                return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
    } else if (r->prompts[0].text) {
        srv_prompt *pr = &r->prompts[0];
        size_t n = strlen(cue);
        char *t = realloc(pr->text, pr->len + n + 1);
        if (!t)
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        memcpy(t + pr->len, cue, n + 1);
        pr->text = t;
        pr->len += n;
    }
    return true;
}

/* Makes the think job over the built prompt (token-id prompts get the cue's tokens). */
static bool start_strategy(struct ponder_server *s, srv_job *j, srv_api_error *e)
{
    srv_request *r = &j->req;
    if (!runs_strategy(r))
        return true;
    srv_sub *sub = &j->subs[0];
    if (r->kind == SRV_EP_COMPLETION && r->prompts[0].ids && j->think_p.cot_cue) {
        const char *cue = j->think_p.cot_cue;
        ponder_token *ids = NULL;
        size_t n = 0;
        ponder_error err;
        if (ponder_tokenizer_encode(s->tok, cue, strlen(cue), false, false, &ids, &n, &err) != PONDER_OK)
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "the cue cannot be tokenized: %s", err.msg);
        ponder_token *t = realloc(sub->prompt, ((size_t)sub->n_prompt + n) * sizeof *t);
        if (!t) {
            free(ids);
            return srv_fail(e, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
        memcpy(t + sub->n_prompt, ids, n * sizeof *ids);
        free(ids);
        sub->prompt = t;
        sub->n_prompt += (int32_t)n;
        if (sub->n_prompt >= s->n_ctx || (r->max_tokens > 0 && (int64_t)sub->n_prompt + r->max_tokens > s->n_ctx))
            return srv_fail(e, SRV_ERR_BAD_REQUEST, "prompt", "context_length_exceeded",
                            "This model's maximum context length is %d tokens. However, the prompt with the "
                            "strategy's cue is %d tokens and %d more were asked for the completion.",
                            (int)s->n_ctx, (int)sub->n_prompt, r->max_tokens > 0 ? (int)r->max_tokens : 0);
    }
    ponder_error err;
    if (ponder_think_job_create(&j->think_p, sub->prompt, sub->n_prompt, &j->think, &err) != PONDER_OK)
        return srv_fail(e, err.code == PONDER_ERR_NOMEM ? SRV_ERR_INTERNAL : SRV_ERR_BAD_REQUEST, "ponder", NULL,
                        "%s", err.msg);
    return true;
}

/* ---- generation ---- */

static void fill_stats(const srv_job *j, srv_stats *st)
{
    memset(st, 0, sizeof *st);
    st->think = j->think_res;
    int32_t n_prompt = 0;
    for (int32_t i = 0; i < j->n_subs; i++)
        n_prompt += j->subs[i].n_prompt;
    st->prompt_tokens = j->usage.prompt_tokens ? j->usage.prompt_tokens : n_prompt;
    st->completion_tokens = j->usage.completion_tokens;
    st->prompt_tokens_evaluated = j->usage.prompt_tokens_evaluated;
    st->draft_tokens = j->usage.draft_tokens;
    st->draft_accepted = j->usage.draft_accepted;
    st->flops = j->usage.flops;
    st->wall_ms = j->t_last_ms - j->t_arrival_ms;
    st->gen_ms = j->t_last_ms - j->t_first_ms;
    if (j->think_res) {
        /* the prompt once; evaluated once per round (asc: several) */
        st->prompt_tokens = (int32_t)j->think_res->usage.prompt_tokens;
        st->gen_ms = j->think_res->usage.wall_ms;
    }
}

static void deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* Whether the peer has closed the connection: an orderly close reads as end of file, a
 * reset as an error; nothing to read (EAGAIN) means it is still there. Only peeks, so the
 * bytes of a pipelined next request stay for MHD (and hide a close behind them). */
static bool peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static enum MHD_Result answer_whole(srv_conn *c, struct MHD_Connection *conn, srv_job *j)
{
    struct ponder_server *s = c->s;
    /* MHD reads this connection only from this thread, which waits here: it cannot tell
     * us that the client left, so the wait looks at the socket itself every
     * SRV_PEER_CHECK_MS and cancels the job (freeing its sequences at the next step). */
    bool gone = false;
    pthread_mutex_lock(&s->mu);
    struct timespec next;
    deadline(&next, SRV_PEER_CHECK_MS);
    while (j->state == SRV_JOB_RUNNING) {
        /* every token wakes us (the cond is the job's), so check by the clock */
        if (pthread_cond_timedwait(&j->cond, &s->mu, &next) == ETIMEDOUT) {
            if (!gone && peer_gone(conn)) {
                gone = true;
                j->cancel = true;
                pthread_cond_signal(&s->engine_cv);
            }
            deadline(&next, SRV_PEER_CHECK_MS);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (gone) {
        srv_log(s, PONDER_LOG_INFO, "client left before its answer; request cancelled");
        return MHD_NO; /* nobody to answer: MHD closes the connection */
    }
    /* DONE: the engine no longer touches the job's events */
    if (j->aborted)
        return fail(c, conn, j->shutdown ? SRV_ERR_UNAVAILABLE : SRV_ERR_INTERNAL, NULL, NULL,
                    j->shutdown ? "The server is shutting down." : "Generation failed; see the server log.");
    int32_t n = srv_request_n_choices(&j->req);
    srv_choice *ch = calloc((size_t)n, sizeof *ch);
    srv_buf *texts = calloc((size_t)n, sizeof *texts);
    bool oom = !ch || !texts;
    for (int32_t i = 0; !oom && i < n; i++)
        if (j->req.logprobs && !(ch[i].lp = malloc((j->n_ev ? j->n_ev : 1) * sizeof *ch[i].lp)))
            oom = true;
    for (size_t k = 0; !oom && k < j->n_ev; k++) {
        const srv_event *e = &j->ev[k];
        if (e->choice < 0 || e->choice >= n)
            continue;
        srv_choice *cc = &ch[e->choice];
        srv_buf_append(&texts[e->choice], e->text, e->text_len);
        if (e->has_token && j->req.logprobs)
            cc->lp[cc->n_lp++] = e->lp;
        if (e->finish != PONDER_FINISH_NONE)
            cc->finish = e->finish;
    }
    for (int32_t i = 0; !oom && i < n; i++) {
        oom = texts[i].oom;
        ch[i].text = texts[i].data;
        ch[i].text_len = texts[i].len;
    }
    char *json = NULL;
    if (!oom) {
        srv_stats st;
        fill_stats(j, &st);
        srv_meta m;
        make_id(s, j->req.kind, m.id, sizeof m.id);
        m.created = (int64_t)time(NULL);
        m.model = s->model_id;
        m.fingerprint = s->fingerprint;
        json = srv_build_response(&j->req, &m, s->tok, ch, &st);
    }
    for (int32_t i = 0; ch && i < n; i++) {
        free(ch[i].lp);
        free(texts ? texts[i].data : NULL);
    }
    free(ch);
    free(texts);
    return send_json(c, conn, 200, json);
}

/* Appends the SSE text for one event to c->out (s->mu not held; e is stable: the engine
 * only appends, and realloc moved the array, not the texts). */
static void stream_event(srv_conn *c, const srv_event *e, const srv_stats *final_stats)
{
    srv_job *j = c->job;
    struct ponder_server *s = c->s;
    if (e->choice < 0 || e->choice >= srv_request_n_choices(&j->req))
        return;
    if (e->text_len || (e->has_token && j->req.logprobs)) {
        srv_delta d = { 0 };
        d.choice = e->choice;
        d.text = e->text;
        d.text_len = e->text_len;
        d.lp = e->has_token && j->req.logprobs ? &e->lp : NULL;
        d.text_offset = c->text_offset ? c->text_offset[e->choice] : 0;
        char *chunk = srv_build_chunk(&j->req, &c->meta, s->tok, &d, NULL);
        if (chunk) {
            srv_buf_append(&c->out, chunk, strlen(chunk));
            free(chunk);
        }
        if (c->text_offset && d.lp) {
            char buf[256];
            int32_t len = ponder_tokenizer_token_to_piece(s->tok, e->lp.chosen.token, buf, sizeof buf, true);
            c->text_offset[e->choice] += len > 0 ? (size_t)len : 0;
        }
    }
    if (e->finish != PONDER_FINISH_NONE && ++c->n_fin < srv_request_n_choices(&j->req))
        final_stats = NULL; /* the ponder object rides on the last choice's final chunk */
    if (e->finish == PONDER_FINISH_STOP || e->finish == PONDER_FINISH_LENGTH) {
        srv_delta d = { 0 };
        d.choice = e->choice;
        d.finish = e->finish;
        char *chunk = srv_build_chunk(&j->req, &c->meta, s->tok, &d, j->req.include_usage ? NULL : final_stats);
        if (chunk) {
            srv_buf_append(&c->out, chunk, strlen(chunk));
            free(chunk);
        }
    }
}

static void stream_tail(srv_conn *c)
{
    srv_job *j = c->job;
    if (j->aborted) {
        srv_api_error e;
        srv_fail(&e, j->shutdown ? SRV_ERR_UNAVAILABLE : SRV_ERR_INTERNAL, NULL, NULL, "%s",
                 j->shutdown ? "The server is shutting down." : "Generation failed; see the server log.");
        char *json = srv_error_json(&e);
        if (json) {
            srv_buf_printf(&c->out, "data: %s\n\n", json);
            free(json);
        }
    } else if (j->req.include_usage) {
        srv_stats st;
        fill_stats(j, &st);
        char *chunk = srv_build_usage_chunk(&j->req, &c->meta, &st);
        if (chunk) {
            srv_buf_append(&c->out, chunk, strlen(chunk));
            free(chunk);
        }
    }
    srv_buf_append(&c->out, "data: [DONE]\n\n", 14);
}

/* Produces the next bytes of the stream into c->out. */
static void stream_fill(srv_conn *c)
{
    srv_job *j = c->job;
    struct ponder_server *s = c->s;
    if (!c->started) {
        c->started = true;
        if (j->req.kind == SRV_EP_CHAT) {
            for (int32_t i = 0; i < srv_request_n_choices(&j->req); i++) {
                srv_delta d = { 0 };
                d.choice = i;
                d.role = true;
                char *chunk = srv_build_chunk(&j->req, &c->meta, s->tok, &d, NULL);
                if (chunk) {
                    srv_buf_append(&c->out, chunk, strlen(chunk));
                    free(chunk);
                }
            }
            return;
        }
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (c->ev_pos < j->n_ev) {
            size_t end = j->n_ev;
            /* the final finish waits for the usage, which comes with DONE */
            bool last_pending = false;
            srv_event *evs = j->ev;
            int32_t fin = c->n_fin;
            size_t stop_at = end;
            for (size_t k = c->ev_pos; k < end; k++) {
                if (evs[k].finish != PONDER_FINISH_NONE && ++fin == srv_request_n_choices(&j->req) &&
                    j->state != SRV_JOB_DONE) {
                    stop_at = k;
                    last_pending = true;
                    break;
                }
            }
            if (stop_at > c->ev_pos || !last_pending) {
                /* copy the records: the engine may move the array once we unlock */
                size_t n = stop_at - c->ev_pos;
                srv_event *copy = malloc((n ? n : 1) * sizeof *copy);
                if (copy)
                    memcpy(copy, evs + c->ev_pos, n * sizeof *copy);
                bool done = j->state == SRV_JOB_DONE;
                c->ev_pos = stop_at;
                srv_stats st;
                if (done)
                    fill_stats(j, &st);
                pthread_mutex_unlock(&s->mu);
                for (size_t k = 0; copy && k < n; k++)
                    stream_event(c, &copy[k], done ? &st : NULL);
                free(copy);
                return;
            }
        }
        if (j->state == SRV_JOB_DONE && c->ev_pos >= j->n_ev) {
            pthread_mutex_unlock(&s->mu);
            stream_tail(c);
            c->ended = true;
            return;
        }
        struct timespec ts;
        deadline(&ts, SRV_KEEPALIVE_MS);
        if (pthread_cond_timedwait(&j->cond, &s->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            srv_buf_append(&c->out, ": keep-alive\n\n", 14);
            return;
        }
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_conn *c = cls;
    while (c->out_pos >= c->out.len) {
        c->out.len = c->out_pos = 0;
        if (c->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        stream_fill(c);
        if (c->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->out.len - c->out_pos;
    if (n > max)
        n = max;
    memcpy(buf, c->out.data + c->out_pos, n);
    c->out_pos += n;
    return (ssize_t)n;
}

static enum MHD_Result answer_stream(srv_conn *c, struct MHD_Connection *conn, srv_job *j)
{
    struct ponder_server *s = c->s;
    c->job = j;
    j->refs++; /* protected by s->mu below */
    c->counted = true;
    s->n_streams++;
    make_id(s, j->req.kind, c->meta.id, sizeof c->meta.id);
    c->meta.created = (int64_t)time(NULL);
    c->meta.model = s->model_id;
    c->meta.fingerprint = s->fingerprint;
    if (j->req.kind == SRV_EP_COMPLETION && j->req.logprobs &&
        !(c->text_offset = calloc((size_t)srv_request_n_choices(&j->req), sizeof *c->text_offset)))
        return fail(c, conn, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, c, NULL);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    add_common_headers(r);
    c->status = 200;
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle_generate(srv_conn *c, struct MHD_Connection *conn, srv_endpoint kind)
{
    struct ponder_server *s = c->s;
    srv_api_error e;
    c->generation = true;
    if (c->body.too_large)
        return fail(c, conn, SRV_ERR_TOO_LARGE, NULL, "request_too_large",
                    "The request body is larger than the server's limit of %zu bytes.", s->p.max_body_bytes);
    srv_job *j = srv_job_create(s);
    if (!j)
        return fail(c, conn, SRV_ERR_INTERNAL, NULL, NULL, "out of memory");
    j->t_arrival_ms = c->t_start_ms;
    enum MHD_Result ret;
    if (!srv_request_parse(kind, c->body.data ? c->body.data : "", c->body.len, &j->req, &e))
        goto refuse;
    if (j->req.model && strcmp(j->req.model, s->model_id) != 0) {
        /* optillm's convention: "sc8-<model>" asks for a strategy; "ponder.strategy" wins */
        ponder_strategy st;
        const char *rest;
        if (!ponder_strategy_from_model_name(j->req.model, &st, &rest) || strcmp(rest, s->model_id) != 0) {
            srv_fail(&e, SRV_ERR_NOT_FOUND, "model", "model_not_found",
                     "The model '%s' does not exist or you do not have access to it. This server serves '%s' "
                     "(a strategy prefix such as 'sc8-%s' may come before it).",
                     j->req.model, s->model_id, s->model_id);
            goto refuse;
        }
        if (!j->req.strategy_given) {
            j->req.strategy = st;
            j->req.strategy_given = true;
            if (j->req.samples > 0 && st.kind != PONDER_THINK_DIRECT && st.kind != PONDER_THINK_COT)
                j->req.strategy.n_samples = j->req.samples;
        }
    }
    if (!check_strategy(s, j, &e))
        goto refuse;
    if (j->req.n > s->p.n_parallel) {
        srv_fail(&e, SRV_ERR_BAD_REQUEST, "n", "invalid_value",
                 "Invalid 'n': %d choices asked; this server decodes at most %d sequences at once (--parallel).",
                 (int)j->req.n, (int)s->p.n_parallel);
        goto refuse;
    }
    if (!build_prompts(s, j, &e) || !start_strategy(s, j, &e))
        goto refuse;

    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        srv_fail(&e, SRV_ERR_UNAVAILABLE, NULL, NULL, "The server is shutting down.");
        goto refuse;
    }
    if (s->n_inflight >= s->p.n_parallel + s->p.queue_max) {
        int32_t inflight = s->n_inflight;
        pthread_mutex_unlock(&s->mu);
        srv_fail(&e, SRV_ERR_RATE_LIMIT, NULL, "rate_limit_exceeded",
                 "The server is busy: %d requests in flight (%d slots, queue of %d). Retry after %s s.",
                 (int)inflight, (int)s->p.n_parallel, (int)s->p.queue_max, SRV_RETRY_AFTER_S);
        goto refuse;
    }
    srv_engine_enqueue(s, j);
    while (j->state == SRV_JOB_INBOX)
        pthread_cond_wait(&j->cond, &s->mu);
    if (j->state == SRV_JOB_FAILED) {
        bool range = j->fail_status == PONDER_ERR_RANGE;
        srv_fail(&e, range ? SRV_ERR_BAD_REQUEST : j->shutdown ? SRV_ERR_UNAVAILABLE : SRV_ERR_INTERNAL, NULL,
                 range ? "context_length_exceeded" : NULL, "%s", j->fail_msg);
        pthread_mutex_unlock(&s->mu);
        goto refuse;
    }
    if (j->req.stream) {
        ret = answer_stream(c, conn, j);
        srv_job_unref(j); /* the conn holds its own reference now */
        pthread_mutex_unlock(&s->mu);
        return ret;
    }
    c->job = j; /* so a shutdown or an abort while waiting still releases it */
    pthread_mutex_unlock(&s->mu);
    return answer_whole(c, conn, j);

refuse:
    ret = send_error(c, conn, &e);
    pthread_mutex_lock(&s->mu);
    srv_job_unref(j);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* ---- small endpoints ---- */

static json_t *model_object(struct ponder_server *s)
{
    json_t *m = json_object();
    json_object_set_new(m, "id", srv_json_string_lossy(s->model_id, strlen(s->model_id)));
    json_object_set_new(m, "object", json_string("model"));
    json_object_set_new(m, "created", json_integer(0));
    json_object_set_new(m, "owned_by", json_string("ponder"));
    return m;
}

static enum MHD_Result handle_models(srv_conn *c, struct MHD_Connection *conn, const char *id)
{
    struct ponder_server *s = c->s;
    if (id) {
        if (strcmp(id, s->model_id) != 0)
            return fail(c, conn, SRV_ERR_NOT_FOUND, "model", "model_not_found",
                        "The model '%s' does not exist or you do not have access to it.", id);
        json_t *m = model_object(s);
        char *js = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        return send_json(c, conn, 200, js);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_t *data = json_array();
    json_array_append_new(data, model_object(s));
    json_object_set_new(o, "data", data);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return send_json(c, conn, 200, js);
}

static enum MHD_Result handle_options(srv_conn *c, struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    add_common_headers(r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    c->status = 204;
    enum MHD_Result ret = MHD_queue_response(conn, 204, r);
    MHD_destroy_response(r);
    return ret;
}

typedef enum route_kind { R_CHAT, R_COMPLETION, R_MODELS, R_MODEL, R_HEALTH, R_METRICS, R_ASSET, R_NONE } route_kind;

static route_kind route_of(const char *url, const char **arg)
{
    *arg = NULL;
    if (strcmp(url, "/v1/chat/completions") == 0 || strcmp(url, "/chat/completions") == 0)
        return R_CHAT;
    if (strcmp(url, "/v1/completions") == 0 || strcmp(url, "/completions") == 0)
        return R_COMPLETION;
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
    if (srv_web_find(url))
        return R_ASSET;
    return R_NONE;
}

static enum MHD_Result method_not_allowed(srv_conn *c, struct MHD_Connection *conn, const char *method,
                                          const char *url, const char *allow)
{
    srv_api_error e;
    srv_fail(&e, SRV_ERR_METHOD, NULL, "method_not_allowed", "Method %s is not allowed for %s; use %s.", method,
             url, allow);
    char *json = srv_error_json(&e);
    struct MHD_Response *r = json ? MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free(json);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    add_common_headers(r);
    c->status = 405;
    enum MHD_Result ret = MHD_queue_response(conn, 405, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct ponder_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return MHD_NO;
        c->s = s;
        c->t_start_ms = srv_now_ms();
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!srv_body_append(&c->body, upload, *upload_size, s->p.max_body_bytes))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->status)
        return MHD_YES; /* already answered (defensive: MHD calls once more only before queueing) */

    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    if (strcmp(method, "OPTIONS") == 0)
        return handle_options(c, conn);
    const char *arg;
    route_kind rk = route_of(url, &arg);
    srv_api_error e;
    switch (rk) {
    case R_CHAT:
    case R_COMPLETION:
        if (!post)
            return method_not_allowed(c, conn, method, url, "POST");
        if (!authorized(s, conn, &e))
            return send_error(c, conn, &e);
        return handle_generate(c, conn, rk == R_CHAT ? SRV_EP_CHAT : SRV_EP_COMPLETION);
    case R_MODELS:
    case R_MODEL:
        if (!get)
            return method_not_allowed(c, conn, method, url, "GET");
        if (!authorized(s, conn, &e))
            return send_error(c, conn, &e);
        return handle_models(c, conn, arg);
    case R_HEALTH:
        if (!get)
            return method_not_allowed(c, conn, method, url, "GET");
        return send_text(c, conn, 200, "application/json", "{\"status\":\"ok\"}", 15, true);
    case R_METRICS: {
        if (!get)
            return method_not_allowed(c, conn, method, url, "GET");
        if (!authorized(s, conn, &e))
            return send_error(c, conn, &e);
        char *text = srv_metrics_render(&s->metrics);
        if (!text)
            return send_json(c, conn, 500, NULL);
        return send_text(c, conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), false);
    }
    case R_ASSET: {
        if (!get)
            return method_not_allowed(c, conn, method, url, "GET");
        const srv_asset *a = srv_web_find(url);
        return send_text(c, conn, 200, srv_mime_type(a->path), (const char *)a->data, a->size, true);
    }
    case R_NONE:
        break;
    }
    return fail(c, conn, SRV_ERR_NOT_FOUND, NULL, "unknown_url", "Invalid URL (%s %s)", method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct ponder_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    double now = srv_now_ms();
    if (c->status)
        srv_metrics_count_status(&s->metrics, c->status);
    if (c->generation && c->status == 200)
        srv_metrics_observe_latency(&s->metrics, (now - c->t_start_ms) / 1000.0);
    if (c->job) {
        pthread_mutex_lock(&s->mu);
        if (c->job->state != SRV_JOB_DONE && c->job->state != SRV_JOB_FAILED) {
            /* the client left (or the stream failed): free the slot at the next step */
            c->job->cancel = true;
            pthread_cond_signal(&s->engine_cv);
        }
        srv_job_unref(c->job);
        if (c->counted && --s->n_streams == 0)
            pthread_cond_broadcast(&s->streams_cv);
        pthread_mutex_unlock(&s->mu);
    }
    free(c->text_offset);
    free(c->out.data);
    srv_body_free(&c->body);
    free(c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct ponder_server *s = cls;
    if (!s->p.log)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    s->p.log(PONDER_LOG_DEBUG, msg, s->p.log_user);
}

ponder_status srv_http_listen(const srv_listen_params *p, struct MHD_Daemon **out, int *bound_port,
                              ponder_error *err)
{
    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    int rc = getaddrinfo(p->host, port, &hints, &ai);
    if (rc != 0 || !ai)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "cannot resolve host '%s': %s", p->host,
                                gai_strerror(rc));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)p->port, NULL, NULL, p->on_request, p->cls, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, p->on_completed, p->cls, MHD_OPTION_CONNECTION_LIMIT, p->connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, p->connection_timeout_s, MHD_OPTION_EXTERNAL_LOGGER, p->log, p->cls,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d)
        return ponder_error_set(err, PONDER_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)",
                                p->host, p->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info && info->port ? (int)info->port : p->port;
    *out = d;
    return PONDER_OK;
}

ponder_status srv_http_start(struct ponder_server *s, ponder_error *err)
{
    const srv_listen_params lp = {.host = s->host, .port = s->p.port, .on_request = on_request,
                                  .on_completed = on_completed, .log = mhd_log, .cls = s,
                                  .connection_limit = SRV_CONNECTION_LIMIT,
                                  .connection_timeout_s = SRV_CONNECTION_TIMEOUT_S};
    struct MHD_Daemon *d = NULL;
    ponder_status st = srv_http_listen(&lp, &d, &s->port, err);
    s->daemon = d;
    return st;
}

/* Streams of cancelled requests still have their error event and [DONE] to send;
 * give them a moment before the daemon closes every socket. */
#define SRV_SHUTDOWN_DRAIN_MS 2000

void srv_http_stop(struct ponder_server *s)
{
    pthread_mutex_lock(&s->mu);
    struct timespec ts;
    deadline(&ts, SRV_SHUTDOWN_DRAIN_MS);
    while (s->daemon && s->n_streams > 0)
        if (pthread_cond_timedwait(&s->streams_cv, &s->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->mu);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
