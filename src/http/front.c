/*
 * front.c — the libmicrohttpd front end `ponder serve` and the router share: resolve the
 * host, bind, one thread per connection, read the body (past the limit it is read and
 * dropped, so the client gets its 413 rather than a reset), hand the whole request to the
 * caller's handler, and answer with the same headers everywhere. It counts every answer's
 * status and a generation's latency in the caller's metrics.
 *
 * One thread per connection: a handler may block (wait for an engine or a backend), and a
 * stream's fill callback may wait for its next bytes. What libmicrohttpd does not refuse
 * itself — ambiguous framing, slow clients — guard.c does beside it: the framing check on
 * each request's first handler call, read deadlines per connection, and the connection
 * caps (in all and per client address) are MHD's own options.
 */
#include "http/guard.h"

#include <microhttpd.h>

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define HTTP_STREAM_BLOCK_BYTES 16384

struct http_front {
    http_front_params p;
    char host[256];
    char *api_key;
    struct MHD_Daemon *daemon;
    http_guard *guard;
    ponder_listen_limits limits;  /* resolved */
    int port;
    int64_t inflight;             /* atomic */
};

struct http_req {
    http_front *f;
    struct MHD_Connection *conn;
    const char *method, *url;     /* MHD's, valid for the request */
    double t_start_ms;
    http_body body;
    int status;                   /* of the answer; 0: none yet */
    bool http11;                  /* HTTP/1.1: an interim 100 may be sent (the half-close probe) */
    bool probed;                  /* that probe was sent */
    bool close;                   /* the answer closes the connection (bad framing) */
    bool handled;
    bool generation;
    void (*done_fn)(void *user);
    void *done_user;
    /* a stream */
    http_stream_fill_fn fill;
    void *fill_cls;
    http_buf out;
    size_t out_pos;
    bool ended;
};

const char *http_req_method(const http_req *q) { return q->method; }
const char *http_req_url(const http_req *q) { return q->url; }
bool http_req_body_too_large(const http_req *q) { return q->body.too_large; }
size_t http_req_max_body(const http_req *q) { return q->f->p.max_body_bytes; }
double http_req_start_ms(const http_req *q) { return q->t_start_ms; }
bool http_req_is_get(const http_req *q) { return !strcmp(q->method, "GET") || !strcmp(q->method, "HEAD"); }
bool http_req_is_post(const http_req *q) { return !strcmp(q->method, "POST"); }

const char *http_req_body(const http_req *q, size_t *len)
{
    *len = q->body.len;
    return q->body.data ? q->body.data : "";
}

void http_req_set_generation(http_req *q)
{
    if (q->generation)
        return;
    q->generation = true;
    __atomic_add_fetch(&q->f->inflight, 1, __ATOMIC_RELAXED);
}

void http_req_set_outcome(http_req *q, int status)
{
    if (q->status)
        q->status = status;
}

void http_req_on_done(http_req *q, void (*fn)(void *user), void *user)
{
    q->done_fn = fn;
    q->done_user = user;
}

bool http_req_authorized(const http_req *q, http_api_error *e)
{
    const char *want = q->f->api_key;
    if (!want)
        return true;
    const char *h = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return http_fail(e, HTTP_ERR_UNAUTHORIZED, NULL, "invalid_api_key",
                         "You didn't provide an API key. You need to provide your API key in an Authorization "
                         "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
    const char *key = h + 7;
    size_t a = strlen(key), b = strlen(want);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++) /* no early exit: the time says nothing about the key */
        diff |= (unsigned)(key[i] ^ want[i]);
    if (diff)
        return http_fail(e, HTTP_ERR_UNAUTHORIZED, NULL, "invalid_api_key", "Incorrect API key provided.");
    return true;
}

/* Whether the peer has closed the connection: an orderly close reads as end of file, a
 * reset as an error; nothing to read (EAGAIN) means it is still there. Only peeks, so the
 * bytes of a pipelined next request stay for MHD (and hide a close behind them). */
