/*
 * guard.c — what libmicrohttpd 0.9.75 (the version Debian ships) lets through, checked
 * beside it:
 *
 * Framing. MHD takes Transfer-Encoding over Content-Length when both are sent, the first of
 * two Content-Length headers, any Transfer-Encoding value as "read to the end of the
 * connection" (so an unknown coding got no answer), a header name with whitespace before
 * its colon as a different header, and HTTP/1.1 without Host (its Host check needs
 * MHD_OPTION_STRICT_FOR_CLIENT and answers HTML). Behind a proxy that disagrees, each is
 * request smuggling. All of these are decided here from the headers as they arrived
 * (MHD_get_connection_values sees every duplicate) on the request's first access-handler
 * call, which MHD makes before it reads any body byte or sends "100 Continue"; an answer
 * queued then makes MHD drop the body and close the connection. MHD itself answers before
 * our handler runs in two cases: a Content-Length that is not a number (400) and one past
 * 2^64 (413), both with the connection closed, nothing after them answered. Its answer is
 * malformed in 0.9.75 and cannot be mended from outside: transmit_error_response builds
 * the header block itself and its state machine builds it again, so the status line and
 * headers go out twice before MHD's HTML body (its header parsing runs before any callback
 * that sees the headers, so these two cannot be taken over). A chunked body
 * cannot be refused mid-way (MHD only accepts an answer before the body or after it), so
 * past --max-body it is read and dropped, bounded by the body deadline below.
 *
 * Slow clients. MHD's connection timeout is an inactivity timer: a client that sends a byte
 * every few seconds resets it forever, and with a thread per connection a few hundred such
 * clients hold every slot. So each connection carries a deadline — its headers within the
 * header time-out, its body within the body time-out once the headers are in, the next
 * request within the idle time-out after an answer, none while a request is being handled
 * (generation takes its own time) — and a reaper thread shuts down the socket of any
 * connection past its deadline (shutdown, not close: MHD owns the descriptor and closes it
 * itself, after telling us in NOTIFY_CONNECTION_CLOSED, which drops the record under the
 * same lock, so a reused descriptor is never touched).
 */
#include "http/guard.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define GUARD_TICK_MS 100

ponder_listen_limits http_limits_resolve(const ponder_listen_limits *l)
{
    ponder_listen_limits r = l ? *l : (ponder_listen_limits){ 0 };
    if (r.max_connections <= 0)
        r.max_connections = HTTP_MAX_CONNECTIONS_DEFAULT;
    /* one address may hold at most half the connections: the other half stays open to
     * everyone else, and 500 slow clients on one address still leave room beside them */
    if (r.max_per_client == 0)
        r.max_per_client = r.max_connections / 2 > 0 ? r.max_connections / 2 : 1;
    if (r.header_timeout_s <= 0)
        r.header_timeout_s = HTTP_HEADER_TIMEOUT_S_DEFAULT;
    if (r.body_timeout_s <= 0)
        r.body_timeout_s = HTTP_BODY_TIMEOUT_S_DEFAULT;
    if (r.idle_timeout_s <= 0)
        r.idle_timeout_s = HTTP_IDLE_TIMEOUT_S_DEFAULT;
    return r;
}

/* ---- framing ---- */

typedef struct framing_scan {
    int n_cl, n_te, n_host;
    const char *cl, *te, *bad_name;
} framing_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    framing_scan *s = cls;
    if (!key[0] || strpbrk(key, " \t") != NULL) {
        if (!s->bad_name)
            s->bad_name = key;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        s->n_cl++;
        s->cl = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        s->n_te++;
        s->te = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        s->n_host++;
    return MHD_YES;
}

