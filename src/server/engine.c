/*
 * engine.c — the one thread that owns the ponder_gen. It moves jobs from the inbox into
 * gen, cancels the ones whose clients left, runs one batched step over everything in
 * flight (continuous batching: requests join and leave between steps), and publishes
 * each step's tokens into the jobs' event lists for the handler threads.
 */
#include "server/server_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Idle poll while gen has requests it cannot admit yet (no free cells): short enough
 * that a freed slot is used promptly, long enough not to spin. */
#define SRV_ENGINE_IDLE_WAIT_MS 5

srv_job *srv_job_create(struct ponder_server *s)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->refs = 1;
    j->s = s;
    pthread_cond_init(&j->cond, NULL);
    return j;
}

void srv_job_unref(srv_job *j)
{
    if (!j || --j->refs > 0)
        return;
    for (size_t i = 0; i < j->n_ev; i++) {
        free(j->ev[i].text);
        free(j->ev[i].lp);
    }
    free(j->ev);
    for (int32_t i = 0; i < j->n_subs; i++)
        free(j->subs[i].prompt);
    free(j->subs);
    ponder_think_job_free(j->think);
    ponder_think_result_free(j->think_res);
    srv_request_free(&j->req);
    pthread_cond_destroy(&j->cond);
    free(j);
}

void srv_engine_enqueue(struct ponder_server *s, srv_job *j)
{
    j->refs++; /* the engine's reference */
    j->state = SRV_JOB_INBOX;
    j->next = NULL;
    if (s->inbox_tail)
        s->inbox_tail->next = j;
    else
        s->inbox_head = j;
    s->inbox_tail = j;
    s->n_inflight++;
    pthread_cond_signal(&s->engine_cv);
}

/* gen callback (engine thread, s->mu not held). */
static void on_event(const ponder_gen_event *ev, void *user)
{
    srv_sub *sub = user;
    srv_job *j = sub->job;
    struct ponder_server *s = j->s;
    double now = http_now_ms();
    char *text = NULL;
    if (ev->text_len) {
        text = malloc(ev->text_len);
        if (text)
            memcpy(text, ev->text, ev->text_len);
    }
    srv_logprob *lp = NULL; /* j->req is read-only once the job runs */
    if (ev->token != PONDER_TOKEN_NULL && j->req.logprobs) {
        int32_t n_top = ev->n_top < PONDER_GEN_MAX_TOP_LOGPROBS ? ev->n_top : PONDER_GEN_MAX_TOP_LOGPROBS;
        if (n_top > j->req.top_logprobs)
            n_top = j->req.top_logprobs;
        n_top = ev->top && n_top > 0 ? n_top : 0;
        if ((lp = malloc(SRV_LOGPROB_BYTES(n_top)))) { /* only the alternatives asked for */
            lp->chosen = ev->chosen;
            for (int32_t i = 0; i < n_top; i++)
                lp->top[i] = ev->top[i];
            lp->n_top = n_top;
        }
    }
    pthread_mutex_lock(&s->mu);
    if (j->n_ev == j->cap_ev) {
        size_t cap = j->cap_ev ? j->cap_ev * 2 : 64;
        srv_event *e = realloc(j->ev, cap * sizeof *e);
        if (!e) {
            /* out of memory: drop the text rather than the finish, so the client still ends */
            free(text);
            free(lp);
            text = NULL;
            if (ev->finish == PONDER_FINISH_NONE) {
                pthread_mutex_unlock(&s->mu);
                return;
            }
            j->aborted = true;
            j->n_finished++;
            pthread_cond_broadcast(&j->cond);
            pthread_mutex_unlock(&s->mu);
            return;
        }
        j->ev = e;
        j->cap_ev = cap;
    }
    srv_event *e = &j->ev[j->n_ev++];
    memset(e, 0, sizeof *e);
    e->choice = sub->choice_base + ev->choice;
    e->text = text;
    e->text_len = text ? ev->text_len : 0;
    e->has_token = ev->token != PONDER_TOKEN_NULL;
    e->finish = ev->finish;
    e->lp = lp;
    if (e->has_token && !j->got_first) {
        j->got_first = true;
        j->t_first_ms = now;
    }
    j->t_last_ms = now;
    if (ev->finish != PONDER_FINISH_NONE) {
        j->n_finished++;
        if (ev->finish == PONDER_FINISH_CANCELLED || ev->finish == PONDER_FINISH_ERROR)
            j->aborted = true;
    }
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&s->mu);
}

