/*
 * inproc.c — the HTTP API without sockets (server.h's ponder_server_request_*): a thin
 * public face over call.c. The router's local backends ask through it, so a request is
 * answered with the bytes its HTTP client gets, without a loopback connection, an HTTP
 * parse or a second SSE framing on the way.
 */
#include "server/server_state.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_FREE_WAIT_MS 2000 /* the longest a free waits for the engine to let a job go */

struct ponder_server_request {
    srv_call call;
    http_buf out;                 /* the bytes handed out by the last read */
    bool ended;
    bool started;                 /* the engine took it (srv_call_start succeeded) */
};

static char *error_of(const http_api_error *e, int *status)
{
    *status = http_err_http_status(e->kind);
    return http_error_json(e);
}

int ponder_server_admit(ponder_server *s, char **error_json, double *retry_after_s)
{
    *error_json = NULL;
    if (retry_after_s)
        *retry_after_s = -1;
    http_api_error e;
    if (srv_admission_take(s, &e))
        return 200;
    int status;
    *error_json = error_of(&e, &status);
    if (retry_after_s && e.kind == HTTP_ERR_RATE_LIMIT)
        *retry_after_s = HTTP_RETRY_AFTER_S;
    return status;
}

void ponder_server_admit_release(ponder_server *s)
{
    srv_admission_give(s);
}

static int request_start(ponder_server *s, ponder_server_endpoint ep, const char *body, size_t len, bool admitted,
                         ponder_server_request **out, char **error_json, double *retry_after_s)
{
    *out = NULL;
    *error_json = NULL;
    if (retry_after_s)
        *retry_after_s = -1;
    http_api_error e;
    int status = 500;
    ponder_server_request *q = calloc(1, sizeof *q);
    if (!q) {
        if (admitted)
            srv_admission_give(s);
        return status;
    }
    srv_endpoint kind = ep == PONDER_SERVER_CHAT ? SRV_EP_CHAT : SRV_EP_COMPLETION;
    if (!srv_call_start(s, &q->call, kind, body, len, http_now_ms(), admitted, &e)) {
        *error_json = error_of(&e, &status);
        if (retry_after_s && e.kind == HTTP_ERR_RATE_LIMIT)
            *retry_after_s = HTTP_RETRY_AFTER_S;
        ponder_server_request_free(q);
        return status;
    }
    q->started = true;
    *out = q;
    return 200;
}

int ponder_server_request_start(ponder_server *s, ponder_server_endpoint ep, const char *body, size_t len,
                                ponder_server_request **out, char **error_json, double *retry_after_s)
{
    return request_start(s, ep, body, len, false, out, error_json, retry_after_s);
}

int ponder_server_request_start_admitted(ponder_server *s, ponder_server_endpoint ep, const char *body, size_t len,
                                         ponder_server_request **out, char **error_json, double *retry_after_s)
{
    return request_start(s, ep, body, len, true, out, error_json, retry_after_s);
}

bool ponder_server_request_streams(const ponder_server_request *q) { return srv_call_streams(&q->call); }

double ponder_server_request_ttft_ms(ponder_server_request *q)
{
    const srv_job *j = q->call.job;
    if (!j)
        return 0;
    pthread_mutex_lock(&q->call.s->mu);
    double ms = j->got_first ? j->t_first_ms - j->t_arrival_ms : 0;
    pthread_mutex_unlock(&q->call.s->mu);
    return ms;
}

ponder_server_read ponder_server_request_read(ponder_server_request *q, int wait_ms, const char **text, size_t *len)
{
    q->out.len = 0;
    q->out.oom = false;
    *text = "";
    *len = 0;
    if (q->ended)
        return PONDER_SERVER_READ_END;
    srv_fill f = srv_call_stream(&q->call, &q->out, wait_ms);
    if (q->out.oom) {
        /* the stream cannot go on: end it as the HTTP side would (a cut connection) */
        q->out.len = 0;
        f = SRV_FILL_END;
    }
    if (f == SRV_FILL_END)
        q->ended = true;
    *text = q->out.data ? q->out.data : "";
    *len = q->out.len;
    return f == SRV_FILL_MORE ? PONDER_SERVER_READ_MORE
         : f == SRV_FILL_END  ? PONDER_SERVER_READ_END
                              : PONDER_SERVER_READ_TIMEOUT;
}

bool ponder_server_request_wait(ponder_server_request *q, bool (*cancelled)(void *user), void *user, int poll_ms)
{
    return srv_call_wait(&q->call, cancelled, user, poll_ms);
}

int ponder_server_request_response(ponder_server_request *q, char **body)
{
    http_api_error e;
    int status = 200;
    *body = srv_call_response(&q->call, &e);
    if (!*body)
        *body = error_of(&e, &status);
    return status;
}

void ponder_server_request_free(ponder_server_request *q)
{
    if (!q)
        return;
    /* a job still running is cancelled and let go by the engine (at its next step) before
     * this returns, so its tokens and the cancel are counted (ponder_server_cancelled_tokens)
     * by the time the caller counts the request as cancelled */
    struct ponder_server *s = q->call.s;
    srv_job *j = q->call.job;
    if (q->started && s && j) {
        pthread_mutex_lock(&s->mu);
        if (j->state == SRV_JOB_INBOX || j->state == SRV_JOB_RUNNING) {
            j->cancel = true;
            pthread_cond_signal(&s->engine_cv);
        }
        for (int waited = 0; (j->state == SRV_JOB_INBOX || j->state == SRV_JOB_RUNNING) && !s->stopping &&
                             waited < SRV_FREE_WAIT_MS; waited += 10) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&j->cond, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    srv_call_end(&q->call);
    free(q->out.data);
    free(q);
}
