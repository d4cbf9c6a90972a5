/*
 * backend_internal.h — what the two kinds of backend share (backend.c): one transfer's
 * bookkeeping, the handling of a stream's events, the deadlines, and the one set of rules
 * that turns how a transfer ended into a ponder_backend_failure. backend_remote.c moves
 * bytes through libcurl, backend_local.c through an in-process ponder_server; both feed
 * the same functions, so a local and a remote backend fail and recover alike.
 */
#ifndef PONDER_ROUTE_BACKEND_INTERNAL_H
#define PONDER_ROUTE_BACKEND_INTERNAL_H

#include "http/http.h"
#include "route/route_internal.h"

#include "ponder/server.h"

#define RT_MAX_BODY_BYTES (32u << 20) /* a non-streaming answer or an error body */

struct ponder_backend {
    ponder_route_backend_cfg cfg; /* deep copy */
    char *auth;                   /* remote: "Authorization: Bearer KEY", or NULL */
    char *url[PONDER_BACKEND_ENDPOINT_COUNT]; /* remote: api_base + each endpoint's path */
    ponder_server *local;         /* local: the engine, requests made in-process */
    bool curl_ready;              /* remote: curl_global_init succeeded (cleanup owed) */
};

typedef struct rt_xfer {
    const ponder_backend_call *call;
    ponder_backend_result *res;
    const ponder_route_backend_cfg *cfg;
    rt_sse sse;
    http_buf body;             /* non-stream answer or an error body */
    bool too_big;
    bool aborted;              /* the caller's callback said stop */
    bool error_event;          /* the stream carried an error object (or an unusable event) */
    bool saw_finish;
    double t0, t_first, t_last;
} rt_xfer;

/* How a transfer ended, as its transport saw it. */
typedef struct rt_xfer_end {
    ponder_backend_failure ours;      /* a deadline or cancel (rt_xfer_check); OK: none */
    int http_status;                  /* 0: no HTTP answer */
    ponder_backend_failure no_answer; /* http_status 0: CONNECT, TIMEOUT_CONNECT or BROKEN */
    bool clean;                       /* ended without a transport error */
    const char *transport_msg;        /* why not clean (or why no answer) */
    double ttft_ms;                   /* a whole answer's first token, when the backend tells (local); 0: not told */
} rt_xfer_end;

void rt_xfer_init(rt_xfer *x, const ponder_backend *b, const ponder_backend_call *call, ponder_backend_result *res);
/* Bytes of a 200 stream; false: stop the transfer (an error event, the caller's stop). */
bool rt_xfer_stream_bytes(rt_xfer *x, const char *p, size_t n);
/* Bytes of a whole answer or an error body; false: past RT_MAX_BODY_BYTES or out of memory. */
bool rt_xfer_body_bytes(rt_xfer *x, const char *p, size_t n);
/* The caller gone, or a deadline passed (first token, silence, whole answer): the failure
 * with res->message set; OK while none. */
ponder_backend_failure rt_xfer_check(rt_xfer *x, double now);
/* The one set of rules: sets res (failure, message, status, body) and frees x's parts. */
ponder_backend_failure rt_xfer_finish(rt_xfer *x, const rt_xfer_end *e);

/* backend_remote.c / backend_local.c */
ponder_status rt_remote_create(ponder_backend *b, ponder_error *err);
void rt_remote_release(ponder_backend *b);
ponder_backend_failure rt_remote_request(ponder_backend *b, const ponder_backend_call *call, ponder_backend_result *res);
ponder_status rt_local_create(ponder_backend *b, const ponder_backend_local_params *lp, ponder_error *err);
ponder_backend_failure rt_local_request(ponder_backend *b, const ponder_backend_call *call, ponder_backend_result *res);

#endif /* PONDER_ROUTE_BACKEND_INTERNAL_H */
