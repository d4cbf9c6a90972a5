/*
 * route.h — `ponder serve --config FILE`: named models over chains of backends, with
 * Plan B fallback.
 *
 * Three layers, each usable alone:
 *   - the config (ponder_route_config): a YAML file shaped like LiteLLM's model_list
 *     (docs/config.md has the schema), parsed and validated before anything starts; a
 *     bad file is one error naming the key and its line;
 *   - backends (ponder_backend): something that answers one OpenAI-shaped chat or
 *     completions request, streaming each SSE `data:` payload back through a callback as
 *     it arrives. `remote` is an OpenAI-compatible base URL reached through libcurl;
 *     `local` is a GGUF model served in-process by the server's own engine
 *     (ponder_server, continuous batching and all) through its in-process API — no
 *     socket — answering with the bytes `ponder serve -m` would send, so both kinds
 *     speak exactly the same protocol and fail by the same rules;
 *   - the router (ponder_router): the HTTP front. A request for a model (or route) walks
 *     its chain of backends: bounded retries with exponential back-off and jitter, a
 *     circuit breaker per backend, and mid-stream continuation — when a stream dies after
 *     some text, the next backend continues the same answer and the client sees one
 *     stream.
 *
 * libponder rule: nothing here prints or exits; notes go to the log callback.
 */
#ifndef PONDER_ROUTE_H
#define PONDER_ROUTE_H

#include "ponder/common.h"
#include "ponder/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration ---- */

typedef enum ponder_backend_kind { PONDER_BACKEND_LOCAL = 0, PONDER_BACKEND_REMOTE } ponder_backend_kind;

typedef struct ponder_route_backend_cfg {
    ponder_backend_kind kind;
    char *name;                 /* unique id in /metrics and the ponder object: `name:` or "MODEL/INDEX" */
    char *path;                 /* local: the GGUF file */
    char *draft;                /* local: a draft GGUF for speculative decoding; NULL: none */
    char *api_base;             /* remote: e.g. "http://host:8080/v1" (no trailing slash) */
    char *model;                /* remote: the model name sent upstream; NULL: the model_name */
    char *api_key_env;          /* remote: environment variable holding the key; NULL: no key */
    double timeout_s;           /* whole non-streaming answer, and the longest silence in a stream */
    double connect_timeout_s;   /* TCP (+TLS) connect */
    double first_token_timeout_s; /* request sent → first streamed token (or the whole answer) */
    int32_t n_parallel;         /* local: sequences decoded at once; 0: the router's default */
    int32_t n_ctx;              /* local: context per sequence; 0: the router's default */
    bool has_type_k, has_type_v; /* local: cache_type_k/v given (else the router's default) */
    ponder_type type_k, type_v; /* local: KV cache types f16, f32, q8_0, q4_0 */
    int32_t rpm, tpm;           /* LiteLLM's limits: requests / tokens a minute; 0: none */
    double weight;              /* simple-shuffle's weight (LiteLLM's weight:, else rpm or tpm, else 1) */
    int32_t order;              /* LiteLLM's order: lower first; 0: not given */
    int line;                   /* 1-based line of the entry in the file (for messages) */
} ponder_route_backend_cfg;

/* How a model's deployments (its backends) are ordered for each request; the rest of the
 * order is still the fallback chain. */
typedef enum ponder_route_balance {
    PONDER_BALANCE_ORDER = 0,   /* as listed (Ponder's backends: lists) */
    PONDER_BALANCE_SHUFFLE,     /* LiteLLM's simple-shuffle: weighted random (its default) */
    PONDER_BALANCE_LEAST_BUSY,  /* fewest requests in flight first */
    PONDER_BALANCE_LATENCY,     /* lowest recent latency first (latency-based-routing) */
    PONDER_BALANCE_USAGE,       /* most rpm/tpm headroom first (usage-based-routing) */
} ponder_route_balance;

typedef struct ponder_route_model_cfg {
    char *name;                 /* model_name: what clients put in "model" */
    ponder_route_backend_cfg *backends;
    int32_t n_backends;
    double price_input_per_1m, price_output_per_1m; /* dollars per 1M tokens (cost accounting) */
    ponder_route_balance balance; /* router_settings.routing_strategy, else shuffle for LiteLLM's
                                     litellm_params entries and order for backends: lists */
    bool litellm;               /* declared in LiteLLM's form (litellm_params) */
    int line;
} ponder_route_model_cfg;

