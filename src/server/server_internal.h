/*
 * server_internal.h — the server's parts the unit tests and the fuzz harness reach
 * without a model: request parsing and validation, response and stream-chunk building.
 * The error table and buffers are the HTTP layer's socket-free part (http/http.h,
 * http_core), shared with the router; the server opens no socket.
 */
#ifndef PONDER_SERVER_INTERNAL_H
#define PONDER_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http/http.h"

#include "ponder/gen.h"
#include "ponder/think.h"
#include "ponder/tokenizer.h"
#include "ponder/tools.h"

/* ---- requests ---- */
typedef enum srv_endpoint { SRV_EP_CHAT = 0, SRV_EP_COMPLETION } srv_endpoint;

#define SRV_MAX_STOP 4      /* OpenAI: up to 4 stop sequences */
#define SRV_MAX_N 128       /* OpenAI's bound for n */
#define SRV_MAX_LEGACY_LOGPROBS 5 /* completions: logprobs <= 5 (OpenAI) */
#define SRV_MAX_PROMPTS 128 /* completions: prompts in one request (a typo guard, as n's bound) */
#define SRV_TOOL_ID_BYTES 48

/* tool_choice: "auto" (the default), "none", "required", or one named function. */
typedef enum srv_tool_choice { SRV_TOOL_AUTO = 0, SRV_TOOL_NONE, SRV_TOOL_REQUIRED, SRV_TOOL_NAMED } srv_tool_choice;

/* One completions prompt, given as text or as token ids (exactly one of the two). */
typedef struct srv_prompt {
    char *text; size_t len;
    ponder_token *ids; int32_t n_ids;
} srv_prompt;

typedef struct srv_request {
    srv_endpoint kind;
    char *model;               /* NULL when absent */
    json_t *messages;          /* chat: normalized [{role, content: string, ...}] (owned) */
    json_t *tools;             /* chat: the tools array (validated, non-empty; owned), or NULL */
    srv_tool_choice tool_choice;
    char *tool_name;           /* SRV_TOOL_NAMED: the function (owned) */
    bool parallel_tool_calls;  /* default true: an answer may hold several calls */
    bool tools_active;         /* tools given and tool_choice not "none": the answer is parsed for
                                  calls (tool_format), and with required/named generation is
                                  constrained to them */
    ponder_tool_format tool_format; /* set by srv_job_prepare from the chat template */
    bool tools_in_template;    /* the template renders the tools itself (else, when active, they
                                  are described in the system message) */
    char *assistant_prefix;    /* chat, continue_final_message: the answer's first text (the last
                                  assistant message, removed from messages), or NULL */
    srv_prompt *prompts;       /* completion: the prompts, in order (a string, an array of
                                  strings, token ids or an array of token-id arrays) */
    int32_t n_prompts;         /* completion: >= 1; chat: 0 */
    int32_t max_tokens;        /* -1: not given (until end of generation or a full context) */
    ponder_sampler_params sampling;
    float presence_penalty, frequency_penalty;
    char *stop[SRV_MAX_STOP];
    int32_t n_stop;
    int32_t n;                 /* choices per prompt */
    bool stream, include_usage;
    bool echo;                 /* completion: the answer starts with its prompt's text */
    bool logprobs;             /* chat: logprobs: true; completion: logprobs given (0..5) */
    int32_t top_logprobs;      /* alternatives per token */
    bool temp_given;           /* "temperature" given (a strategy's default is not the API's 1) */
    bool cache_prompt;         /* llama-server's "cache_prompt" (default true): false evaluates the
                                  whole prompt, reusing nothing from the prompt cache */
    /* "ponder": {...} as given; ponder_strategy_plan_make resolves it with the model name
     * when the job is prepared (prompt.c) */
    char *strategy_text;       /* "ponder.strategy" (owned), NULL: not given */
    int32_t samples;           /* "ponder.samples"; 0: not given */
    ponder_cue_mode cue;       /* "ponder.cue": not given (the model's default), true, false */
    char *answer_text;         /* "ponder.answer" (owned), NULL: not given (number) */
    ponder_strategy_plan plan; /* set by srv_job_prepare: direct (not given) unless asked */
    ponder_grammar *grammar;   /* response_format json_object / json_schema, or "grammar"
                                  (owned); NULL: free text */
} srv_request;

/* Parses and validates a request body. Unknown fields are ignored; null means absent, as
 * OpenAI accepts. On failure *e names the param and false is returned (r is then empty). */
bool srv_request_parse(srv_endpoint kind, const char *body, size_t len, srv_request *r, http_api_error *e);
void srv_request_free(srv_request *r);
/* Choices in the response: n per prompt, prompt-major (index = prompt_i * n + j, as OpenAI). */
static inline int32_t srv_request_n_choices(const srv_request *r)
{
    return r->n * (r->n_prompts > 1 ? r->n_prompts : 1);
}

