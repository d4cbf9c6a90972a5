/*
 * router_internal.h — the router's parts and how its files reach each other: router.c
 * walks a request's chain (retries, back-off, continuation), breaker.c keeps each
 * backend's circuit breaker and the /metrics counters, stream.c turns backends' chunks
 * into the client's one stream or answer (re-stamping, usage, the ponder object), and
 * handler.c is the HTTP handler on src/http's front end.
 */
#ifndef PONDER_ROUTE_ROUTER_INTERNAL_H
#define PONDER_ROUTE_ROUTER_INTERNAL_H

#include "route/cascade_internal.h"
#include "route/route_internal.h"
#include "http/http.h"

#include "ponder/json.h"
#include "ponder/route.h"

#include <jansson.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RT_EARLY_PROBE_MS 1000 /* an all-open chain probes its first backend to recover at most this often */
#define RT_MAX_DEPLOYMENTS 64 /* a model's backends ordered per request on the stack; more: listed order */
/* Bodies and chunks are written with ponder_json_dumps: numbers with the fewest digits
 * that read back exactly (14.8 ms, not 14.800000000000001; an upstream's logprob
 * unchanged, not cut to 9 digits). */

typedef enum rt_breaker { BR_CLOSED = 0, BR_OPEN, BR_HALF_OPEN } rt_breaker;

typedef struct rt_be {
    ponder_backend *b;            /* NULL: it failed to start (load_error says why) */
    char load_error[PONDER_ERROR_MSG_BYTES + 64];
    const ponder_route_backend_cfg *cfg;
    const ponder_route_model_cfg *model;
    /* under r->mu */
    rt_breaker br;
    int32_t consecutive;
    double opened_ms;
    bool probe_busy;
    uint64_t opens;
    double not_before_ms;         /* a 429's Retry-After */
    uint64_t attempts, successes;
    uint64_t failures[PONDER_BACKEND_FAILURE_COUNT]; /* skips (circuit_open, load) included */
    /* load balancing (balance.c), under r->mu */
    int32_t in_flight;            /* admitted attempts not yet reported */
    double latency_ms;            /* moving average of successful attempts' total time; 0: none yet */
    double window_start_ms;       /* the current minute of the rpm/tpm limits */
    int64_t window_requests, window_tokens;
} rt_be;

struct ponder_router {
    ponder_route_config *cfg;
    ponder_router_params p;
    char host[256];
    char *api_key;
    char fingerprint[40];
    rt_be *be;                    /* every model's backends in config order */
    int32_t n_be;
    int32_t *model_first;         /* per cfg->models[i]: the index of its first backend in be */
    ponder_backend *admit_early;  /* one model and no routes, its first backend local: every
                                     request's place is taken there before its body is read */
    bool whole_upstream;          /* one model, one backend, no retries, no deadlines (`serve -m`):
                                     a stream upstream gains nothing (no continuation, no
                                     first-token timeout), so whole answers are asked whole */
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* a worker ended */
    int32_t n_workers;
    int stopping;                 /* atomic */
    uint64_t id_state;
    uint64_t rng;
    uint64_t req_ok, req_failed, req_client_error, req_cancelled, continuations, fallbacks;
    int64_t cancelled_prompt, cancelled_completion; /* local engines' cancelled tokens already in metrics */
    http_front *front;            /* NULL until started */
    int port;
    rt_cascade_stats *cascade;    /* the cascade routes' counters (cascade.c) */
    http_metrics metrics;          /* HTTP status, latency, TTFT, tokens: as ponder serve's */
};

#define rt_log(r, level, ...) http_logf((r)->p.log, (r)->p.log_user, (level), __VA_ARGS__)

typedef enum rt_outcome { RT_ANSWERED, RT_FAILED, RT_REFUSED, RT_CANCELLED } rt_outcome;