static void fail_job(struct ponder_server *s, srv_job *j, ponder_status st, const char *msg)
{
    j->state = SRV_JOB_FAILED;
    j->fail_status = st;
    snprintf(j->fail_msg, sizeof j->fail_msg, "%s", msg);
    s->n_inflight--;
    pthread_cond_broadcast(&j->cond);
    srv_job_unref(j);
}

/* Marks a running job finished (s->mu held) and drops the engine's reference. */
static void finish_job(struct ponder_server *s, srv_job *j, bool aborted)
{
    j->state = SRV_JOB_DONE;
    j->aborted = j->aborted || aborted;
    if (j->cancel) {
        s->cancelled_prompt += j->usage.prompt_tokens;
        s->cancelled_completion += j->usage.completion_tokens;
    }
    if (!j->got_first)
        j->t_first_ms = http_now_ms();
    if (j->t_last_ms < j->t_first_ms)
        j->t_last_ms = j->t_first_ms;
    s->n_inflight--;
    pthread_cond_broadcast(&j->cond);
    srv_job_unref(j);
}

/* Adds a finished (or cancelled) gen request's usage to the job's and forgets it. */
static void release_sub(struct ponder_server *s, srv_sub *sub)
{
    ponder_gen_usage u;
    if (ponder_gen_usage_of(s->gen, sub->gen_id, &u, NULL) == PONDER_OK) {
        ponder_gen_usage *t = &sub->job->usage;
        t->prompt_tokens += u.prompt_tokens;
        t->prompt_tokens_evaluated += u.prompt_tokens_evaluated;
        t->completion_tokens += u.completion_tokens;
        t->draft_tokens += u.draft_tokens;
        t->draft_accepted += u.draft_accepted;
        t->flops += u.flops;
    }
    ponder_gen_release(s->gen, sub->gen_id);
    sub->gen_id = 0;
}

static ponder_status submit_sub(struct ponder_server *s, srv_sub *sub, ponder_error *err)
{
    const srv_request *r = &sub->job->req;
    ponder_gen_request g = { 0 };
    if (sub->job->think) {
        /* the strategy's next round; caller checked there is one */
        if (!ponder_think_job_next(sub->job->think, &g))
            return ponder_error_set(err, PONDER_ERR_INTERNAL, "the strategy has no round to run");
        sub->n_choices = g.n_choices;
        return ponder_gen_submit(s->gen, &g, &sub->gen_id, err);
    }
    g.prompt = sub->prompt;
    g.n_prompt = sub->n_prompt;
    g.n_choices = r->n;
    g.max_tokens = r->max_tokens > 0 ? r->max_tokens : 0;
    g.sampling = r->sampling;
    g.presence_penalty = r->presence_penalty;
    g.frequency_penalty = r->frequency_penalty;
    g.stop = (const char *const *)r->stop;
    g.n_stop = r->n_stop;
    g.grammar = r->grammar;
    g.no_cache_prompt = !r->cache_prompt;
    g.logprobs = r->logprobs;
    g.top_logprobs = r->logprobs ? r->top_logprobs : 0;
    g.on_event = on_event;
    g.user = sub;
    return ponder_gen_submit(s->gen, &g, &sub->gen_id, err);
}

/* Submits every prompt of j; on a refusal the ones already queued are withdrawn. */
static ponder_status submit(struct ponder_server *s, srv_job *j, ponder_error *err)
{
    for (int32_t i = 0; i < j->n_subs; i++) {
        ponder_status st = submit_sub(s, &j->subs[i], err);
        if (st != PONDER_OK) {
            for (int32_t k = 0; k < i; k++) {
                ponder_gen_release(s->gen, j->subs[k].gen_id);
                j->subs[k].gen_id = 0;
            }
            j->subs[i].gen_id = 0;
            return st;
        }
    }
    return PONDER_OK;
}

