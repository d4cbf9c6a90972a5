/*
 * gen.h — generation: several requests, each with one or more choices, decoded together
 * on one context (continuous batching). The one generation loop: `ponder run` (plain,
 * --draft, --strategy), `ponder chat` (with the prompt cache), `ponder bench --draft`,
 * the server's slots, `n` choices and the think strategies (sc:N chains): a request's prompt is
 * evaluated once and its choices fork from it; every step decodes one batch holding the
 * next prompt chunk of newly admitted requests and one token of every live choice.
 *
 * Determinism: choice i of a request samples with seed (seed + i) unless seeds are given,
 * and a choice's tokens never depend on what else is being decoded (see the invariance
 * note in model.h), so a request with n choices gives the same texts as n requests of one
 * choice with those seeds.
 *
 * Not thread-safe: one thread submits, steps and cancels (the server serializes access).
 * Callbacks run on that thread inside ponder_gen_step, and inside ponder_gen_cancel (the
 * cancelled choices' final events). A callback may submit, cancel (its own request too:
 * the remaining choices of the step are skipped) and release; it may not step.
 */
#ifndef PONDER_GEN_H
#define PONDER_GEN_H

#include "ponder/common.h"
#include "ponder/grammar.h"
#include "ponder/model.h"
#include "ponder/sample.h"
#include "ponder/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_gen ponder_gen;

typedef enum ponder_finish {
    PONDER_FINISH_NONE = 0, /* still running */
    PONDER_FINISH_STOP,     /* end-of-generation token or a stop string ("stop") */
    PONDER_FINISH_LENGTH,   /* max_tokens or the context's end ("length") */
    PONDER_FINISH_CANCELLED,
    PONDER_FINISH_ERROR,
} ponder_finish;

const char *ponder_finish_name(ponder_finish f); /* "stop", "length", "cancelled", "error" */

#define PONDER_GEN_MAX_TOP_LOGPROBS 20 /* OpenAI's limit for top_logprobs */

typedef struct ponder_gen_token_logprob {
    ponder_token token;
    float logprob;          /* log-softmax of the raw logits (before penalties and temperature) */
} ponder_gen_token_logprob;

/* What one step produced for one choice. */
typedef struct ponder_gen_event {
    int32_t request_id;
    int32_t choice;         /* 0..n_choices-1 */
    ponder_token token;     /* PONDER_TOKEN_NULL on the final event when nothing was sampled
                               (cancel, error, KV cells exhausted) */
    const char *text;       /* text now final for this choice (stop-string prefixes held back, */
    size_t text_len;        /*   complete UTF-8 only); valid during the callback */
    ponder_gen_token_logprob chosen;   /* when logprobs were asked */
    const ponder_gen_token_logprob *top; int32_t n_top; /* top_logprobs alternatives, best first */
    ponder_finish finish;   /* != NONE on the choice's last event */
} ponder_gen_event;

typedef void (*ponder_gen_event_fn)(const ponder_gen_event *ev, void *user);