/* One stage of a cascade route (System 1 first, System 2 last; docs/config.md). The stage
 * asks `model` — a model_name or a fallback route, walked as its own chain — with a think
 * strategy; every stage but the last answers only when its confidence passes accept_if. */
typedef struct ponder_route_stage_cfg {
    char *model;                /* a model_name or a (non-cascade) route name */
    char *strategy;             /* canonical strategy text ("cot", "sc:4") sent as ponder.strategy */
    bool cue;                   /* false: ponder.cue false (the prompt as given) */
    double temperature;         /* < 0: the request's own, else 0 for cot/direct and 0.7 sampled */
    bool has_min_agreement, has_min_mean_logprob; /* accept_if keys given (last stage: none) */
    double min_agreement;       /* accept_if.agreement: winner's votes / chains with an answer */
    double min_mean_logprob;    /* accept_if.mean_logprob: mean over the winner's chains */
    int line;
} ponder_route_stage_cfg;

/* A named route: requests for `name` try each model of `chain` in order (each model's
 * backends in order). A model without a route of its own is the chain [itself]. A cascade
 * (n_stages > 0) runs its stages instead; its chain lists the stages' models. */
typedef struct ponder_route_cfg {
    char *name;
    char **chain;               /* model names; chain[0] == name when name is a model */
    int32_t n_chain;
    ponder_route_stage_cfg *stages; /* a cascade: n_stages >= 2; else NULL */
    int32_t n_stages;
    char **ctx_chain;           /* LiteLLM's context_window_fallbacks: models tried when a backend
                                   refuses the request as longer than its context */
    int32_t n_ctx_chain;
    int line;
} ponder_route_cfg;

typedef struct ponder_route_settings {
    int32_t num_retries;        /* extra passes over the whole chain after every backend failed */
    double retry_backoff_ms;    /* first back-off; doubled per pass, ±50% jitter */
    double retry_backoff_max_ms;/* cap of one back-off */
    double retry_after_max_s;   /* a 429's Retry-After is honoured up to this (longer: next backend) */
    int32_t breaker_failures;   /* consecutive failures that open a backend's breaker; 0: no breaker
                                   (LiteLLM's allowed_fails) */
    double breaker_cooldown_s;  /* open this long, then half-open: one probe request (cooldown_time) */
    ponder_route_balance balance; /* routing_strategy */
    bool balance_given;
    double timeout_s;           /* LiteLLM's timeout / request_timeout: every backend's default; < 0: none */
    double stream_timeout_s;    /* LiteLLM's stream_timeout: the default first_token_timeout; < 0: none */
} ponder_route_settings;

typedef struct ponder_route_config {
    ponder_route_model_cfg *models;
    int32_t n_models;
    ponder_route_cfg *routes;   /* the `routes:` entries */
    int32_t n_routes;
    ponder_route_settings settings;
    char *master_key_env;       /* general_settings.master_key: os.environ/VAR names the router's key */
    char *master_key;           /* … or the key itself, as LiteLLM's examples write it (warned about) */
    char *source;               /* file name used in messages */
} ponder_route_config;

/* Each error (is_error) and warning line of a config, "FILE:LINE: KEY: what": a file is read
 * to its end, so every error is named in one run; LiteLLM keys that mean nothing here
 * (budgets, databases, UI) are warnings. */
typedef void (*ponder_route_config_note_fn)(void *user, bool is_error, const char *line);

ponder_route_settings ponder_route_settings_default(void);

/* Parses and validates YAML text. Errors read "FILE:LINE: KEY: what is wrong" (the first
 * one found); an API key written in the file (api_key:) is refused. Local paths are
 * resolved against dir when relative (dir may be NULL: as given). Missing model files are
 * not an error here: a local model that fails to load is a backend failure at run time. */
ponder_status ponder_route_config_parse(const char *text, size_t len, const char *source, const char *dir,
                                        ponder_route_config **out, ponder_error *err);
/* Reads FILE and parses it; relative local paths are taken relative to FILE's folder. */
ponder_status ponder_route_config_load(const char *path, ponder_route_config **out, ponder_error *err);
/* The same, with every error and warning line handed to note (err: the first error, and
 * how many there were). */
ponder_status ponder_route_config_parse_noted(const char *text, size_t len, const char *source, const char *dir,
                                              ponder_route_config_note_fn note, void *user,
                                              ponder_route_config **out, ponder_error *err);
ponder_status ponder_route_config_load_noted(const char *path, ponder_route_config_note_fn note, void *user,
                                             ponder_route_config **out, ponder_error *err);