/* Queue depth, running requests and live sequences for ponder_server_load (the router's
 * /metrics; s->mu held). gen admits
 * in submission order, so the running ones are the first n_pending - n_queued. */
static void publish_load(struct ponder_server *s)
{
    int64_t inbox = 0;
    for (srv_job *j = s->inbox_head; j; j = j->next)
        inbox++;
    int32_t pending = ponder_gen_n_pending(s->gen), queued = ponder_gen_n_queued(s->gen);
    int64_t active = pending - queued, seqs = 0, k = 0;
    for (srv_job *j = s->running; j && k < active; j = j->next, k++) {
        if (j->think) { /* its rounds publish no events: the round in flight counts */
            seqs += j->subs[0].gen_id ? j->subs[0].n_choices : 0;
            continue;
        }
        int32_t left = srv_request_n_choices(&j->req) - j->n_finished;
        seqs += left > 0 ? left : 0;
    }
    s->load_queued = inbox + queued;
    s->load_active = active;
    s->load_sequences = seqs;
}

/* Removes j from the running list (s->mu held). */
static void unlink_running(struct ponder_server *s, srv_job *j)
{
    for (srv_job **p = &s->running; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            j->next = NULL;
            return;
        }
    }
}

/* Publishes text as choice 0's only event (s->mu held). */
static void publish_final(srv_job *j, const char *text, size_t len, ponder_finish finish)
{
    srv_event *e = j->n_ev < j->cap_ev ? &j->ev[j->n_ev] : NULL;
    if (!e) {
        size_t cap = j->cap_ev ? j->cap_ev * 2 : 4;
        srv_event *ev = realloc(j->ev, cap * sizeof *ev);
        if (!ev) {
            j->aborted = true;
            return;
        }
        j->ev = ev;
        j->cap_ev = cap;
        e = &j->ev[j->n_ev];
    }
    memset(e, 0, sizeof *e);
    e->text = len ? malloc(len) : NULL;
    if (len && !e->text) {
        j->aborted = true;
        return;
    }
    if (len)
        memcpy(e->text, text, len);
    e->text_len = len;
    e->finish = finish == PONDER_FINISH_LENGTH ? PONDER_FINISH_LENGTH : PONDER_FINISH_STOP;
    j->n_ev++;
    j->n_finished++;
    pthread_cond_broadcast(&j->cond);
}

/* A strategy's round finished: vote, then submit the next round or publish the winner
 * (s->mu held; gen calls here run no callbacks: the rounds have no on_event). */
static void think_round_done(struct ponder_server *s, srv_job *j, srv_sub *sub)
{
    ponder_error err;
    ponder_status st = ponder_think_job_collect(j->think, s->gen, sub->gen_id, &err);
    release_sub(s, sub);
    ponder_gen_request next;
    if (st == PONDER_OK && ponder_think_job_next(j->think, &next))
        st = submit_sub(s, sub, &err);
    else if (st == PONDER_OK && !sub->gen_id) {
        st = ponder_think_job_finish(j->think, &j->think_res, &err);
        if (st == PONDER_OK) {
            /* no chain with an answer: the first chain (seed + 0) speaks, so the client
             * still gets text; "answer" is null then */
            ponder_think_result *r = j->think_res;
            if (r->best < 0 && r->n_samples > 0)
                r->best = 0;
            const ponder_think_sample *best = r->best >= 0 ? &r->samples[r->best] : NULL;
            publish_final(j, best ? best->text : "", best ? best->text_len : 0,
                          best ? best->finish : PONDER_FINISH_STOP);
        }
        sub->done = true;
    }
    if (st != PONDER_OK) {
        srv_log(s, PONDER_LOG_ERROR, "strategy failed: %s", err.msg);
        j->aborted = true;
        sub->done = true;
    }
}

