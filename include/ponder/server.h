/*
 * server.h — one model's engine behind `ponder serve`: the OpenAI API's chat, completions
 * and embeddings requests answered in-process, as bodies in and the HTTP API's bytes out.
 *
 * The server opens no socket: `ponder serve -m` and `--config` are the router (route.h),
 * whose HTTP front end (src/http) asks a local backend's ponder_server through the calls
 * below. Requests, responses, stream chunks and error objects follow OpenAI's shapes;
 * Ponder's own numbers ride in one extra "ponder" object that stock clients ignore.
 *
 * Threads: one engine thread owns the ponder_gen (which is not thread-safe) and every
 * request in flight is decoded in its batch (continuous batching). Callers' threads hand
 * requests to the engine through a mutex-protected queue and read the tokens back through
 * a per-request channel, so a request freed early (its client went away) is cancelled and
 * its sequences freed at the next step.
 *
 * Strategies (think.h): "ponder": {"strategy": "sc", "samples": 8, "answer": "number"} in a
 * chat or completions body, or a model-name prefix ("sc8-<model>", "cot-", "asc16-",
 * "bon4-"; the body's object wins over the prefix), resolved by think's one rule for every
 * front end (ponder_strategy_plan_make: the cue unless "cue": false or the model's
 * ponder.cue says no; without a temperature, cot is greedy and sc/asc/bon sample at the model's ponder.sampled_temp, else 0.7). The chains run as gen requests on the
 * engine thread next to other work (sc/bon: one request of N choices sharing the prompt;
 * asc: rounds of at most --parallel chains); the cue goes after the prompt (completions) or
 * the last user message (chat). The response has one choice, the winning chain's text
 * (the first chain's when none has an answer); "ponder" adds strategy, answer, votes,
 * agreement, samples, rounds, best and chains[{answer, tokens, mean_logprob}]; usage
 * counts every chain's tokens. Streaming sends that text as one chunk once the strategy
 * settles. Not combinable with n > 1, logprobs or several prompts (400).
 *
 * libponder rule: nothing here prints or exits; notes go to the log callback.
 */
#ifndef PONDER_SERVER_H
#define PONDER_SERVER_H

#include "ponder/common.h"
#include "ponder/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PONDER_SERVER_MAX_MESSAGES_DEFAULT 2048

typedef struct ponder_server ponder_server;

typedef struct ponder_server_params {
    int32_t n_parallel;       /* sequences decoded at once (slots); a request with n choices uses n */
    int32_t n_ctx;            /* context per slot in tokens; 0: min(n_ctx_train, 4096) */
    int32_t n_threads;        /* forward-pass threads; <= 0: one */
    int32_t queue_max;        /* requests waiting for a slot beyond which the server answers 429 */
    bool chatml;              /* models without tokenizer.chat_template use ChatML (documented
                                 fallback); otherwise such a model answers chat requests with a
                                 400 naming the fixes (/v1/completions, or --chatml) */
    bool parse_special_in_content; /* message contents' special-token texts become special tokens
                                      (a user can forge a turn); by default they are plain text */
    int32_t max_messages;     /* chat messages per request beyond which it is a 400; 0: 2048 */
    const char *draft_path;   /* a draft model for speculative decoding (same vocabulary); NULL: none */
    const char *alias;        /* the served model id (--alias); NULL: the file's basename without .gguf */
    const char *chat_template_file; /* --chat-template-file: a Jinja chat template used instead of
                                       the model's own (llama-server's flag); NULL: the model's */
    bool no_cache_prompt;     /* evaluate every prompt whole; by default (without a draft) a finished
                                 request's KV stays in its sequence and a later prompt starting the
                                 same way evaluates only the rest (gen's cache_prompts) */
    ponder_type type_k, type_v;   /* KV cache types (-ctk/-ctv): F16 (default), F32, Q8_0, Q4_0 */
    ponder_flash_attn flash_attn; /* -fa; default auto */
    const char *version;      /* for system_fingerprint; may be NULL */
    ponder_log_fn log;        /* may be NULL */
    void *log_user;
} ponder_server_params;

ponder_server_params ponder_server_params_default(void);

/* Loads the model at model_path, its tokenizer and chat template, and makes the engine.
 * The served model's id is p->alias, else the file's basename without ".gguf". */
ponder_status ponder_server_create(const char *model_path, const ponder_server_params *p, ponder_server **out,
                                   ponder_error *err);
/* Starts the engine thread: requests come in-process (below). */
ponder_status ponder_server_start_engine(ponder_server *s, ponder_error *err);
const char *ponder_server_model_id(const ponder_server *s);
/* The engine's load as the router's /metrics shows it: requests waiting for a slot, requests being
 * decoded, sequences being decoded (over all choices). */