bool http_req_peer_gone(http_req *q)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return false;
    if (n < 0 || !q->http11)
        return true;
    /* after a reset the socket still reads as end of file (the FIN came first); its state
     * tells: CLOSE_WAIT while the peer is there, CLOSE once it reset */
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr)
        return true;
    struct tcp_info ti;
    len = sizeof ti;
    if (q->probed && getsockopt(ci->connect_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE)
        return true;
    /* End of file: the client closed, or only half-closed (shutdown(SHUT_WR)) after its
     * whole request and still waits for the answer — the same FIN. An HTTP/1.1 client must
     * accept interim 1xx answers before the final one, so one "100 Continue" is sent: a
     * socket that is still open takes it, a closed one answers with a reset, which the next
     * check sees. (MHD writes nothing while the handler runs: this is its thread.) */
    if (!q->probed) {
        q->probed = true;
        static const char probe[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send(ci->connect_fd, probe, sizeof probe - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN &&
            errno != EWOULDBLOCK)
            return true;
    }
    return false;
}


/* ---- answers ---- */

static bool queue(http_req *q, int status, struct MHD_Response *r)
{
    /* the API is meant for local apps and browser pages on other origins */
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    if (q->close)
        MHD_add_response_header(r, "Connection", "close");
    q->status = status;
    enum MHD_Result ret = MHD_queue_response(q->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret == MHD_YES;
}

static struct MHD_Response *text_response(const char *type, const void *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (r)
        MHD_add_response_header(r, "Content-Type", type);
    return r;
}

static void add_retry_after(struct MHD_Response *r, double retry_after_s)
{
    if (retry_after_s <= 0)
        return;
    char ra[32];
    snprintf(ra, sizeof ra, "%d", (int)ceil(retry_after_s));
    MHD_add_response_header(r, "Retry-After", ra);
}

static const char oom_json[] =
    "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";

bool http_respond(http_req *q, int status, const char *content_type, char *text, double retry_after_s)
{
    if (!text)
        return http_respond_static(q, 500, "application/json", oom_json, sizeof oom_json - 1);
    struct MHD_Response *r = text_response(content_type, text, strlen(text), MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return false;
    }
    add_retry_after(r, retry_after_s);
    return queue(q, status, r);
}

bool http_respond_static(http_req *q, int status, const char *content_type, const void *data, size_t len)
{
    struct MHD_Response *r = text_response(content_type, data, len, MHD_RESPMEM_PERSISTENT);
    return r && queue(q, status, r);
}

bool http_respond_json(http_req *q, int status, char *json)
{
    return http_respond(q, status, "application/json", json, 0);
}

static bool respond_error_with(http_req *q, const http_api_error *e, const char *allow)
{
    char *json = http_error_json(e);
    if (!json)
        return http_respond_json(q, 500, NULL);
    struct MHD_Response *r = text_response("application/json", json, strlen(json), MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return false;
    }
    if (e->kind == HTTP_ERR_RATE_LIMIT)
        add_retry_after(r, HTTP_RETRY_AFTER_S);
    if (e->kind == HTTP_ERR_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    return queue(q, http_err_http_status(e->kind), r);
}

bool http_respond_error(http_req *q, const http_api_error *e) { return respond_error_with(q, e, NULL); }

bool http_respond_fail(http_req *q, http_err kind, const char *param, const char *code, const char *fmt, ...)
{
    http_api_error e;
    char msg[HTTP_ERR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_fail(&e, kind, param, code, "%s", msg);
    return http_respond_error(q, &e);
}

bool http_respond_method_not_allowed(http_req *q, const char *allow)
{
    http_api_error e;
    http_fail(&e, HTTP_ERR_METHOD, NULL, "method_not_allowed", "Method %s is not allowed for %s; use %s.", q->method,
              q->url, allow);
    return respond_error_with(q, &e, allow);
}

bool http_respond_options(http_req *q)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return false;
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    return queue(q, 204, r);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_req *q = cls;
    while (q->out_pos >= q->out.len) {
        q->out.len = q->out_pos = 0; /* only unread bytes are kept */
        if (q->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!q->fill(q->fill_cls, &q->out))
            q->ended = true;
        if (q->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = q->out.len - q->out_pos;
    if (n > max)
        n = max;
    memcpy(buf, q->out.data + q->out_pos, n);
    q->out_pos += n;
    return (ssize_t)n;
}

bool http_respond_stream(http_req *q, http_stream_fill_fn fill, void *cls)
{
    q->fill = fill;
    q->fill_cls = cls;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK_BYTES, stream_reader, q, NULL);
    if (!r)
        return false;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return queue(q, 200, r);
}

/* ---- the daemon ---- */

/* The first call, headers in and no body byte read: framing checked (guard.c), the body's
 * deadline set. An answer queued now goes out without "100 Continue", and MHD then drops
 * the body and closes the connection. */
static enum MHD_Result first_call(http_front *f, http_req *q, const char *version)
{
    q->http11 = version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    bool has_body = false;
    char msg[HTTP_ERR_MSG_BYTES];
    int st = http_framing_check(q->conn, version, f->p.max_body_bytes, &has_body, msg, sizeof msg);
    http_guard_phase(f->guard, q->conn, has_body && !st ? HTTP_PHASE_BODY : HTTP_PHASE_HANDLING);
    if (!st)
        return MHD_YES;
    q->handled = true;
    q->close = true;
    return http_respond_fail(q, st == 413 ? HTTP_ERR_TOO_LARGE : HTTP_ERR_BAD_REQUEST, NULL,
                             st == 413 ? "request_too_large" : "invalid_framing", "%s", msg)
               ? MHD_YES
               : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    http_front *f = cls;
    http_req *q = *con_cls;
    if (!q) {
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        q->f = f;
        q->conn = conn;
        q->method = method;
        q->url = url;
        q->t_start_ms = http_now_ms();
        *con_cls = q;
        return first_call(f, q, version);
    }
    if (*upload_size) {
        if (!http_body_append(&q->body, upload, *upload_size, f->p.max_body_bytes))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->handled)
        return MHD_YES; /* already answered (defensive: MHD calls once more only before queueing) */
    q->handled = true;
    http_guard_phase(f->guard, conn, HTTP_PHASE_HANDLING);
    return f->p.handle(q, f->p.cls) ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_front *f = cls;
    http_req *q = *con_cls;
    if (!q)
        return;
    *con_cls = NULL;
    http_guard_phase(f->guard, conn, HTTP_PHASE_IDLE);
    if (f->p.metrics && q->status)
        http_metrics_count_status(f->p.metrics, q->status);
    if (q->generation) {
        if (f->p.metrics && q->status == 200)
            http_metrics_observe_latency(f->p.metrics, (http_now_ms() - q->t_start_ms) / 1000.0);
        __atomic_sub_fetch(&f->inflight, 1, __ATOMIC_RELAXED);
    }
    if (q->done_fn)
        q->done_fn(q->done_user);
    free(q->out.data);
    http_body_free(&q->body);
    free(q);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_front *f = cls;
    if (!f->p.log)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    f->p.log(PONDER_LOG_DEBUG, msg, f->p.log_user);
}

ponder_status http_front_start(const http_front_params *p, http_front **out, ponder_error *err)
{
    *out = NULL;
    http_front *f = calloc(1, sizeof *f);
    if (!f)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    f->p = *p;
    snprintf(f->host, sizeof f->host, "%s", p->host ? p->host : "127.0.0.1");
    f->p.host = f->host;
    if (p->api_key && !(f->api_key = strdup(p->api_key))) {
        free(f);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    f->p.api_key = NULL;
    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    int rc = getaddrinfo(f->host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        ponder_status st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "cannot resolve host '%s': %s", f->host,
                                            gai_strerror(rc));
        http_front_free(f);
        return st;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    f->limits = http_limits_resolve(&p->limits);
    if (!(f->guard = http_guard_create(&f->limits, p->log, p->log_user, p->metrics))) {
        freeaddrinfo(ai);
        http_front_free(f);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    /* per client: 0 is MHD's "no limit" */
    unsigned per_client = f->limits.max_per_client > 0 ? (unsigned)f->limits.max_per_client : 0;
    f->daemon = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, f,
                                 MHD_OPTION_NOTIFY_CONNECTION, http_guard_notify, f->guard,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)f->limits.max_connections,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_client,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)f->limits.idle_timeout_s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, f, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!f->daemon) {
        ponder_status st = ponder_error_set(
            err, PONDER_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", f->host, p->port);
        http_front_free(f);
        return st;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT);
    f->port = info && info->port ? (int)info->port : p->port;
    *out = f;
    return PONDER_OK;
}

int http_front_port(const http_front *f) { return f->port; }

int64_t http_front_inflight(const http_front *f) { return __atomic_load_n(&f->inflight, __ATOMIC_RELAXED); }

void http_front_free(http_front *f)
{
    if (!f)
        return;
    if (f->daemon)
        MHD_stop_daemon(f->daemon);
    http_guard_free(f->guard);
    free(f->api_key);
    free(f);
}
