/*
 * server_state.h — the server object, the job that carries one request between a caller's
 * thread (the router's, through the in-process API) and the engine thread, and the call that reads
 * a job back. Shared by the server's own files only.
 *
 * Locking: one mutex (s->mu) guards the inbox, every job's fields after submission and
 * the counters below; the engine waits on s->engine_cv, a handler on its job->cond. The
 * engine never holds s->mu while decoding (ponder_gen_step), so handlers are not stalled
 * by a long step; gen callbacks take s->mu per event.
 */
#ifndef PONDER_SERVER_STATE_H
#define PONDER_SERVER_STATE_H

#include "server/server_internal.h"

#include "ponder/chat.h"
#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/server.h"
#include "ponder/think.h"

#include <pthread.h>

/* One gen event, copied (text owned). */
typedef struct srv_event {
    int32_t choice;
    char *text;
    size_t text_len;
    bool has_token;
    srv_logprob *lp;         /* owned; when has_token and the request asked for logprobs (NULL
                                out of memory): kept apart, so a request without logprobs pays
                                ~40 bytes an event, not ~200 */
    ponder_finish finish;
} srv_event;

/* One gen request of a job: a completions request with several prompts has one per
 * prompt; a think strategy runs its rounds through its one sub, one after another. */
typedef struct srv_sub {
    struct srv_job *job;
    ponder_token *prompt;         /* owned */
    int32_t n_prompt;
    int32_t choice_base;          /* the response index of this prompt's first choice */
    int32_t gen_id;               /* 0: not in gen (not yet submitted, or released) */
    int32_t n_choices;            /* of the gen request in flight */
    bool done;
} srv_sub;

typedef enum srv_job_state {
    SRV_JOB_INBOX = 0, /* handed to the engine, not yet submitted to gen */
    SRV_JOB_RUNNING,   /* submitted (queued in gen or decoding) */
    SRV_JOB_FAILED,    /* the engine refused it: fail_msg */
    SRV_JOB_DONE,      /* every choice finished; usage is final */
} srv_job_state;

typedef struct srv_job {
    int refs;                     /* handler + engine */
    srv_job_state state;
    ponder_status fail_status;
    char fail_msg[PONDER_ERROR_MSG_BYTES];
    bool cancel;                  /* the client went away: the engine cancels at the next step */
    bool aborted;                 /* ended by cancel, shutdown or a decode error */
    bool shutdown;                /* ended because the server is stopping (answer 503) */

    srv_request req;              /* owned */
    srv_sub *subs;                /* owned; one per prompt */
    int32_t n_subs;
    /* a strategy other than direct: its rounds run through subs[0], their tokens are not
     * published; when it settles the winning chain becomes choice 0's one event */
    ponder_think_params think_p;  /* stop pointers into req */
    ponder_think_job *think;      /* owned */
    ponder_think_result *think_res; /* owned, once settled */

    srv_event *ev;                /* in arrival order */
    size_t n_ev, cap_ev;
    int32_t n_finished;
    ponder_gen_usage usage;
    double t_arrival_ms, t_first_ms, t_last_ms;
    bool got_first;

    pthread_cond_t cond;
    struct ponder_server *s;
    struct srv_job *next;         /* inbox or the engine's running list */
} srv_job;

/* What the chat template does with tools (tool_prompt.c, probed at load). */
typedef struct srv_tool_caps {
    ponder_tool_format format;    /* the call format its text teaches (GENERIC when it prints no tools) */
    bool tools;                   /* prints the "tools" it is given */
    bool calls;                   /* prints an assistant turn's tool_calls */
    bool object_args;             /* ... with arguments as a JSON object (given so when it can) */
    bool empty_content;           /* ... only when their content is "" rather than null */
    bool hidden_mark;             /* HERMES: <tool_call> is a control token of the vocabulary */
    bool tool_role;               /* prints a "tool" message's content */
} srv_tool_caps;