/* tools.c: "tools", "tool_choice", "parallel_tool_calls" and the messages' tool_calls and
 * tool_call_id (after parse_messages). false: *e. */
bool srv_request_parse_tools(json_t *root, srv_request *r, http_api_error *e);
/* [{id, type: "function", function: {name, arguments}}] of the first n calls. */
json_t *srv_tool_calls_json(const ponder_tool_calls *tc, char *const *ids, int32_t n);
/* A fresh "call_…" id (24 alphanumerics, as OpenAI's). */
void srv_tool_call_id(uint64_t *state, char *out, size_t cap);

/* The vars object for ponder_chat_render_json: {"messages", "bos_token", "eos_token",
 * "add_generation_prompt": true, "tools" (when tools is non-NULL)}, malloc'ed compact JSON. */
char *srv_chat_vars_json(const srv_request *r, const json_t *tools, const char *bos, const char *eos);
/* ChatML (the documented fallback), malloc'ed: "<|im_start|>ROLE\nCONTENT<|im_end|>\n"
 * per message, then "<|im_start|>assistant\n". */
char *srv_render_chatml(const json_t *messages);

/* ---- results and responses ---- */
typedef struct srv_logprob {
    ponder_gen_token_logprob chosen;
    int32_t n_top;
    ponder_gen_token_logprob top[PONDER_GEN_MAX_TOP_LOGPROBS]; /* last: a record may be allocated
                                                                  with only n_top of them (SRV_LOGPROB_BYTES) */
} srv_logprob;
#define SRV_LOGPROB_BYTES(n_top) (offsetof(srv_logprob, top) + (size_t)(n_top) * sizeof(ponder_gen_token_logprob))

/* What one choice produced (non-streaming responses). */
typedef struct srv_choice {
    char *text; size_t text_len;
    const srv_logprob *const *lp; int32_t n_lp; /* one per sampled token when logprobs were asked
                                                   (pointers: the records stay where they are) */
    ponder_finish finish;
    const ponder_tool_calls *tc;    /* tools_active: the text parsed (NULL: plain text); with
                                       calls, content is tc->content (null when empty) */
    char *const *tc_ids;            /* an id per call */
    int32_t n_tc;                   /* calls shown (1 when parallel_tool_calls is false) */
} srv_choice;

typedef struct srv_stats {
    const ponder_think_result *think; /* a strategy's result (non-NULL adds its fields to "ponder") */
    int32_t prompt_tokens, completion_tokens, prompt_tokens_evaluated;
    int32_t prompt_tokens_cached; /* prompt positions the prompt cache supplied */
    int32_t draft_tokens, draft_accepted; /* speculative decoding (--draft); 0: none */
    uint64_t flops;
    double wall_ms;               /* arrival to the last token */
    double gen_ms;                /* first to last token */
} srv_stats;

/* Identity fields shared by a response and its chunks. */
typedef struct srv_meta {
    char id[48];                  /* "chatcmpl-…" / "cmpl-…" */
    int64_t created;
    const char *model;
    const char *fingerprint;
} srv_meta;

const char *srv_finish_reason(ponder_finish f); /* "stop" / "length" (cancel/error never reach a client) */

/* Whole responses, malloc'ed JSON text. */
char *srv_build_response(const srv_request *r, const srv_meta *m, const ponder_tokenizer *tok,
                         const srv_choice *choices, const srv_stats *st);
/* One stream chunk for a choice: role (first chunk), text and logprob, or finish; as
 * "data: {...}\n\n", malloc'ed. st non-NULL adds the "ponder" object. */
typedef struct srv_delta {
    int32_t choice;
    bool role;                        /* chat: the first chunk, delta {role, content: ""} */
    const char *text; size_t text_len;
    const srv_logprob *lp;            /* NULL: no logprob in this chunk */
    size_t text_offset;               /* completions logprobs: where this token's text starts */
    ponder_finish finish;             /* NONE: not a final chunk */
    bool finish_tool_calls;           /* the final chunk says "tool_calls" */
    /* a tool-call delta (tool_delta; text then unused): the first one of a call carries
     * its index, id, type and name with arguments "", later ones argument fragments */
    bool tool_delta;
    int32_t tool_index;
    const char *tool_id, *tool_name;
    const char *tool_args; size_t tool_args_len;
} srv_delta;
char *srv_build_chunk(const srv_request *r, const srv_meta *m, const ponder_tokenizer *tok, const srv_delta *d,
                      const srv_stats *st);
/* The usage chunk (include_usage): empty choices, usage and the ponder object. */
char *srv_build_usage_chunk(const srv_request *r, const srv_meta *m, const srv_stats *st);


#endif /* PONDER_SERVER_INTERNAL_H */