typedef struct ponder_gen_request {
    const ponder_token *prompt;   /* copied at submit; ids checked against the vocabulary */
    int32_t n_prompt;
    int32_t n_choices;            /* >= 1 */
    int32_t max_tokens;           /* per choice; <= 0: until the context is full */
    ponder_sampler_params sampling; /* checked at submit (PONDER_ERR_INVALID_ARG) */
    const uint64_t *seeds;        /* NULL: choice i uses sampling.seed + i (a random seed is
                                     drawn once, for choice 0) */
    float presence_penalty;       /* OpenAI semantics, over the generated tokens within the
                                     last sampling.repeat_last_n (as llama-server); non-zero
                                     replaces sampling.presence_penalty */
    float frequency_penalty;      /* likewise */
    const char *const *stop;      /* stop strings (copied, none empty); matched on the text,
                                     earliest match wins, not included */
    int32_t n_stop;
    bool ignore_eos;              /* end-of-generation tokens are never sampled (llama.cpp) */
    bool no_cache_prompt;         /* with cache_prompts: evaluate the whole prompt, reusing no
                                     cached prefix (llama-server's "cache_prompt": false); the
                                     request's KV is still kept for later ones */
    bool penalize_prompt;         /* the prompt's tokens enter each choice's repetition window
                                     first, as llama-cli does (`ponder run`, `ponder chat`);
                                     else the window holds generated tokens only (the server) */
    bool logprobs;                /* fill ev->chosen */
    int32_t top_logprobs;         /* 0..PONDER_GEN_MAX_TOP_LOGPROBS */
    ponder_gen_event_fn on_event; /* may be NULL (read the result at the end) */
    void *user;
    /* Grammar-constrained decoding (NULL: off). Every choice's text is a sentence of the
     * grammar, or a prefix of one when max_tokens or the context cut it ("length"): before
     * each draw the sampling chain is restricted to the tokens the grammar allows
     * (ponder_sampler_set_mask), the draft's proposals too; end-of-generation tokens are
     * allowed exactly when the text is complete, and a choice whose text is complete with
     * nothing else possible stops there. "stop" thus always means complete. Stop strings
     * are not applied (the grammar decides where the text ends). A state no token can
     * continue (a vocabulary without some byte) ends the choice with "error". Not copied:
     * it must stay valid until the request is released. */
    const ponder_grammar *grammar;
} ponder_gen_request;

#define PONDER_GEN_DRAFT_K_MAX 16 /* bound of the tokens a draft proposes per step */

typedef struct ponder_gen_params {
    int32_t n_seq_max;            /* choices live at once, over all requests (default 1) */
    ponder_context_params context; /* n_ctx is per sequence; n_seq_max is set from above;
                                      n_kv_cells 0: n_ctx * n_seq_max. With fewer cells, a
                                      step that does not fit ends its longest choice
                                      ("length") */
    /* Speculative decoding (draft NULL: off). The draft model (same vocabulary, checked by
     * ponder_gen_check_draft) runs in its own context with the same parameters; every
     * step it proposes k tokens per choice, the model verifies them all in the step's one
     * batched decode, the longest acceptable prefix is kept plus one token from the
     * model, and both KV caches drop the rest. Greedy: the tokens are those of the model
     * alone. Sampling: a proposal x from the draft's distribution q is accepted with
     * probability min(1, p(x)/q(x)), else the token is drawn from normalize(max(0, p - q))
     * (Leviathan et al. 2023), p and q being the distributions after the request's whole
     * sampling chain (ponder_sampler_probs), so the tokens follow the model's distribution
     * exactly (not the same draws as without a draft). k adapts per choice: +1 after a
     * step accepting all k, halved after one accepting fewer than k/2, within
     * 1..draft_k_max, and never past max_tokens or the context. A choice whose running
     * acceptance (from its fourth verify on) is below the draft's cost — its weight bytes
     * over the model's, what a memory-bound decode reads — cannot gain and pauses: 16
     * steps without proposals, then a probe with k = 1. No clocks: a seed fixes the
     * output. */
    const ponder_model *draft;
    int32_t draft_k;              /* initial k (0: 4) */
    int32_t draft_k_max;          /* 0: PONDER_GEN_DRAFT_K_MAX; 1..PONDER_GEN_DRAFT_K_MAX */
    /* Prompt cache (llama-server's cache_prompt): a finished request of one choice leaves
     * its KV (prompt and decoded tokens) in its sequence, and a later one-choice request
     * whose prompt starts the same way reuses the common prefix: only the rest is
     * evaluated (usage.prompt_tokens_evaluated says how much), with the same tokens as
     * without the cache. Cached positions give way to any request needing the sequence or
     * the cells. Not with a draft (PONDER_ERR_INVALID_ARG). */
    bool cache_prompts;
} ponder_gen_params;

/* Can draft propose tokens for target? Same vocabulary size and the same token texts
 * (tokenizer.ggml.tokens, every entry) and special token ids; otherwise
 * PONDER_ERR_INVALID_ARG naming the first difference. */