void ponder_server_load(ponder_server *s, int64_t *queued, int64_t *active_requests, int64_t *active_sequences);
/* Tokens of requests cancelled before their end (their client left, or the in-process
 * caller freed them): counted when the engine lets them go, as /metrics counts them. */
void ponder_server_cancelled_tokens(ponder_server *s, int64_t *prompt, int64_t *completion);
/* Stops accepting, cancels requests in flight (their streams end), joins the engine thread.
 * Idempotent; ponder_server_free calls it. */
void ponder_server_stop(ponder_server *s);
void ponder_server_free(ponder_server *s); /* NULL is a no-op */

/* ---- requests: the HTTP API without sockets (the router's local backends) ----
 *
 * A body is handled exactly as if POSTed to /v1/chat/completions or /v1/completions (the
 * same validation, model-name prefixes, strategies, batching), and its answer is the bytes
 * the HTTP API would send: a completion object, or SSE text ("data: {...}\n\n" chunks, an
 * error event if the request fails mid-way, then "data: [DONE]\n\n"). Each request is
 * used by one thread at a time; any number run at once. */
typedef struct ponder_server_request ponder_server_request;
typedef enum ponder_server_endpoint { PONDER_SERVER_CHAT = 0, PONDER_SERVER_COMPLETIONS } ponder_server_endpoint;
typedef enum ponder_server_read {
    PONDER_SERVER_READ_MORE = 0, /* *text holds the next bytes */
    PONDER_SERVER_READ_TIMEOUT,  /* nothing new within wait_ms */
    PONDER_SERVER_READ_END,      /* the stream has ended (*text may hold its last bytes) */
} ponder_server_read;

/* Starts one request (the engine must be running) and returns once the engine took it:
 * 200 and *out, or the error's HTTP status (400, 404, 429, 503, ...) with *error_json
 * (OpenAI's error object, malloc'ed; NULL out of memory) and *retry_after_s (> 0 for 429). */
int ponder_server_request_start(ponder_server *s, ponder_server_endpoint ep, const char *body, size_t len,
                                ponder_server_request **out, char **error_json, double *retry_after_s);
/* Admission before the body is read, for a front end that reads bodies itself (the router
 * over a local backend): a place among the slots and the queue, taken before anything is
 * parsed. 200, or 429 / 503 with *error_json and
 * *retry_after_s as ponder_server_request_start gives them. The place is used by one
 * ponder_server_request_start_admitted or ponder_server_embeddings_admitted (given back
 * when that request is enqueued or refused), or given back unused with
 * ponder_server_admit_release. */
int ponder_server_admit(ponder_server *s, char **error_json, double *retry_after_s);
void ponder_server_admit_release(ponder_server *s);
int ponder_server_request_start_admitted(ponder_server *s, ponder_server_endpoint ep, const char *body, size_t len,
                                         ponder_server_request **out, char **error_json, double *retry_after_s);
bool ponder_server_request_streams(const ponder_server_request *q); /* the body asked for "stream": true */
/* A stream's next bytes, waiting up to wait_ms; *text stays valid until the next call. */
ponder_server_read ponder_server_request_read(ponder_server_request *q, int wait_ms, const char **text, size_t *len);
/* Not streaming: waits for the answer, asking cancelled(user) every poll_ms (may be NULL);
 * true when it came, false when cancelled said stop (the request is then cancelled). */
bool ponder_server_request_wait(ponder_server_request *q, bool (*cancelled)(void *user), void *user, int poll_ms);
/* After ponder_server_request_wait: 200 and the completion object, or the error's status and
 * error object (*body malloc'ed; NULL out of memory). */
int ponder_server_request_response(ponder_server_request *q, char **body);
/* Milliseconds from the request's start to its first token; 0 while none has come (a whole
 * answer's time to first token, for /metrics). */
double ponder_server_request_ttft_ms(ponder_server_request *q);
/* Cancels the request if it still runs (its sequences are freed at the next step). */
void ponder_server_request_free(ponder_server_request *q); /* NULL is a no-op */

/* A body as POSTed to /v1/embeddings, answered in-process: 200 and the response, or the
 * error's status and error object (*json malloc'ed; NULL out of memory). Waits for the
 * engine thread, which runs embedding jobs between decode steps. */
int ponder_server_embeddings(ponder_server *s, const char *body, size_t len, char **json);
int ponder_server_embeddings_admitted(ponder_server *s, const char *body, size_t len, char **json); /* see _admit */

#ifdef __cplusplus
}
#endif
#endif /* PONDER_SERVER_H */