struct ponder_server {
    ponder_server_params p;
    char model_id[256];
    char fingerprint[40];
    ponder_model *model;
    ponder_model *draft;          /* speculative decoding's draft, or NULL */
    ponder_tokenizer *tok;
    ponder_chat_template *tmpl;   /* NULL: the model has none (ChatML with --chatml) */
    char tmpl_error[PONDER_ERROR_MSG_BYTES + 128]; /* why chat requests fail, when tmpl is NULL and !chatml */
    char *bos_text, *eos_text;
    srv_tool_caps tool_caps;
    ponder_pool *pool;
    ponder_gen *gen;
    int32_t n_ctx;

    pthread_mutex_t mu;
    pthread_cond_t engine_cv;
    srv_job *inbox_head, *inbox_tail;
    struct srv_embed_job *embed_head, *embed_tail; /* embeddings waiting for the engine (embeddings.c) */
    pthread_cond_t embed_cv;      /* an embedding job is done */
    srv_job *running;             /* in submission order */
    int32_t n_inflight;           /* accepted and not finished */
    int32_t n_admitted;           /* past the slot check, being prepared (they hold a place) */
    int32_t n_preparing;          /* of those, parsing/rendering/tokenizing now (at most SRV_PREPARE_MAX) */
    pthread_cond_t prepare_cv;    /* a preparation ended */
    int32_t max_piece;            /* bytes of the longest token piece: a text of more than
                                     n_ctx * max_piece bytes cannot fit the context */
    int64_t load_queued, load_active, load_sequences; /* the engine's last publish_load */
    int64_t cancelled_prompt, cancelled_completion; /* tokens of jobs cancelled before their end */
    bool stopping, stopped;
    bool engine_started;
    pthread_t engine;
    uint64_t id_state;
};

#define srv_log(s, level, ...) http_logf((s)->p.log, (s)->p.log_user, (level), __VA_ARGS__)

/* engine.c */
srv_job *srv_job_create(struct ponder_server *s);
void srv_job_unref(srv_job *j);   /* with s->mu held */
void *srv_engine_main(void *arg);
/* Hands a job to the engine (s->mu held); false if the server is full (429) or stopping. */
void srv_engine_enqueue(struct ponder_server *s, srv_job *j);

/* Requests parsed, rendered and tokenized at once: that work is CPU-bound (two cores
 * gain nothing from more), and each holds its parse tree, so peak memory is this many
 * requests' worth however many arrive together. */
#define SRV_PREPARE_MAX 4
/* JSON values a generation body may hold (it is scanned before it is parsed: a 4 MiB body
 * of tiny values parses into ~70 times its size): values in all, and objects, which cost
 * most (~200 bytes each), per allowed chat message. */
#define SRV_MAX_JSON_VALUES (1 << 20)
#define SRV_JSON_OBJECTS_PER_MESSAGE 8

/* call.c: a place among the slots and the queue for a request about to be prepared (false:
 * *e, 429 or 503), given back when it is enqueued or refused; and the gate that lets at most
 * SRV_PREPARE_MAX requests parse and tokenize at once. Embeddings take both too. */
bool srv_admission_take(struct ponder_server *s, http_api_error *e);
void srv_admission_give(struct ponder_server *s);
void srv_prepare_enter(struct ponder_server *s);
void srv_prepare_leave(struct ponder_server *s);

/* prompt.c: the cheap checks made before any parsing: the body's JSON values counted
 * (strings skipped), against the limits above. false: *e (400). */
bool srv_admit_body(const struct ponder_server *s, const char *body, size_t len, http_api_error *e);

/* prompt.c: parses and validates a body, resolves the model name (a strategy prefix
 * before the served id), sets up the strategy and tokenizes the prompts. false: *e. */
bool srv_job_prepare(struct ponder_server *s, srv_job *j, srv_endpoint kind, const char *body, size_t len,
                     http_api_error *e);