/* One client request (or a cascade stage's) walking its chain. */
typedef struct rt_req {
    ponder_router *r;
    int refs;                     /* under mu: handler/conn, worker */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *route_name;
    const ponder_route_cfg *route;
    ponder_route_cfg scratch;
    json_t *body;                 /* the client's request */
    ponder_backend_endpoint ep;
    bool stream, include_usage, can_continue;
    bool collect;                 /* a non-streaming client answered from an upstream stream */
    int64_t max_tokens;           /* -1: not given */
    char id[48];
    int64_t created;
    json_t *attempts;
    const rt_be *answered;
    uint8_t *auth_failed;         /* per r->be: answered 401/403/404 in this request, not asked again */
    int32_t continued;            /* backends that continued a partial answer */
    json_t *usage, *upstream;     /* the answering backend's usage and ponder object */
    /* stream state (worker; under mu where the reader looks) */
    http_buf partial;              /* choice 0's text so far */
    int64_t n_content;            /* content chunks sent (≈ tokens; ponder serve sends one per token) */
    int64_t n_content_at_attempt;
    json_t *roles_sent;           /* choice index (as text) → true once its role chunk went out */
    bool started, finished, worker_done;
    rt_outcome outcome;           /* the worker's, once worker_done */
    http_req *hq;                 /* a stream's HTTP request (its fill callback's thread only) */
    http_req *waiting_client;     /* a whole answer's HTTP request, walked on its thread */
    double t_first_ms;            /* a whole answer's first token arrived (http_now_ms); 0: not yet */
    char *held;                   /* the last finish chunk, sent at the end with the ponder object */
    ponder_backend *admitted;     /* a local backend's place taken before the body was read
                                     (rt_admit_early), used by the first attempt on it */
    /* a collected answer (collect), folded chunk by chunk: per choice index its text and
     * finish reason; the first chunk's system_fingerprint */
    http_buf *fold_text;
    char (*fold_finish)[16];
    size_t fold_n;
    json_t *fold_fingerprint;
    http_buf out;
    size_t out_pos;
    int cancel;                   /* atomic: the client went away */
    /* the answer when no stream started */
    int status;
    char *final_body;
    char *limited_body;           /* the last 429's error body from a backend */
    double retry_after_s;
} rt_req;


/* router.c */
/* A request for route `name` (NULL route when unknown); takes body. NULL: out of memory. */
rt_req *rt_req_create(ponder_router *r, const char *name, ponder_backend_endpoint ep, json_t *body);
void rt_req_unref(rt_req *q);
/* Walks the chain; on RT_ANSWERED the stream is complete in q->out (or q->final_body). */
rt_outcome rt_run_chain(rt_req *q);
void *rt_worker_main(void *arg); /* a stream's chain walk, on its own thread */
void rt_count_outcome(ponder_router *r, rt_outcome o);
void rt_count_tokens(ponder_router *r, const rt_req *q);

/* breaker.c */
/* May this request use be? Takes the half-open probe when it is free; else why says why. */
ponder_backend_failure rt_admit(ponder_router *r, rt_be *be, double now, char *why, size_t cap);
void rt_release_probe(ponder_router *r, rt_be *be); /* an admitted request that sent nothing */
double rt_cooldown_end(ponder_router *r, rt_be *be); /* -1: its circuit is not open */
/* Every backend of a chain skipped: probe be (the open circuit whose cool-down ends first)
 * now. True: admitted as the half-open probe. */
bool rt_admit_early_probe(ponder_router *r, rt_be *be, double now);
void rt_report(ponder_router *r, rt_be *be, const ponder_backend_result *res, double now);
char *rt_metrics_text(ponder_router *r); /* GET /metrics, malloc'ed */

/* stream.c */
void rt_stamp(rt_req *q, json_t *chunk);  /* the stream's id, model and created */
bool rt_on_chunk(const char *data, size_t len, void *user); /* a backend's chunk (worker thread) */
/* The body a backend gets; *nothing_left: max_tokens is already spent. */
char *rt_attempt_body(rt_req *q, const rt_be *be, bool *nothing_left);
void rt_finish_whole(rt_req *q, rt_outcome o);
void rt_finish_stream(rt_req *q, rt_outcome o); /* q->mu held */
void rt_finish_collected(rt_req *q, rt_outcome o);
/* The answer ends here with finish_reason "length" (max_tokens spent before this backend). */
void rt_end_by_length(rt_req *q);
void rt_fold_reset(rt_req *q); /* forgets a collected answer (q->mu held, or the only thread) */

/* handler.c */
bool rt_handle(http_req *hq, void *cls);

/* ---- load balancing (balance.c) ---- */
/* The model's backends in the order this request tries them: LiteLLM's order: first, then
 * the model's balance rule (shuffle by weight, least busy, lowest latency, most rpm/tpm
 * headroom; listed order otherwise). out holds m->n_backends entries. */
void rt_order_backends(ponder_router *r, const ponder_route_model_cfg *m, rt_be **out);
/* The router's state of m's backend i (found through an index made once at start). */
rt_be *rt_model_backend(ponder_router *r, const ponder_route_model_cfg *m, int32_t i);
/* rpm/tpm: false (with why) when be has used its minute's requests or tokens. Under r->mu;
 * rt_admit counts the request when it is admitted. */
bool rt_within_limits(rt_be *be, double now, char *why, size_t cap);
/* An attempt's tokens into its backend's minute (tpm). */
void rt_count_backend_tokens(ponder_router *r, const rt_be *be, int64_t tokens);

#endif /* PONDER_ROUTE_ROUTER_INTERNAL_H */