void ponder_route_config_free(ponder_route_config *c); /* NULL is a no-op */
/* The config `ponder serve -m` runs: one model `name`, one local backend (path, draft may
 * be NULL), no retries, no breaker and no deadlines. */
ponder_status ponder_route_config_for_model(const char *name, const char *path, const char *draft,
                                            ponder_route_config **out, ponder_error *err);

/* The chain a request for `name` walks (a route, else a model as [itself]); NULL: unknown. */
const ponder_route_cfg *ponder_route_config_find(const ponder_route_config *c, const char *name,
                                                 ponder_route_cfg *scratch);
const ponder_route_model_cfg *ponder_route_config_model(const ponder_route_config *c, const char *name);

/* ---- backends ---- */

typedef struct ponder_backend ponder_backend;

/* Why a backend call did not produce a complete answer. */
typedef enum ponder_backend_failure {
    PONDER_BACKEND_OK = 0,
    PONDER_BACKEND_CONNECT,        /* refused, unreachable, name not resolved */
    PONDER_BACKEND_TIMEOUT_CONNECT,
    PONDER_BACKEND_TIMEOUT_FIRST,  /* no first token (or no answer) within first_token_timeout_s */
    PONDER_BACKEND_TIMEOUT_IDLE,   /* a stream fell silent for timeout_s after its first token */
    PONDER_BACKEND_HTTP_5XX,
    PONDER_BACKEND_HTTP_429,
    PONDER_BACKEND_HTTP_AUTH,      /* 401/403/404: this backend is misconfigured; others may work */
    PONDER_BACKEND_HTTP_CLIENT,    /* 400/413/422…: the request itself is refused; no fallback */
    PONDER_BACKEND_BROKEN,         /* the connection ended (or an error event came) before the answer did */
    PONDER_BACKEND_PROTOCOL,       /* the answer is not OpenAI-shaped */
    PONDER_BACKEND_LOAD,           /* a local model that failed to load */
    PONDER_BACKEND_CIRCUIT_OPEN,   /* skipped: the backend's breaker is open */
    PONDER_BACKEND_CANCELLED,      /* the client went away */
    PONDER_BACKEND_FAILURE_COUNT
} ponder_backend_failure;

const char *ponder_backend_failure_name(ponder_backend_failure f); /* "connect", "timeout_first_token", … */

typedef enum ponder_backend_endpoint {
    PONDER_BACKEND_CHAT = 0,    /* /chat/completions */
    PONDER_BACKEND_COMPLETIONS, /* /completions */
    PONDER_BACKEND_EMBEDDINGS,  /* /embeddings: never streamed */
    PONDER_BACKEND_ENDPOINT_COUNT
} ponder_backend_endpoint;

/* One chunk's JSON (an SSE data payload without "data: ", NUL-terminated; neither "[DONE]"
 * nor error events, which end the call). Return
 * false to abort the transfer. */
typedef bool (*ponder_backend_event_fn)(const char *data, size_t len, void *user);

typedef struct ponder_backend_call {
    ponder_backend_endpoint endpoint;
    const char *body;           /* the request JSON as the backend should receive it */
    size_t body_len;
    bool stream;                /* the body asks for "stream": true */
    ponder_backend_event_fn on_event; /* stream: every data payload, as it arrives */
    void *user;
    bool (*cancelled)(void *user); /* polled while waiting; true aborts (CANCELLED); may be NULL */
    bool admitted;              /* local: uses the place ponder_backend_admit took for it */
} ponder_backend_call;

typedef struct ponder_backend_result {
    ponder_backend_failure failure;
    int http_status;            /* 0: no HTTP answer */
    double retry_after_s;       /* Retry-After of a 429/503; < 0: absent */
    int64_t n_events;           /* stream: data payloads delivered (without [DONE]) */
    bool done;                  /* stream: [DONE] seen */
    char *body;                 /* non-stream answer, or the error body of a failed status (malloc'ed) */
    size_t body_len;
    double ttft_ms, total_ms;   /* request start → first event / end */
    char message[PONDER_ERROR_MSG_BYTES]; /* why it failed, for logs and the ponder object */
} ponder_backend_result;

void ponder_backend_result_clear(ponder_backend_result *r); /* frees body, zeroes */

