/*
 * gen_internal.h — gen's state (requests, choices, the generator) shared by gen.c (the
 * scheduler and step loop) and gen_spec.c (speculative decoding), and the text and
 * probability helpers behind them, apart so that tests can check them on hand-made input.
 */
#ifndef PONDER_GEN_INTERNAL_H
#define PONDER_GEN_INTERNAL_H

#include "ponder/gen.h"
#include "ponder/grammar.h"

/* A request's stop strings (owned copies; none empty). */
typedef struct gen_stops {
    char **s;
    size_t *len;
    int32_t n;
} gen_stops;

typedef enum req_state { REQ_QUEUED, REQ_PROMPT, REQ_RUNNING, REQ_DONE } req_state;

typedef struct gen_choice {
    ponder_seq_id seq;         /* -1 while it holds none */
    ponder_sampler *smp;
    ponder_detokenizer *detok;
    ponder_token *tokens;      /* every sampled token, a final end-of-generation one included */
    int32_t n_tokens, cap_tokens;
    char *text;                /* detokenized text; [0, n_final) handed out, the rest held */
    size_t len, cap, n_final;
    double sum_logprob;
    ponder_finish finish;
    uint64_t seed;             /* its sampler's seed (a random one as drawn) */
    ponder_token next;         /* sampled, decoded by the next step; PONDER_TOKEN_NULL if none */
    /* speculative decoding (the generator has a draft) */
    ponder_sampler *dsmp;      /* the draft's chain: its greedy picks, or q (ponder_sampler_probs) */
    float *q;                  /* sampling only: k_max rows of n_vocab, q of each proposal */
    int32_t k;                 /* tokens to propose next step (adapted) */
    float acceptance;          /* running mean of its verifies' accepted fraction */
    int32_t n_verifies;
    int32_t pause;             /* steps left without proposals (see spec_after_verify) */
    int32_t n_draft;           /* proposed this step, verified after pending `next` */
    int32_t n_proposed;        /* of the n_draft planned, how many the draft produced */
    ponder_token draft[PONDER_GEN_DRAFT_K_MAX];
    /* grammar (the request has one): the state after its committed tokens; during the
     * draft pass also after its n_gm_draft proposals */
    ponder_grammar_matcher *gm;
    int32_t n_gm_draft;
} gen_choice;

typedef struct gen_req {
    int32_t id;
    req_state state;
    bool released;             /* released inside a callback: freed when the step ends */
    ponder_token *prompt;
    int32_t n_prompt, n_prompt_done;
    int32_t n_take;            /* prompt tokens in the batch being decoded */
    int32_t n_choices, n_live;
    int32_t max_tokens;
    bool ignore_eos, logprobs;
    bool no_cache;             /* ponder_gen_request.no_cache_prompt */
    int32_t top_logprobs;
    int32_t repeat_last_n;     /* the penalty window, rebuilt in the draft's sampler */
    gen_stops stops;
    ponder_gen_event_fn on_event;
    void *user;
    gen_choice *choices;
    ponder_gen_usage usage;
} gen_req;

/* What a wanted logits row of the batch is for: one choice's next token, or (choice
 * -1) the last prompt token of a request, shared by all its choices. */
typedef struct gen_row {
    gen_req *r;
    int32_t choice;
    int32_t n;                 /* logits rows it spans: 1 + the choice's proposals */
} gen_row;

/* What a free sequence still holds for the prompt cache (gen_cache.c). */
typedef struct gen_cached {
    ponder_token *tokens;      /* the tokens of its KV positions, in order */
    int32_t n, cap;            /* n == 0: holds nothing */
    uint64_t last_used;        /* g->cache_clock when cached: the oldest gives way first */
} gen_cached;

struct ponder_gen {
    const ponder_model *model;
    const ponder_tokenizer *tok;
    ponder_context *ctx;
    int32_t n_vocab, n_ctx, n_seq_max;
    int32_t n_cells;           /* KV cells of the empty context */
    bool *seq_used;            /* n_seq_max */
    gen_cached *cached;        /* n_seq_max when cache_prompts, else NULL */
    uint64_t cache_clock;
    gen_req **reqs;            /* submit order: the queue is its QUEUED entries */
    int32_t n_reqs, cap_reqs;
    int32_t next_id;
    bool in_step;
    /* one step's batch: at most n_seq_max generated tokens plus the prompt chunks */
    int32_t cap_batch;
    int32_t *b_tokens;
    ponder_seq_id *b_seq;
    bool *b_want;
    gen_row *rows;             /* n_seq_max: a live choice or a completing prompt holds a sequence */
    float *logits;             /* n_seq_max rows of n_vocab */
    float *masked;             /* n_vocab scratch for the log-softmax */
    /* the log-softmax normalisers of a step's logits rows, computed by the context's
     * threads before the rows are walked (gen_prepare_rows) */
    ponder_pool *pool;
    float *lse_scratch;        /* n_vocab per thread */
    double *row_lse;           /* n_logit_rows */
    int32_t n_row_lse;         /* rows of g->logits whose normaliser is in row_lse */
    ponder_token *eog;         /* the vocabulary's end-of-generation ids */
    int32_t n_eog;
    ponder_gen_token_logprob top[PONDER_GEN_MAX_TOP_LOGPROBS];
    /* speculative decoding: the draft's context mirrors ctx's sequence ids */
    const ponder_model *draft;
    ponder_context *dctx;
    int32_t draft_k, draft_k_max;
    int32_t n_logit_rows;      /* rows g->logits holds */
    int32_t *d_tokens;         /* the draft's batch (catch-up can hold whole prompts) */
    ponder_seq_id *d_seq;
    bool *d_want;
    size_t cap_d;
    gen_row *d_rows;           /* n_seq_max: the choice of each wanted draft row */
    float *d_logits;           /* n_seq_max rows */
    float *p;                  /* n_vocab: the model's distribution of one row */
    float draft_cost;          /* the draft's weight bytes over the model's */
    ponder_grammar_vocab *gvocab; /* the tokens' bytes for grammars, made on first use */
};

