/*
 * call.c — one request from its body to its last byte, without sockets: prepared
 * (prompt.c), handed to the engine thread, then read back either whole (a completion
 * object) or as SSE text, a few events at a time. The public in-process API (inproc.c),
 * which the router's local backends call, is a thin face over it.
 */
#include "server/server_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void make_id(struct ponder_server *s, srv_endpoint kind, char *out, size_t cap)
{
    http_openai_id(&s->id_state, kind == SRV_EP_CHAT ? "chatcmpl" : "cmpl", out, cap);
}

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
    if (!j->think_res && st->prompt_tokens_evaluated < st->prompt_tokens)
        st->prompt_tokens_cached = st->prompt_tokens - st->prompt_tokens_evaluated;
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


/* Appends the SSE text for one event to out (s->mu not held; e is stable: the engine
 * only appends, and realloc moved the array, not the texts). */
static void stream_event(srv_call *c, http_buf *out, const srv_event *e, const srv_stats *final_stats)
{
    srv_job *j = c->job;
    struct ponder_server *s = c->s;
    if (e->choice < 0 || e->choice >= srv_request_n_choices(&j->req))
        return;
    bool calls = false;
    if (c->tool_text) { /* tools: text held back while it may be a call */
        if (e->text_len || e->lp)
            srv_tools_stream_text(c, out, e, e->lp);
        if (e->finish == PONDER_FINISH_STOP || e->finish == PONDER_FINISH_LENGTH)
            calls = srv_tools_stream_finish(c, out, e->choice);
    } else if (e->text_len || e->lp) {
        srv_delta d = { 0 };
        d.choice = e->choice;
        d.text = e->text;
        d.text_len = e->text_len;
        d.lp = e->lp;
        d.text_offset = c->text_offset ? c->text_offset[e->choice] : 0;
        char *chunk = srv_build_chunk(&j->req, &c->meta, s->tok, &d, NULL);
        if (chunk) {
            http_buf_append(out, chunk, strlen(chunk));
            free(chunk);
        }
        if (c->text_offset && d.lp) {
            char buf[256];
            int32_t len = ponder_tokenizer_token_to_piece(s->tok, e->lp->chosen.token, buf, sizeof buf, true);
            c->text_offset[e->choice] += len > 0 ? (size_t)len : 0;
        }
    }
    if (e->finish != PONDER_FINISH_NONE && ++c->n_fin < srv_request_n_choices(&j->req))
        final_stats = NULL; /* the ponder object rides on the last choice's final chunk */
    if (e->finish == PONDER_FINISH_STOP || e->finish == PONDER_FINISH_LENGTH) {
        srv_delta d = { 0 };
        d.choice = e->choice;
        d.finish = e->finish;
        d.finish_tool_calls = calls;
        char *chunk = srv_build_chunk(&j->req, &c->meta, s->tok, &d, j->req.include_usage ? NULL : final_stats);
        if (chunk) {
            http_buf_append(out, chunk, strlen(chunk));
            free(chunk);
        }
    }
}

/* echo: the prompt's text of a completions choice (choices are prompt-major), appended to
 * out — the text as sent, or token ids detokenized as that text (a leading BOS, which a text
 * prompt gets from the tokenizer, left out so the SPM space prefix goes too). */
static void append_echo(const srv_call *c, int32_t choice, http_buf *out)
{
    const srv_request *r = &c->job->req;
    const srv_prompt *p = &r->prompts[r->n_prompts > 1 ? choice / r->n : 0];
    if (p->text) {
        http_buf_append(out, p->text, p->len);
        return;
    }
    char *text = NULL;
    ponder_error err;
    const bool bos = p->n_ids > 0 && p->ids[0] == ponder_tokenizer_bos(c->s->tok);
    if (ponder_tokenizer_decode(c->s->tok, p->ids + bos, (size_t)p->n_ids - bos, false, true, &text, &err) != PONDER_OK)
        out->oom = true; /* the ids were checked against the vocabulary: only memory fails */
    else
        http_buf_append(out, text, strlen(text));
    free(text);
}