int http_framing_check(struct MHD_Connection *c, const char *version, size_t max_body, bool *has_body, char *msg,
                       size_t cap)
{
    framing_scan s = { 0 };
    *has_body = false;
    MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &s);
    if (s.bad_name) {
        snprintf(msg, cap, "Malformed header name '%.64s' (no whitespace may come before the colon).", s.bad_name);
        return 400;
    }
    if (version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && s.n_host != 1) {
        snprintf(msg, cap, "An HTTP/1.1 request needs exactly one Host header (%d given).", s.n_host);
        return 400;
    }
    if (s.n_cl > 0 && s.n_te > 0) {
        snprintf(msg, cap, "A request may not carry both Content-Length and Transfer-Encoding.");
        return 400;
    }
    if (s.n_cl > 1 || s.n_te > 1) {
        snprintf(msg, cap, "The %s header is repeated.", s.n_cl > 1 ? "Content-Length" : "Transfer-Encoding");
        return 400;
    }
    if (s.n_te) {
        if (strcasecmp(s.te, "chunked") != 0) {
            snprintf(msg, cap, "Unsupported Transfer-Encoding '%.64s' (only chunked is accepted).", s.te);
            return 400;
        }
        *has_body = true;
        return 0;
    }
    if (s.n_cl) {
        const char *p = s.cl;
        if (!*p) {
            snprintf(msg, cap, "Content-Length is empty.");
            return 400;
        }
        unsigned long long v = 0;
        bool over = false;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p)) {
                snprintf(msg, cap, "Content-Length '%.32s' is not a number.", s.cl);
                return 400;
            }
            if (v > (~0ull - 9) / 10)
                over = true;
            else
                v = v * 10 + (unsigned)(*p - '0');
        }
        if (over || v > max_body) {
            snprintf(msg, cap, "The request body (%.32s bytes declared) is larger than the server's limit of %zu bytes.",
                     s.cl, max_body);
            return 413;
        }
        *has_body = v > 0;
    }
    return 0;
}

/* ---- read deadlines ---- */

typedef struct guard_conn {
    int fd;
    double deadline_ms;  /* 0: none */
    const char *what;    /* what was late, for the log */
    struct guard_conn *prev, *next;
} guard_conn;

struct http_guard {
    ponder_listen_limits l;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    guard_conn *head;
    bool stop;
    pthread_t reaper;
    http_metrics *metrics;
    ponder_log_fn log;
    void *log_user;
};

static void *reaper_main(void *arg)
{
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GUARD_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        double now = http_now_ms();
        for (guard_conn *k = g->head; k; k = k->next) {
            if (k->deadline_ms <= 0 || now < k->deadline_ms)
                continue;
            k->deadline_ms = 0;
            if (g->metrics)
                http_metrics_count_timeout(g->metrics);
            /* MHD's thread sees end of file and closes the connection */
            shutdown(k->fd, SHUT_RDWR);
            http_logf(g->log, g->log_user, PONDER_LOG_DEBUG, "closed a connection: %s not received in time",
                      k->what);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

http_guard *http_guard_create(const ponder_listen_limits *resolved, ponder_log_fn log, void *log_user,
                              http_metrics *metrics)
{
    http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->l = *resolved;
    g->log = log;
    g->log_user = log_user;
    g->metrics = metrics;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_free(http_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    while (g->head) { /* none after MHD_stop_daemon; defensive */
        guard_conn *k = g->head;
        g->head = k->next;
        free(k);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void http_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    http_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        guard_conn *k = ci ? calloc(1, sizeof *k) : NULL;
        *socket_context = k;
        if (!k)
            return; /* out of memory: this connection has MHD's inactivity timer only */
        k->fd = ci->connect_fd;
        k->deadline_ms = http_now_ms() + 1000.0 * g->l.header_timeout_s;
        k->what = "the request's headers";
        pthread_mutex_lock(&g->mu);
        k->next = g->head;
        if (g->head)
            g->head->prev = k;
        g->head = k;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    guard_conn *k = *socket_context;
    if (!k)
        return;
    *socket_context = NULL;
    pthread_mutex_lock(&g->mu);
    if (k->prev)
        k->prev->next = k->next;
    else
        g->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&g->mu);
    free(k);
}

void http_guard_phase(http_guard *g, struct MHD_Connection *c, http_phase ph)
{
    if (!g)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    guard_conn *k = ci ? ci->socket_context : NULL;
    if (!k)
        return;
    double now = http_now_ms();
    pthread_mutex_lock(&g->mu);
    switch (ph) {
    case HTTP_PHASE_BODY:
        k->deadline_ms = now + 1000.0 * g->l.body_timeout_s;
        k->what = "the request's body";
        break;
    case HTTP_PHASE_HANDLING:
        k->deadline_ms = 0;
        break;
    case HTTP_PHASE_IDLE:
        k->deadline_ms = now + 1000.0 * g->l.idle_timeout_s;
        k->what = "the next request on a kept-alive connection";
        break;
    }
    pthread_mutex_unlock(&g->mu);
}