/* Moves the requests gen has finished out of it; a job ends with its last prompt. */
static void collect_finished(struct ponder_server *s)
{
    srv_job *j = s->running;
    while (j) {
        srv_job *next = j->next;
        bool all = true;
        for (int32_t i = 0; i < j->n_subs; i++) {
            srv_sub *sub = &j->subs[i];
            if (!sub->done && sub->gen_id && ponder_gen_done(s->gen, sub->gen_id)) {
                if (j->think)
                    think_round_done(s, j, sub);
                else {
                    release_sub(s, sub);
                    sub->done = true;
                }
            }
            all = all && sub->done;
        }
        if (all) {
            unlink_running(s, j);
            finish_job(s, j, false);
        }
        j = next;
    }
}

/* Cancels jobs whose client left, or all when stopping. Called with s->mu held; drops it
 * around gen calls since cancelling may deliver the choices' final events. */
static void cancel_jobs(struct ponder_server *s, bool all)
{
    for (;;) {
        srv_job *victim = NULL;
        for (srv_job *j = s->running; j; j = j->next) {
            if (all || j->cancel) {
                victim = j;
                break;
            }
        }
        if (!victim)
            return;
        unlink_running(s, victim);
        for (int32_t i = 0; i < victim->n_subs; i++) {
            srv_sub *sub = &victim->subs[i];
            if (!sub->gen_id)
                continue;
            pthread_mutex_unlock(&s->mu);
            ponder_gen_cancel(s->gen, sub->gen_id);
            pthread_mutex_lock(&s->mu);
            release_sub(s, sub);
            sub->done = true;
        }
        finish_job(s, victim, true);
    }
}

static void wait_ms(struct ponder_server *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&s->engine_cv, &s->mu, &ts);
}

void *srv_engine_main(void *arg)
{
    struct ponder_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && !s->inbox_head && !s->running && !s->embed_head)
            pthread_cond_wait(&s->engine_cv, &s->mu);
        if (s->stopping)
            break;
        srv_engine_run_embeds(s);
        /* admit new requests; submit only copies, no callbacks run */
        while (s->inbox_head) {
            srv_job *j = s->inbox_head;
            s->inbox_head = j->next;
            if (!s->inbox_head)
                s->inbox_tail = NULL;
            j->next = NULL;
            if (j->cancel) {
                j->aborted = true;
                j->state = SRV_JOB_DONE;
                s->n_inflight--;
                pthread_cond_broadcast(&j->cond);
                srv_job_unref(j);
                continue;
            }
            ponder_error err;
            if (submit(s, j, &err) != PONDER_OK) {
                fail_job(s, j, err.code, err.msg);
                continue;
            }
            j->state = SRV_JOB_RUNNING;
            srv_job **p = &s->running;
            while (*p)
                p = &(*p)->next;
            *p = j;
            pthread_cond_broadcast(&j->cond);
        }
        cancel_jobs(s, false);
        publish_load(s);
        if (!s->running)
            continue;
        pthread_mutex_unlock(&s->mu);
        bool did_work = false;
        ponder_error err;
        ponder_status st = ponder_gen_step(s->gen, &did_work, &err);
        pthread_mutex_lock(&s->mu);
        if (st != PONDER_OK) {
            srv_log(s, PONDER_LOG_ERROR, "decode step failed: %s; ending the requests in flight", err.msg);
            cancel_jobs(s, true);
        }
        collect_finished(s);
        publish_load(s);
        if (!did_work && st == PONDER_OK && s->running && !s->inbox_head)
            wait_ms(s, SRV_ENGINE_IDLE_WAIT_MS);
    }
    /* shutting down: refuse what was not started, end what was */
    while (s->inbox_head) {
        srv_job *j = s->inbox_head;
        s->inbox_head = j->next;
        j->next = NULL;
        j->shutdown = true;
        fail_job(s, j, PONDER_ERR_INTERNAL, "the server is shutting down");
    }
    s->inbox_tail = NULL;
    srv_engine_drop_embeds(s);
    for (srv_job *j = s->running; j; j = j->next)
        j->shutdown = true;
    cancel_jobs(s, true);
    publish_load(s);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