static void stream_tail(srv_call *c, http_buf *out)
{
    srv_job *j = c->job;
    if (j->aborted) {
        http_api_error e;
        http_fail(&e, j->shutdown ? HTTP_ERR_UNAVAILABLE : HTTP_ERR_INTERNAL, NULL, NULL, "%s",
                  j->shutdown ? "The server is shutting down." : "Generation failed; see the server log.");
        char *json = http_error_json(&e);
        if (json) {
            http_buf_printf(out, "data: %s\n\n", json);
            free(json);
        }
    } else if (j->req.include_usage) {
        srv_stats st;
        fill_stats(j, &st);
        char *chunk = srv_build_usage_chunk(&j->req, &c->meta, &st);
        if (chunk) {
            http_buf_append(out, chunk, strlen(chunk));
            free(chunk);
        }
    }
    http_buf_append(out, "data: [DONE]\n\n", 14);
}

/* Admission before work: a place among the slots and the queue is taken before a body is
 * parsed, rendered or tokenized (that work, ~50x the body in memory for a body of tiny
 * messages, was done first and then refused). */
bool srv_admission_take(struct ponder_server *s, http_api_error *e)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return http_fail(e, HTTP_ERR_UNAVAILABLE, NULL, NULL, "The server is shutting down.");
    }
    if (s->n_inflight + s->n_admitted >= s->p.n_parallel + s->p.queue_max) {
        int32_t inflight = s->n_inflight + s->n_admitted;
        pthread_mutex_unlock(&s->mu);
        return http_fail(e, HTTP_ERR_RATE_LIMIT, NULL, "rate_limit_exceeded",
                         "The server is busy: %d requests in flight (%d slots, queue of %d). Retry after %d s.",
                         (int)inflight, (int)s->p.n_parallel, (int)s->p.queue_max, HTTP_RETRY_AFTER_S);
    }
    s->n_admitted++;
    pthread_mutex_unlock(&s->mu);
    return true;
}

void srv_admission_give(struct ponder_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->n_admitted--;
    pthread_mutex_unlock(&s->mu);
}

void srv_prepare_enter(struct ponder_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->n_preparing >= SRV_PREPARE_MAX)
        pthread_cond_wait(&s->prepare_cv, &s->mu);
    s->n_preparing++;
    pthread_mutex_unlock(&s->mu);
}

void srv_prepare_leave(struct ponder_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->n_preparing--;
    pthread_cond_signal(&s->prepare_cv);
    pthread_mutex_unlock(&s->mu);
}

bool srv_call_start(struct ponder_server *s, srv_call *c, srv_endpoint kind, const char *body, size_t len,
                    double t_arrival_ms, bool admitted, http_api_error *e)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    srv_job *j = c->job = srv_job_create(s);
    if (!j) {
        if (admitted)
            srv_admission_give(s);
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    }
    j->t_arrival_ms = t_arrival_ms;
    if (!admitted && !srv_admission_take(s, e))
        return false;
    bool ok = srv_admit_body(s, body, len, e);
    if (ok) {
        srv_prepare_enter(s);
        ok = srv_job_prepare(s, j, kind, body, len, e);
        srv_prepare_leave(s);
    }
    pthread_mutex_lock(&s->mu);
    s->n_admitted--;
    if (ok && s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return http_fail(e, HTTP_ERR_UNAVAILABLE, NULL, NULL, "The server is shutting down.");
    }
    if (!ok) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    srv_engine_enqueue(s, j); /* its place was held since admission */
    while (j->state == SRV_JOB_INBOX)
        pthread_cond_wait(&j->cond, &s->mu);
    if (j->state == SRV_JOB_FAILED) {
        bool range = j->fail_status == PONDER_ERR_RANGE;
        http_fail(e, range ? HTTP_ERR_BAD_REQUEST : j->shutdown ? HTTP_ERR_UNAVAILABLE : HTTP_ERR_INTERNAL, NULL,
                  range ? "context_length_exceeded" : NULL, "%s", j->fail_msg);
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    pthread_mutex_unlock(&s->mu);
    make_id(s, j->req.kind, c->meta.id, sizeof c->meta.id);
    c->meta.created = (int64_t)time(NULL);
    c->meta.model = s->model_id;
    c->meta.fingerprint = s->fingerprint;
    if (j->req.stream && j->req.kind == SRV_EP_COMPLETION && j->req.logprobs &&
        !(c->text_offset = calloc((size_t)srv_request_n_choices(&j->req), sizeof *c->text_offset)))
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    if (!srv_tools_stream_begin(c))
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    return true;
}