/* The log-softmax normalisers of the first n rows of g->logits, in parallel (gen.c). */
void gen_prepare_rows(ponder_gen *g, int32_t n);
/* Log-softmax normaliser and top alternatives of a logits row of g->logits (gen.c). */
double gen_prepare_row(ponder_gen *g, const gen_req *r, float *row, int32_t *n_top);
/* Token t becomes choice ci's next token: penalty window, logprobs, text, stop strings,
 * finish, event (gen.c). */
ponder_status gen_commit_token(ponder_gen *g, gen_req *r, int32_t ci, ponder_token t, const float *logits,
                               double lse, int32_t n_top, ponder_error *err);

/* ---- the prompt cache (gen_cache.c) ---- */

/* Choice c of r (one choice, its prompt done) finished: its sequence becomes free but
 * keeps the prompt and the decoded tokens in its KV for a later prompt. */
void gen_cache_keep(ponder_gen *g, const gen_req *r, gen_choice *c);
/* The free sequence sharing the longest prefix with prompt, and in *keep how much of it
 * to keep (at most n_prompt - 1); -1 when none shares a token. */
int32_t gen_cache_match(const ponder_gen *g, const ponder_token *prompt, int32_t n_prompt, int32_t *keep);
/* Forgets what free sequence s holds (its KV cleared). */
void gen_cache_drop(ponder_gen *g, int32_t s);
/* Drops the least recently cached sequence other than except; false when there is none. */
bool gen_cache_evict(ponder_gen *g, int32_t except);

/* Start of the earliest occurrence of any stop string in text[from..n) (the whole
 * string inside that range), or SIZE_MAX. */
size_t gen_stop_find(const gen_stops *st, const char *text, size_t n, size_t from);

/* Bytes at the end of text[from..n) that are a proper prefix of some stop string: the
 * longest such suffix, i.e. what must be held back until later text decides. */
size_t gen_stop_holdback(const gen_stops *st, const char *text, size_t n, size_t from);

/* log(sum(exp(l))) over the row (exp within 2 ulp of expf, summed in double); NaN logits
 * count as -inf; -inf if nothing is finite. scratch: n floats. */
double gen_log_sum_exp(const float *l, int32_t n, float *scratch);

/* The k most likely tokens (k <= PONDER_GEN_MAX_TOP_LOGPROBS), best first, ties to the
 * lower id, with logprob l[id] - lse. Returns how many were written (min(k, n)). */
int32_t gen_top_logprobs(const float *l, int32_t n, double lse, int32_t k, ponder_gen_token_logprob *out);

/* ---- speculative decoding (gen_spec.c) ---- */

/* A token drawn from the distribution p[0..n) (non-positive entries never drawn; the sum
 * need not be exactly 1) with the uniform u in [0, 1); -1 if nothing is positive. */
int32_t gen_spec_draw(const float *p, int32_t n, double u);

/* Speculative sampling's rule for a draft token x drawn from q: kept (*accepted) if
 * u_accept < p(x)/q(x), else the token returned is drawn with u_resample from
 * normalize(max(0, p - q)) (from p if that is empty up to rounding). */
int32_t gen_spec_verify(const float *p, const float *q, int32_t n, int32_t x, double u_accept, double u_resample,
                        bool *accepted);

/* The next step's k after a step that proposed k tokens and had n_accepted accepted. */
int32_t gen_spec_next_k(int32_t k, int32_t n_accepted, int32_t k_max);

/* The step's draft pass: how many tokens each running choice proposes (its k, within
 * max_tokens and the context), then the draft's decodes making the proposals; then, for a
 * row with proposals, their verification against the model's rows. */
void gen_spec_plan(ponder_gen *g);
void gen_spec_run_draft(ponder_gen *g);
ponder_status gen_spec_verify_choice(ponder_gen *g, gen_req *r, int32_t ci, float *rows, ponder_error *err);

/* ---- grammars (gen_grammar.c) ---- */

/* Matchers for r's choices when q has a grammar (the vocabulary made on first use). */
ponder_status gen_grammar_attach(ponder_gen *g, gen_req *r, const ponder_gen_request *q, ponder_error *err);
void gen_grammar_detach(gen_choice *c);
/* Sets sampler s's mask to what c's grammar allows next, `ahead` tokens past its committed
 * ones (draft proposals), within what max_tokens and the context leave (no grammar:
 * nothing to do, true); false when nothing may follow (a dead end, or out of memory): the
 * choice cannot go on. gen_grammar_unrestrict lifts the mask after the draw. */
bool gen_grammar_restrict(ponder_gen *g, const gen_req *r, gen_choice *c, ponder_sampler *s, int32_t ahead);
void gen_grammar_unrestrict(ponder_sampler *s);
/* Advances c's grammar by a committed token; true when the grammar is then complete and
 * nothing else may follow (the choice stops). */
bool gen_grammar_commit(gen_choice *c, ponder_token t);
/* The draft pass: advances c's grammar by a proposal (counted), and takes them all back. */
bool gen_grammar_draft_accept(gen_choice *c, ponder_token t);
void gen_grammar_draft_rollback(gen_choice *c);

#endif