/* tool_prompt.c: the template's tool capabilities, probed once it is loaded (src: its
 * text; the tokenizer made); a request's messages adapted to them, the tools handed to the template or
 * described in the system message, a forced call's grammar into r->grammar; the text a
 * forced call starts with that goes at the end of the prompt (NULL: none). */
void srv_tools_probe(struct ponder_server *s, const char *src, size_t len);
bool srv_tools_prepare(struct ponder_server *s, srv_request *r, http_api_error *e);
const char *srv_tools_prefill(const struct ponder_server *s, const srv_request *r);

/* call.c: one request read back by its caller. */
typedef struct srv_call {
    struct ponder_server *s;
    srv_job *job;                 /* the caller's reference */
    srv_meta meta;
    /* a stream */
    size_t ev_pos;
    int32_t n_fin;                /* finish events streamed */
    size_t *text_offset;          /* per choice (completions logprobs) */
    bool started, ended;
    http_buf *tool_text;          /* tools_active streams: per choice, the text so far */
    size_t *tool_sent;            /*   and how much of it went out as content */
    int32_t tool_n;               /*   choices (tool_text's length) */
} srv_call;

typedef enum srv_fill { SRV_FILL_MORE = 0, SRV_FILL_TIMEOUT, SRV_FILL_END } srv_fill;

/* Prepares the body and hands the job to the engine; returns once it is running, or false
 * with *e (refused, busy: 429, shutting down: 503). Either way srv_call_end follows.
 * admitted: the caller already holds a place (srv_admission_take); the call uses it. */
bool srv_call_start(struct ponder_server *s, srv_call *c, srv_endpoint kind, const char *body, size_t len,
                    double t_arrival_ms, bool admitted, http_api_error *e);
bool srv_call_streams(const srv_call *c);
/* Not streaming: waits for the answer, asking gone(user) every poll_ms; true when it
 * came, false when gone said the client left (the job is then cancelled). */
bool srv_call_wait(srv_call *c, bool (*gone)(void *user), void *user, int poll_ms);
/* After srv_call_wait: the completion object (malloc'ed), or NULL and *e. */
char *srv_call_response(srv_call *c, http_api_error *e);
/* Streaming: appends the next SSE bytes ("data: ...\n\n", an error event if the job was
 * aborted, then "data: [DONE]\n\n"), waiting up to wait_ms for them. */
srv_fill srv_call_stream(srv_call *c, http_buf *out, int wait_ms);
/* Cancels the job if it still runs and drops the reference; c may be half-started. */
void srv_call_end(srv_call *c);

/* tool_answer.c: a choice's text parsed into calls (tc; *ids: one fresh id per call shown,
 * *n_shown of them: 1 when parallel_tool_calls is false); false out of memory. */
bool srv_tools_parse(struct ponder_server *s, const srv_request *r, const char *text, size_t len, ponder_tool_calls *tc,
                     char ***ids, int32_t *n_shown);
void srv_tools_ids_free(char **ids, int32_t n);
/* Streams of tools_active chat requests: the per-choice buffers (false out of memory;
 * nothing to do for other requests), a text event (content sent as far as it is surely
 * content; lp: its logprob or NULL), and at a choice's end the rest of the content and its
 * calls (true when there were calls: the finish chunk says "tool_calls"). */
bool srv_tools_stream_begin(srv_call *c);
void srv_tools_stream_end(srv_call *c);
void srv_tools_stream_text(srv_call *c, http_buf *out, const srv_event *e, const srv_logprob *lp);
bool srv_tools_stream_finish(srv_call *c, http_buf *out, int32_t choice);

/* embeddings.c: a /v1/embeddings body (parsed and tokenized by the caller's thread, run by
 * the engine between decode steps); the engine's two calls are made with s->mu held. */
void srv_engine_run_embeds(struct ponder_server *s);  /* unlocks s->mu while decoding */
void srv_engine_drop_embeds(struct ponder_server *s); /* shutdown: the queued ones fail */

#endif /* PONDER_SERVER_STATE_H */