ponder_status ponder_gen_check_draft(const ponder_model *target, const ponder_model *draft, ponder_error *err);

ponder_gen_params ponder_gen_params_default(void);

ponder_status ponder_gen_create(const ponder_model *m, const ponder_tokenizer *tok, const ponder_gen_params *p,
                                ponder_gen **out, ponder_error *err);
void ponder_gen_free(ponder_gen *g);

/* Queues a request (FIFO); it is admitted when it has sequences and cells. A prompt longer
 * than the context, or more choices than n_seq_max → PONDER_ERR_RANGE with the numbers;
 * an empty prompt, bad sampling parameters → PONDER_ERR_INVALID_ARG. *request_id > 0
 * (0 on failure). */
ponder_status ponder_gen_submit(ponder_gen *g, const ponder_gen_request *r, int32_t *request_id,
                                ponder_error *err);
/* Ends a request now (its choices finish with PONDER_FINISH_CANCELLED; their final events,
 * with any held-back text, are delivered before it returns), freeing its sequences for
 * the next step. Unknown or finished id: no-op. */
void ponder_gen_cancel(ponder_gen *g, int32_t request_id);
/* One batched decode over everything admitted; *did_work false when there was nothing to
 * do. A decode error ends the requests in the batch with PONDER_FINISH_ERROR and is
 * returned. */
ponder_status ponder_gen_step(ponder_gen *g, bool *did_work, ponder_error *err);
/* Requests submitted and not yet finished (queued or running). */
int32_t ponder_gen_n_pending(const ponder_gen *g);
int32_t ponder_gen_n_queued(const ponder_gen *g); /* of those, not yet admitted */

/* A finished (or running) choice's result, valid until the request is released. */
typedef struct ponder_gen_choice_result {
    const char *text; size_t text_len;     /* the whole generated text, stop string excluded
                                              (NUL-terminated; an incomplete UTF-8 sequence at
                                              the very end is dropped) */
    const ponder_token *tokens; int32_t n_tokens; /* every sampled token, a final
                                              end-of-generation token included */
    double sum_logprob;                    /* sum of the chosen tokens' logprobs (raw logits) */
    ponder_finish finish;
    uint64_t seed;                         /* the choice's sampler seed (a random one resolved) */
} ponder_gen_choice_result;

typedef struct ponder_gen_usage {
    int32_t prompt_tokens;                 /* the request's prompt length */
    int32_t prompt_tokens_evaluated;       /* prompt positions actually run (once, shared) */
    int32_t completion_tokens;             /* over all choices */
    uint64_t flops;                        /* forward FLOPs spent on this request (the
                                              draft model's included) */
    int32_t draft_tokens;                  /* speculative decoding: tokens the draft proposed */
    int32_t draft_accepted;                /*   of those, accepted by the model */
    int32_t verify_steps;                  /*   batched verifications of proposals */
} ponder_gen_usage;

bool ponder_gen_done(const ponder_gen *g, int32_t request_id); /* unknown id: true */
ponder_status ponder_gen_result(const ponder_gen *g, int32_t request_id, int32_t choice,
                                ponder_gen_choice_result *out, ponder_error *err);
ponder_status ponder_gen_usage_of(const ponder_gen *g, int32_t request_id, ponder_gen_usage *out,
                                  ponder_error *err);
/* Forgets a request (frees its results); an unfinished one is cancelled first, without
 * events. */
void ponder_gen_release(ponder_gen *g, int32_t request_id);

/* Convenience: submits r, steps until it is done, leaves its results readable. */
ponder_status ponder_gen_run(ponder_gen *g, const ponder_gen_request *r, int32_t *request_id, ponder_error *err);

const ponder_context *ponder_gen_context(const ponder_gen *g);
/* Forgets every cached prompt (cache_prompts): the next request evaluates all of its own. */
void ponder_gen_cache_clear(ponder_gen *g);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_GEN_H */