/* Defaults for local backends (those the config leaves unset). */
typedef struct ponder_backend_local_params {
    int32_t n_parallel, n_ctx, n_threads;
    int32_t queue_max;            /* requests that may wait for a slot (--queue); < 0: the server's default */
    int32_t max_messages;         /* chat messages a request may hold; 0: the server's default */
    ponder_type type_k, type_v;   /* KV cache types (-ctk/-ctv); F16 in ponder_router_params_default */
    ponder_flash_attn flash_attn;
    bool chatml;
    bool parse_special_in_content; /* ponder_server_params' (--parse-special-in-content) */
    bool no_cache_prompt;         /* ponder_server_params' (--no-cache-prompt) */
    const char *version;          /* for system_fingerprint */
    const char *chat_template_file; /* ponder_server_params' (--chat-template-file, `serve -m` only) */
    ponder_log_fn log;
    void *log_user;
} ponder_backend_local_params;

/* Remote: checks the URL and reads the API key from its variable (unset → error). Local:
 * loads the model and starts its engine (a failure is PONDER_BACKEND_LOAD's message). */
ponder_status ponder_backend_create(const ponder_route_backend_cfg *cfg, const ponder_backend_local_params *lp,
                                    ponder_backend **out, ponder_error *err);
/* One request, blocking; thread-safe (each call has its own connection). Returns
 * res->failure. A 200 stream that ends without [DONE] or a finish_reason is BROKEN. */
ponder_backend_failure ponder_backend_request(ponder_backend *b, const ponder_backend_call *call,
                                              ponder_backend_result *res);
const ponder_route_backend_cfg *ponder_backend_config(const ponder_backend *b);
/* A local backend's engine load (requests queued, requests and sequences being decoded);
 * false for a remote one (its own /metrics tells). */
bool ponder_backend_load(ponder_backend *b, int64_t *queued, int64_t *active_requests, int64_t *active_sequences);
/* A local backend's tokens of requests cancelled before their end (ponder_server's count);
 * false for a remote one. */
bool ponder_backend_cancelled_tokens(ponder_backend *b, int64_t *prompt, int64_t *completion);
/* Admission before the body is read: a local backend's place among its slots and queue
 * (ponder_server_admit): 200, or 429 / 503 with *error_json (malloc'ed) and
 * *retry_after_s. A remote backend has nothing to take: 200. The place goes to the next
 * request made with call->admitted, or back with ponder_backend_admit_release. */
int ponder_backend_admit(ponder_backend *b, char **error_json, double *retry_after_s);
void ponder_backend_admit_release(ponder_backend *b);
void ponder_backend_free(ponder_backend *b); /* NULL is a no-op */

/* ---- the router ---- */

#define PONDER_ROUTER_MAX_BODY_BYTES_DEFAULT (4u << 20) /* 4 MiB: far above any chat request */

typedef struct ponder_router ponder_router;

typedef struct ponder_router_params {
    const char *host;           /* default "127.0.0.1" */
    int port;                   /* 0: ephemeral */
    const char *api_key;        /* clients' key (as ponder serve --api-key); NULL: none */
    size_t max_body_bytes;      /* larger bodies are answered 413 (a declared length before the body
                                   is read); 0: PONDER_ROUTER_MAX_BODY_BYTES_DEFAULT */
    ponder_listen_limits listen; /* connection caps and read deadlines (slow clients); 0s: defaults */
    const char *version;
    ponder_backend_local_params local;
    uint64_t seed;              /* back-off jitter; 0: from the clock */
    int32_t max_messages;       /* chat messages a request may hold (--max-messages): the local
                                   backends' limit; 0: ponder serve's default */
    bool local_required;        /* a local backend that fails to load fails ponder_router_create
                                   (`serve -m`: one model, nothing to fall back to) */
    bool plain_ponder;          /* an answer's ponder object is its backend's own, without the
                                   walk's (route, backend, attempts): `serve -m` routes nothing */
    ponder_log_fn log;
    void *log_user;
} ponder_router_params;

ponder_router_params ponder_router_params_default(void);

/* Takes ownership of cfg (also on failure). Creates every backend; a local model that
 * fails to load is logged and stays in its chains as a failing backend. */
ponder_status ponder_router_create(ponder_route_config *cfg, const ponder_router_params *p, ponder_router **out,
                                   ponder_error *err);
ponder_status ponder_router_start(ponder_router *r, ponder_error *err);
int ponder_router_port(const ponder_router *r);
void ponder_router_stop(ponder_router *r);
void ponder_router_free(ponder_router *r); /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif /* PONDER_ROUTE_H */