bool srv_call_streams(const srv_call *c) { return c->job->req.stream; }

bool srv_call_wait(srv_call *c, bool (*gone)(void *user), void *user, int poll_ms)
{
    struct ponder_server *s = c->s;
    srv_job *j = c->job;
    /* a waiting caller cannot be told that its client left, so the wait asks every
     * poll_ms and cancels the job (freeing its sequences at the next step) */
    bool left = false;
    pthread_mutex_lock(&s->mu);
    struct timespec next;
    deadline(&next, poll_ms);
    while (j->state == SRV_JOB_RUNNING) {
        /* every token wakes us (the cond is the job's), so check by the clock */
        if (pthread_cond_timedwait(&j->cond, &s->mu, &next) == ETIMEDOUT) {
            if (!left && gone && gone(user)) {
                left = true;
                j->cancel = true;
                pthread_cond_signal(&s->engine_cv);
            }
            deadline(&next, poll_ms);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return !left;
}

char *srv_call_response(srv_call *c, http_api_error *e)
{
    struct ponder_server *s = c->s;
    srv_job *j = c->job;
    /* DONE: the engine no longer touches the job's events */
    if (j->aborted) {
        http_fail(e, j->shutdown ? HTTP_ERR_UNAVAILABLE : HTTP_ERR_INTERNAL, NULL, NULL, "%s",
                  j->shutdown ? "The server is shutting down." : "Generation failed; see the server log.");
        return NULL;
    }
    int32_t n = srv_request_n_choices(&j->req);
    srv_choice *ch = calloc((size_t)n, sizeof *ch);
    http_buf *texts = calloc((size_t)n, sizeof *texts);
    bool oom = !ch || !texts;
    /* each choice's logprobs sized by its own tokens (they were sized by every choice's
     * events: choices x all tokens, quadratic in a request of 128 prompts) */
    for (size_t k = 0; !oom && j->req.logprobs && k < j->n_ev; k++)
        if (j->ev[k].lp && j->ev[k].choice >= 0 && j->ev[k].choice < n)
            ch[j->ev[k].choice].n_lp++;
    const srv_logprob **lps = NULL; /* every choice's pointers, in one block */
    size_t n_lps = 0;
    for (int32_t i = 0; !oom && j->req.logprobs && i < n; i++)
        n_lps += (size_t)ch[i].n_lp;
    if (!oom && j->req.logprobs && !(lps = malloc((n_lps ? n_lps : 1) * sizeof *lps)))
        oom = true;
    for (int32_t i = 0, at = 0; !oom && j->req.logprobs && i < n; i++) {
        ch[i].lp = lps + at;
        at += ch[i].n_lp;
        ch[i].n_lp = 0;
    }
    for (int32_t i = 0; !oom && j->req.echo && i < n; i++)
        append_echo(c, i, &texts[i]);
    for (size_t k = 0; !oom && k < j->n_ev; k++) {
        const srv_event *e = &j->ev[k];
        if (e->choice < 0 || e->choice >= n)
            continue;
        srv_choice *cc = &ch[e->choice];
        http_buf_append(&texts[e->choice], e->text, e->text_len);
        if (e->lp)
            ((const srv_logprob **)cc->lp)[cc->n_lp++] = e->lp;
        if (e->finish != PONDER_FINISH_NONE)
            cc->finish = e->finish;
    }
    for (int32_t i = 0; !oom && i < n; i++) {
        oom = texts[i].oom;
        ch[i].text = texts[i].data;
        ch[i].text_len = texts[i].len;
    }
    /* tools: each choice's text parsed into calls and the content around them */
    ponder_tool_calls *tc = j->req.tools_active && !oom ? calloc((size_t)n, sizeof *tc) : NULL;
    oom = oom || (j->req.tools_active && !tc);
    for (int32_t i = 0; tc && !oom && i < n; i++) {
        char **ids = NULL;
        oom = !srv_tools_parse(s, &j->req, ch[i].text ? ch[i].text : "", ch[i].text_len, &tc[i], &ids, &ch[i].n_tc);
        ch[i].tc = &tc[i];
        ch[i].tc_ids = ids;
    }
    char *json = NULL;
    if (!oom) {
        srv_stats st;
        fill_stats(j, &st);
        json = srv_build_response(&j->req, &c->meta, s->tok, ch, &st);
    }
    free(lps);
    for (int32_t i = 0; ch && i < n; i++) {
        free(texts ? texts[i].data : NULL);
        srv_tools_ids_free((char **)ch[i].tc_ids, ch[i].n_tc);
        if (tc)
            ponder_tool_calls_clear(&tc[i]);
    }
    free(tc);
    free(ch);
    free(texts);
    if (!json)
        http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    return json;
}

/* Appends the next bytes of the stream to out, waiting up to wait_ms for them. */
srv_fill srv_call_stream(srv_call *c, http_buf *out, int wait_ms)
{
    srv_job *j = c->job;
    struct ponder_server *s = c->s;
    if (c->ended)
        return SRV_FILL_END;
    if (!c->started) {
        c->started = true;
        if (j->req.kind == SRV_EP_CHAT) {
            for (int32_t i = 0; i < srv_request_n_choices(&j->req); i++) {
                srv_delta d = { 0 };
                d.choice = i;
                d.role = true;
                char *chunk = srv_build_chunk(&j->req, &c->meta, s->tok, &d, NULL);
                if (chunk) {
                    http_buf_append(out, chunk, strlen(chunk));
                    free(chunk);
                }
            }
            return SRV_FILL_MORE;
        }
        if (j->req.echo) { /* one chunk per choice with its prompt, before any answer text */
            for (int32_t i = 0; i < srv_request_n_choices(&j->req); i++) {
                http_buf text = { 0 };
                append_echo(c, i, &text);
                srv_delta d = { .choice = i, .text = text.data ? text.data : "", .text_len = text.len };
                char *chunk = text.oom || !text.len ? NULL : srv_build_chunk(&j->req, &c->meta, s->tok, &d, NULL);
                if (chunk) {
                    http_buf_append(out, chunk, strlen(chunk));
                    free(chunk);
                }
                free(text.data);
            }
            return SRV_FILL_MORE;
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
                    stream_event(c, out, &copy[k], done ? &st : NULL);
                free(copy);
                return SRV_FILL_MORE;
            }
        }
        if (j->state == SRV_JOB_DONE && c->ev_pos >= j->n_ev) {
            pthread_mutex_unlock(&s->mu);
            stream_tail(c, out);
            c->ended = true;
            return SRV_FILL_END;
        }
        struct timespec ts;
        deadline(&ts, wait_ms);
        if (pthread_cond_timedwait(&j->cond, &s->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            return SRV_FILL_TIMEOUT;
        }
    }
}

void srv_call_end(srv_call *c)
{
    struct ponder_server *s = c->s;
    srv_job *j = c->job;
    if (!j)
        return;
    pthread_mutex_lock(&s->mu);
    if (j->state == SRV_JOB_INBOX || j->state == SRV_JOB_RUNNING) {
        /* the client left (or the stream failed): free the slot at the next step */
        j->cancel = true;
        pthread_cond_signal(&s->engine_cv);
    }
    srv_job_unref(j);
    pthread_mutex_unlock(&s->mu);
    free(c->text_offset);
    srv_tools_stream_end(c);
    memset(c, 0, sizeof *c);
}
