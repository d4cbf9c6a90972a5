/*
 * http.h — the HTTP layer of `ponder serve`: a libmicrohttpd front end that reads request
 * bodies and hands each whole request to the caller's handler (the router's, src/route:
 * the one front end), answers (plain, error, SSE stream) with the same headers everywhere,
 * bearer-key checks, and the socket-free part the engine (src/server) shares with it
 * (http_core): the one table from an error kind to its HTTP status and OpenAI error type,
 * request bodies' JSON, Prometheus metrics, and a growable string.
 *
 * Layering: http knows nothing of models, requests' meaning or backends. server and route
 * include this header (and their own), never each other's internals. Nothing here needs
 * libmicrohttpd's header: the front end's types are opaque.
 */
#ifndef PONDER_HTTP_H
#define PONDER_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ponder/common.h"

/* ---- small growable string (errors.c) ---- */
typedef struct http_buf {
    char *data; /* NUL-terminated once anything was appended */
    size_t len, cap;
    bool oom;   /* an append failed: the contents are incomplete */
} http_buf;
bool http_buf_append(http_buf *b, const char *s, size_t n);
bool http_buf_printf(http_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A JSON string of bytes, invalid UTF-8 (and NUL) replaced by U+FFFD. NULL only out of memory. */
json_t *http_json_string_lossy(const char *s, size_t n);

/* ---- errors: one table maps each kind to its HTTP status and OpenAI error type ---- */
typedef enum http_err {
    HTTP_ERR_BAD_REQUEST = 0, /* 400 invalid_request_error */
    HTTP_ERR_UNAUTHORIZED,    /* 401 invalid_request_error (code invalid_api_key) */
    HTTP_ERR_NOT_FOUND,       /* 404 invalid_request_error (unknown path, model_not_found) */
    HTTP_ERR_METHOD,          /* 405 invalid_request_error */
    HTTP_ERR_TOO_LARGE,       /* 413 invalid_request_error */
    HTTP_ERR_RATE_LIMIT,      /* 429 requests (code rate_limit_exceeded), with Retry-After */
    HTTP_ERR_INTERNAL,        /* 500 server_error */
    HTTP_ERR_UNAVAILABLE,     /* 503 server_error (shutting down, every backend failed) */
    HTTP_ERR_COUNT
} http_err;

int http_err_http_status(http_err kind);
const char *http_err_type(http_err kind);

#define HTTP_ERR_MSG_BYTES 512
#define HTTP_ERR_TAG_BYTES 64
#define HTTP_RETRY_AFTER_S 1 /* a 429 of our own: the client may try again this soon */

typedef struct http_api_error {
    http_err kind;
    char message[HTTP_ERR_MSG_BYTES];
    char param[HTTP_ERR_TAG_BYTES]; /* "" → null */
    char code[HTTP_ERR_TAG_BYTES];  /* "" → null */
} http_api_error;

/* Fills e; param and code may be NULL. Returns false so validators can `return http_fail(...)`. */
bool http_fail(http_api_error *e, http_err kind, const char *param, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* {"error":{"message","type","param","code"}} as a malloc'ed string (NULL: out of memory). */
char *http_error_json(const http_api_error *e);

/* "an object", "a string", "an integer", ... for OpenAI's "but got %s instead". */
const char *http_json_kind(const json_t *v);
/* A request body as every endpoint first reads it: JSON, an object, "model" a string or
 * null when present. NULL with e filled (400 invalid_json / invalid_type /
 * request_too_complex) otherwise. Before it is parsed its values are counted (below): a
 * body of tiny values parses into ~70 times its size, so more than HTTP_JSON_MAX_VALUES
 * values or HTTP_JSON_MAX_OBJECTS objects is refused unparsed. */
json_t *http_json_body(const char *body, size_t len, http_api_error *e);
#define HTTP_JSON_MAX_VALUES (1 << 20) /* ~50 MB of parse tree at most */
#define HTTP_JSON_MAX_OBJECTS (1 << 16) /* objects cost most: ~200 bytes each */
/* JSON values (commas and opening brackets outside strings, plus one) and objects in a
 * body, counted without parsing it. */
void http_json_count(const char *body, size_t len, size_t *values, size_t *objects);

/* ---- request bodies (body.c) ---- */

/* A body read in pieces, NUL-terminated; past max_bytes it is dropped and too_large set. */
typedef struct http_body {
    char *data; /* NULL until the first byte */
    size_t len, cap;
    bool too_large;
} http_body;

bool http_body_append(http_body *b, const char *data, size_t n, size_t max_bytes); /* false: out of memory */
void http_body_free(http_body *b);

/* ---- metrics (metrics.c) ---- */
#define HTTP_HIST_BUCKETS 14
#define HTTP_STATUS_MAX 600 /* codes 100..599 are counted, each in its own slot */

typedef struct http_histogram {
    uint64_t counts[HTTP_HIST_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t n;
} http_histogram;

typedef struct http_metrics {
    pthread_mutex_t mu;
    uint64_t status_count[HTTP_STATUS_MAX]; /* by code; anything outside 100..599 in [0] */
    uint64_t prompt_tokens, completion_tokens;
    uint64_t cancelled;       /* generation requests whose client left before the end */
    uint64_t failed;          /* generation requests that failed after they were accepted */
    uint64_t conn_timeouts;   /* connections closed for a missed read deadline */
    http_histogram latency, ttft;
    int64_t queue_depth, active_requests, active_sequences;
} http_metrics;

void http_metrics_init(http_metrics *m);
void http_metrics_destroy(http_metrics *m);
void http_metrics_count_status(http_metrics *m, int http_status);
void http_metrics_add_tokens(http_metrics *m, int64_t prompt, int64_t completion);
/* A generation request cancelled because its client left (its tokens go to add_tokens too). */
void http_metrics_count_cancelled(http_metrics *m);
/* A generation request that failed after it was accepted: a decode error, shutdown, a
 * stream answered 200 whose every backend then failed (the router). */
void http_metrics_count_failed(http_metrics *m);
void http_metrics_count_timeout(http_metrics *m);
void http_metrics_observe_latency(http_metrics *m, double seconds);
void http_metrics_observe_ttft(http_metrics *m, double seconds);
void http_metrics_set_load(http_metrics *m, int64_t queue_depth, int64_t active_requests, int64_t active_sequences);
/* Prometheus text exposition format 0.0.4, malloc'ed. */
char *http_metrics_render(http_metrics *m);

/* ---- SSE framing ---- */
#define HTTP_SSE_KEEPALIVE ": keep-alive\n\n" /* a comment: clients ignore it, proxies see traffic */
#define HTTP_SSE_DONE "data: [DONE]\n\n"       /* OpenAI's end of stream */
#define HTTP_KEEPALIVE_MS 5000                 /* a stream sends a comment after this much silence */
bool http_sse_data(http_buf *b, const char *json); /* "data: JSON\n\n" */

double http_now_ms(void); /* CLOCK_MONOTONIC */

/* An OpenAI response id, "PREFIX-" and 24 letters and digits ("chatcmpl-…", "cmpl-…"):
 * splitmix64 over *state (advanced atomically), so ids are unique without a global. */
void http_openai_id(uint64_t *state, const char *prefix, char *out, size_t cap);

/* Formats and hands a message to log (NULL: dropped). */
void http_logf(ponder_log_fn log, void *user, ponder_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- the front end (front.c) ---- */

typedef struct http_front http_front;
typedef struct http_req http_req; /* one request, valid until its cleanup ran */

/* Called once per request when its whole body has arrived (one thread per connection: it
 * may block). It must answer with exactly one http_respond* call and return what that
 * returned; false drops the connection without an answer. */
typedef bool (*http_handler_fn)(http_req *q, void *cls);

typedef struct http_front_params {
    const char *host;               /* default "127.0.0.1" */
    int port;                       /* 0: an ephemeral port */
    size_t max_body_bytes;          /* a larger declared body is answered 413 before it is read;
                                       a chunked one past it: http_req_body_too_large */
    ponder_listen_limits limits;    /* connection caps and read deadlines; 0s: the defaults */
    const char *api_key;            /* copied; NULL: http_req_authorized always passes */
    http_handler_fn handle;
    void *cls;
    http_metrics *metrics;          /* statuses and generation latency are counted here; may be NULL */
    ponder_log_fn log;              /* libmicrohttpd's messages, at debug level; may be NULL */
    void *log_user;
} http_front_params;

/* Binds and starts (one thread per connection). Errors name the host and port. */
ponder_status http_front_start(const http_front_params *p, http_front **out, ponder_error *err);
int http_front_port(const http_front *f);            /* the bound port */
int64_t http_front_inflight(const http_front *f);    /* generation requests being answered */
void http_front_free(http_front *f);                 /* stops; NULL is a no-op */

const char *http_req_method(const http_req *q);
const char *http_req_url(const http_req *q);
const char *http_req_body(const http_req *q, size_t *len); /* never NULL ("" when empty) */
bool http_req_body_too_large(const http_req *q);
size_t http_req_max_body(const http_req *q);
double http_req_start_ms(const http_req *q);              /* http_now_ms() at arrival */
bool http_req_is_get(const http_req *q);                  /* GET or HEAD */
bool http_req_is_post(const http_req *q);
/* The Authorization header against the front's key (constant time); false fills e (401). */
bool http_req_authorized(const http_req *q, http_api_error *e);
/* A generation request: counted in http_front_inflight until it completes, its latency
 * observed when it answers 200. */
void http_req_set_generation(http_req *q);
/* Whether the client closed the connection (peeks at the socket; for a handler that waits).
 * A client that only half-closed after its request (shutdown(SHUT_WR)) is not gone. */
bool http_req_peer_gone(http_req *q);
/* The status the answer counts as in the metrics when it is not the one sent: a stream
 * answered 200 that ended in an error event. Called from the stream's fill callback (the
 * connection's thread); nothing before an answer was queued. */
void http_req_set_outcome(http_req *q, int status);
/* fn(user) runs when the request completes (answered, or the client left); once. */
void http_req_on_done(http_req *q, void (*fn)(void *user), void *user);

/* Answers. Every answer carries Access-Control-Allow-Origin: * (the API is for local apps
 * and pages on other origins). text is taken (freed by the front end); NULL answers a 500
 * "out of memory" instead. retry_after_s > 0 adds Retry-After (rounded up). */
bool http_respond(http_req *q, int status, const char *content_type, char *text, double retry_after_s);
bool http_respond_static(http_req *q, int status, const char *content_type, const void *data, size_t len);
bool http_respond_json(http_req *q, int status, char *json); /* application/json */
/* The OpenAI error object with its status (429: Retry-After, 401: WWW-Authenticate). */
bool http_respond_error(http_req *q, const http_api_error *e);
bool http_respond_fail(http_req *q, http_err kind, const char *param, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
bool http_respond_method_not_allowed(http_req *q, const char *allow); /* 405 with Allow */
bool http_respond_options(http_req *q);                                 /* 204 with the CORS allowances */

/* ---- the chat page (web/, compiled in by embed_web.cmake; the router serves it at /) ---- */
typedef struct http_asset {
    const char *path; /* "/index.html" */
    const unsigned char *data;
    size_t size;
} http_asset;
extern const http_asset http_web_assets[];
extern const size_t http_web_n_assets;
const http_asset *http_web_find(const char *url); /* "/" → /index.html; NULL if absent */
const char *http_mime_type(const char *path);
/* Answers a request for a page file (405 unless GET/HEAD) and returns true, or returns
 * false having sent nothing when url is not one. */
bool http_respond_web(http_req *q, const char *url);

/* An SSE stream (200, text/event-stream, no caching, no proxy buffering). fill appends the
 * next bytes to out, waiting for them as long as it likes (a keep-alive comment after
 * HTTP_KEEPALIVE_MS is its business); it is called again once they are sent. It returns
 * false when the stream has ended (out may hold its last bytes). out->oom ends the stream
 * with an error. cls must live until the request's on_done. */
typedef bool (*http_stream_fill_fn)(void *cls, http_buf *out);
bool http_respond_stream(http_req *q, http_stream_fill_fn fill, void *cls);

#endif /* PONDER_HTTP_H */
