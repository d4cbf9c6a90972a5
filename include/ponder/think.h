/*
 * think.h — test-time compute strategies: how many chains to sample for a question and how
 * to turn them into one answer. Used by `ponder run --strategy`, `ponder eval` and the server.
 *
 *   direct   one sample of the prompt as given
 *   cot      one sample after a chain-of-thought cue (zero-shot "Let's think step by step.",
 *            Kojima et al. 2022) or after few-shot exemplars (prefix text)
 *   sc:N     self-consistency (Wang et al. 2022): N chains sampled as ONE gen request with
 *            n_choices = N, so the prompt is evaluated once and its KV shared; majority vote
 *   asc:N    adaptive consistency (Aggarwal et al. 2023): chains in rounds of k, stopping as
 *            soon as the Beta criterion says the majority is settled; at most N chains
 *   bon:N    best-of-N: N chains in one request; the chain a verifier (below) scores highest
 *            wins, or without one the chain with the highest mean token log-probability
 *
 * Answers. Each chain's text goes through an extractor (numbers or multiple-choice letters,
 * rules below) and a normalizer, so "$1,234.50", "1234.5" and "2469/2" vote together.
 *
 * Voting. Among chains with an answer, the answer with most votes wins; a tie goes to the
 * answer whose FIRST occurrence is earliest (lowest chain index) — chain order is fixed by
 * the per-chain seeds (seed + i), so the result is deterministic. agreement = votes of the
 * winner / chains with an answer (0 when no chain has one); chains without an answer are
 * counted in n_unanswered and never vote.
 *
 * Accounting. Every result carries: completion tokens (all chains), prompt tokens (the
 * prompt's length) and prompt tokens evaluated (positions actually run: once per gen request,
 * so once for sc/bon, once per round for asc), FLOPs and wall time. FLOPs are gen's count:
 * for every position run, ponder_model_flops_per_token(m, n_past) = 2 × (parameters used per
 * token, i.e. every matrix product's multiply-adds) + attention over the n_past + 1 positions
 * (QK^T and AV); summed over the prompt positions evaluated and every generated token.
 * Local scoring (ponder_think_score_choices) counts the same way.
 *
 * Ownership: results are malloc'ed by the call that returns them and freed with
 * ponder_think_result_free / ponder_eval_items_free. Nothing here prints or keeps globals.
 */
#ifndef PONDER_THINK_H
#define PONDER_THINK_H

#include "ponder/common.h"
#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/sample.h"
#include "ponder/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- strategies ---- */

typedef enum ponder_think_kind {
    PONDER_THINK_DIRECT = 0,
    PONDER_THINK_COT,
    PONDER_THINK_SC,
    PONDER_THINK_ASC,
    PONDER_THINK_BON,
} ponder_think_kind;

typedef enum ponder_answer_kind {
    PONDER_ANSWER_NUMBER = 0, /* numeric answer, normalized and compared as a number */
    PONDER_ANSWER_CHOICE,     /* a multiple-choice letter A.. */
    PONDER_ANSWER_TEXT,       /* the first non-empty line, trimmed, lower-cased */
} ponder_answer_kind;

#define PONDER_THINK_MAX_SAMPLES 1024 /* sc:N / asc:N / bon:N upper bound (a typo guard) */

typedef struct ponder_strategy {
    ponder_think_kind kind;
    int32_t n_samples; /* direct/cot: 1; sc/bon: N; asc: the budget (most chains) */
} ponder_strategy;

/* "direct", "cot", "sc:8", "asc:16", "bon:4" (also "sc8", "sc-8", any case). A missing N
 * takes the default (sc 8, asc 16, bon 4). Bad text → PONDER_ERR_INVALID_ARG listing the forms. */
ponder_status ponder_strategy_parse(const char *s, ponder_strategy *out, ponder_error *err);
/* Canonical text ("sc:8") into buf; returns buf. */
const char *ponder_strategy_format(const ponder_strategy *s, char *buf, size_t cap);
const char *ponder_think_kind_name(ponder_think_kind k); /* "direct", "cot", "sc", "asc", "bon" */
/* optillm's model-name convention: "sc8-smollm2" → sc:8 and *rest = "smollm2"; also
 * "cot-", "direct-", "asc16-", "bon4-" (the N may be omitted). Returns false (and leaves
 * *out alone, *rest = name) when the name has no such prefix. */
bool ponder_strategy_from_model_name(const char *name, ponder_strategy *out, const char **rest);

/* ---- a strategy as a front end asks for it: one rule for the CLI, the server and the router ----
 *
 * Every front end hands what it was given to ponder_strategy_plan_make and gets the same
 * meaning back:
 *   - the strategy: the text (--strategy, "ponder": {"strategy"}, a cascade stage's
 *     strategy:) or, when no text is given, an optillm model-name prefix (sc8-, cot-,
 *     asc16-, bon4-, direct-; the N may be left out); the text wins over the prefix;
 *   - samples replaces the N of sc/asc/bon; more than 1 with direct or cot is an error;
 *   - direct is ONE chain of the prompt as given: no cue, ever (the server answers it as a
 *     plain request; `run`, `eval` and the router's stages extract its answer);
 *   - the cue (PONDER_THINK_COT_CUE) goes after the prompt — for a chat, after the last
 *     user message's text — for cot, sc, asc and bon, unless turned off: by the request
 *     (--no-cue, "cue": false) or, when the request says nothing, by the model
 *     (ponder_think_model_cue: the GGUF key PONDER_THINK_CUE_KEY, written by `ponder train`
 *     for models trained on their own question/solution format);
 *   - the temperature when the request gives none: 0 (greedy) for direct and cot; for
 *     sc, asc and bon the model's (the GGUF key PONDER_THINK_TEMP_KEY: the temperature its
 *     trainer measured its votes to pay best at, as Hugging Face models ship theirs in
 *     generation_config.json), else PONDER_THINK_SAMPLED_TEMP.
 * A task's own prompt format stays the task's (ponder_eval_prompt). */

#define PONDER_THINK_CUE_KEY "ponder.cue"   /* GGUF bool: does the model want the cue (absent: yes) */
#define PONDER_THINK_SAMPLED_TEMP 0.7f      /* sc/asc/bon without a temperature (Wang et al. 2022) */
#define PONDER_THINK_TEMP_KEY "ponder.sampled_temp" /* GGUF float: the model's own sc/asc/bon default */

typedef enum ponder_cue_mode {
    PONDER_CUE_MODEL = 0, /* not said: the model's ponder.cue, else on */
    PONDER_CUE_ON,
    PONDER_CUE_OFF,
} ponder_cue_mode;

typedef struct ponder_strategy_ask {
    const char *strategy;  /* "direct", "cot", "sc:8", … as ponder_strategy_parse reads it; NULL: not given */
    const char *model;     /* a requested model name the caller did not find as it is, which may
                              start with a strategy prefix; NULL: none */
    int32_t samples;       /* replaces the N of sc/asc/bon; 0: not given */
    ponder_cue_mode cue;
    const char *answer;    /* "number", "choice" or "text"; NULL: number */
} ponder_strategy_ask;

typedef struct ponder_strategy_plan {
    bool given;                /* a strategy was asked for (by text or by a model-name prefix) */
    ponder_strategy strategy;  /* direct (1 chain) when not given */
    bool cue;                  /* the cue goes after the prompt (false for direct) */
    ponder_answer_kind answer;
    const char *model;         /* ask->model without its prefix (points into it); NULL if ask->model is */
    bool prefixed;             /* ask->model started with a strategy prefix */
    float sampled_temp;        /* sc/asc/bon's temperature when the request gives none */
    const char *field;         /* on error: the bad field, "strategy", "samples" or "answer" */
} ponder_strategy_plan;

/* What a model says about how to run it (ponder_think_model_defaults): its cue default and
 * the temperature of its sampled strategies. */
typedef struct ponder_think_model_prefs {
    bool cue;
    float sampled_temp;
} ponder_think_model_prefs;

/* Resolves ask into *out by the rules above; prefs are the model's defaults
 * (ponder_think_model_defaults; NULL when there is no model at hand: cue on, 0.7). Bad input →
 * PONDER_ERR_INVALID_ARG with a message naming the value and out->field naming the field.
 * A model name without a prefix is not an error (out->model = ask->model). */
typedef struct ponder_think_params ponder_think_params; /* below */

ponder_status ponder_strategy_plan_make(const ponder_strategy_ask *ask, const ponder_think_model_prefs *prefs,
                                        ponder_strategy_plan *out,
                                        ponder_error *err);
/* Sets p's strategy, cot_cue (NULL when the plan has no cue) and answer_kind from the plan;
 * with temp_given false also p->sampling.temp (0 for one chain, else plan->sampled_temp). */
void ponder_think_params_from_plan(ponder_think_params *p, const ponder_strategy_plan *plan, bool temp_given);
/* 0 for direct and cot, PONDER_THINK_SAMPLED_TEMP for sc, asc and bon. */
float ponder_strategy_default_temp(const ponder_strategy *s);
/* The model's cue default: its GGUF bool PONDER_THINK_CUE_KEY, true when absent (or m NULL). */
bool ponder_think_model_cue(const ponder_model *m);
/* The model's defaults: ponder_think_model_cue, and its PONDER_THINK_TEMP_KEY when that is
 * a number in (0, 2] (else PONDER_THINK_SAMPLED_TEMP). m NULL: the defaults. */
ponder_think_model_prefs ponder_think_model_defaults(const ponder_model *m);
/* "number", "choice", "text" (exact) → *out; false for anything else. */
bool ponder_answer_kind_parse(const char *s, ponder_answer_kind *out);

/* ---- answers ---- */

#define PONDER_ANSWER_BYTES 64 /* a normalized answer, NUL included */

/* Extracts a normalized answer from a generated text into out[PONDER_ANSWER_BYTES];
 * false when there is none.
 *
 * NUMBER, in order: (1) the number after the last "####" (GSM8K's solution format);
 * (2) the first number after the last "answer is" / "answer:" (any case; "The answer is
 * $12." → 12); (3) else the last number in the text. A number is an optional sign ("-",
 * U+2212), optional currency ($ € £), digits with optional thousands commas (only groups of
 * three: "1,234" is 1234, "1,2" is two numbers), an optional decimal part, an optional
 * fraction ("3/4", mixed "1 1/2"); a trailing period, "%" or a unit word ("12 dollars") is
 * not part of it. The normalized form is the shortest decimal that round-trips at 10
 * significant digits ("1234.5", "0.75", "-3"), so equal numbers give equal strings.
 *
 * CHOICE (letters A .. A+n_choices-1; n_choices <= 0 means up to J): (1) after the last
 * "answer is" / "answer:" a standalone letter, optionally in parentheses ("Answer: C",
 * "the answer is (B)"); (2) else the last parenthesized letter "(B)"; (3) else a letter
 * alone at the start of the text ("B", "B. Paris", "B)"). Normalized: the capital letter. */
bool ponder_answer_extract(ponder_answer_kind kind, int32_t n_choices, const char *text, size_t len,
                           char out[PONDER_ANSWER_BYTES]);
/* Parses one number in the forms above (the whole string, surrounding spaces allowed);
 * for gold answers in datasets. */
bool ponder_answer_parse_number(const char *s, double *out);
/* Normalized text of a number (as the extractor writes it). */
void ponder_answer_format_number(double v, char out[PONDER_ANSWER_BYTES]);
/* Compares a normalized answer with a gold one: numbers within 1e-6 relative (absolute
 * below 1), else exact text. */
bool ponder_answer_equal(ponder_answer_kind kind, const char *a, const char *gold);

/* ---- votes ---- */

typedef struct ponder_vote {
    char answer[PONDER_ANSWER_BYTES];
    int32_t count;
    int32_t first; /* index of the first chain giving it */
} ponder_vote;

/* Tallies answers[0..n) (NULL or "" = no answer) into votes (capacity n), sorted by count
 * descending, ties by first occurrence; returns the number of distinct answers. The winner is
 * votes[0]. *n_answered (may be NULL) receives the chains with an answer. */
int32_t ponder_vote_tally(const char *const *answers, int32_t n, ponder_vote *votes, int32_t *n_answered);

/* Regularized incomplete beta I_x(a, b) (Lentz's continued fraction, Numerical Recipes
 * §6.4); a, b > 0, 0 <= x <= 1. NaN on bad arguments. */
double ponder_incbeta(double a, double b, double x);
/* Adaptive-Consistency's Beta stopping criterion (Aggarwal et al. 2023, §3): with v1 votes
 * for the leading answer and v2 for the runner-up, the probability that the leader is the
 * true majority is P(p1 > p2) for p1 ~ Beta(v1 + 1, v2 + 1) = 1 - I_0.5(v1 + 1, v2 + 1). */
double ponder_asc_majority_prob(int32_t v1, int32_t v2);

/* Wilson score interval for k successes in n trials at z (1.96 for 95%); n = 0 → [0, 1]. */
void ponder_wilson_interval(int32_t k, int32_t n, double z, double *lo, double *hi);

/* ---- a verifier: the judge of bon:N (an outcome reward model) ----
 *
 * A GGUF model trained (scripts/train-arith-verifier.sh) on prompt/completion pairs: prompt =
 * the text a chain continued + the chain + PONDER_VERIFIER_CUE, completion = PONDER_VERIFIER_YES
 * when the chain's answer was right, PONDER_VERIFIER_NO when not. A chain's score is
 * P(yes) / (P(yes) + P(no)), both by log-likelihood. A chain too long for the verifier's
 * context scores 0. The verifier owns its context (one chain judged at a time). */

#define PONDER_VERIFIER_CUE "\nVerdict:"
#define PONDER_VERIFIER_YES " right"
#define PONDER_VERIFIER_NO " wrong"

typedef struct ponder_verifier ponder_verifier;
/* Its context over cp (NULL: ponder_context_params_default). m and tok must outlive it. */
ponder_status ponder_verifier_create(const ponder_model *m, const ponder_tokenizer *tok,
                                     const ponder_context_params *cp, ponder_verifier **out, ponder_error *err);
void ponder_verifier_free(ponder_verifier *v); /* NULL is a no-op */
/* *p_yes = the verifier's P(right) for chain after prompt; *flops (may be NULL) += its cost. */
ponder_status ponder_verifier_score(ponder_verifier *v, const char *prompt, const char *chain, size_t chain_len,
                                    double *p_yes, uint64_t *flops, ponder_error *err);

/* ---- running a strategy ---- */

#define PONDER_THINK_COT_CUE " Let's think step by step." /* Kojima et al. 2022 */

typedef struct ponder_think_params {
    ponder_strategy strategy;
    ponder_sampler_params sampling; /* used as given for every chain (the CLI picks greedy for
                                       direct/cot and T=0.7 for sampled strategies by default) */
    int32_t max_tokens;             /* per chain; <= 0: until the context is full */
    const char *prefix;             /* few-shot exemplars put before the prompt (NULL: none) */
    const char *cot_cue;            /* appended to the prompt for cot/sc/asc/bon (NULL: none;
                                       default PONDER_THINK_COT_CUE) */
    const char *const *stop;        /* stop strings for every chain */
    int32_t n_stop;
    ponder_answer_kind answer_kind;
    int32_t n_choices;              /* for PONDER_ANSWER_CHOICE */
    int32_t asc_round;              /* asc: chains per round (default 4; 1 = the paper's one-by-one) */
    double asc_threshold;           /* asc: stop when the majority probability exceeds it (0.95) */
    int32_t max_parallel;           /* chains decoded at once at most (0: no cap): sc/bon above it
                                       run in rounds of it, asc's rounds shrink to it; chain i
                                       still uses seed + i, so the chains are the same */
    const ponder_grammar *grammar;  /* NULL, or every chain's text follows it (gen.h) */
    ponder_verifier *verifier;      /* bon: judges each chain (NULL: mean token logprob judges) */
    const char *verify_prompt;      /* the text the chains continue, as the verifier reads it
                                       (ponder_think_run sets it; a job's caller must) */
    bool verifier_vote;             /* bon with a verifier: the answer with the highest SUM of
                                       its chains' scores wins (a weighted vote), not the one
                                       best chain */
} ponder_think_params;

ponder_think_params ponder_think_params_default(void);

typedef struct ponder_think_sample {
    char *text;                     /* generated text (NUL-terminated) */
    size_t text_len;
    char answer[PONDER_ANSWER_BYTES]; /* "" when none was found */
    int32_t n_tokens;
    double sum_logprob;             /* sum of the chosen tokens' logprobs (raw logits) */
    double mean_logprob;            /* sum_logprob / n_tokens (0 for no tokens) */
    ponder_finish finish;
    double verifier_score;          /* bon with a verifier: P(right) in [0, 1]; else -1 */
} ponder_think_sample;

typedef struct ponder_think_usage {
    uint64_t prompt_tokens;            /* prompt length (prefix + prompt + cue) */
    uint64_t prompt_tokens_evaluated;  /* prompt positions run (once per gen request) */
    uint64_t completion_tokens;        /* over all chains */
    uint64_t flops;
    double wall_ms;
} ponder_think_usage;

typedef struct ponder_think_result {
    ponder_strategy strategy;
    const char *answer;             /* the winner's text (into votes or samples), NULL: none */
    int32_t best;                   /* bon: the winning chain; else the first chain giving answer (-1) */
    int32_t n_samples;
    ponder_think_sample *samples;   /* in seed order: chain i used seed + i */
    int32_t n_votes;
    ponder_vote *votes;             /* sorted as ponder_vote_tally */
    int32_t n_answered;
    double agreement;               /* votes of the answer / n_answered (0 if none) */
    int32_t n_rounds;               /* gen requests made */
    double asc_prob;                /* asc: majority probability when it stopped (else 0) */
    ponder_think_usage usage;
} ponder_think_result;

/* Builds the prompt (prefix + prompt + cue as the strategy asks), tokenizes it (BOS as the
 * vocabulary asks) and runs the strategy on g, which must hold enough sequences for the
 * chains asked at once (sc/bon: N; asc: asc_round). g must have no other pending requests
 * (the wall time and the accounting are this call's). */
ponder_status ponder_think_run(ponder_gen *g, const ponder_tokenizer *tok, const ponder_think_params *p,
                               const char *prompt, ponder_think_result **out, ponder_error *err);
void ponder_think_result_free(ponder_think_result *r);
/* The text a strategy runs on: prefix + prompt + cue (as ponder_think_run builds it), malloc'ed;
 * NULL when out of memory. */
char *ponder_think_prompt_text(const ponder_think_params *p, const char *prompt);

/* A strategy driven by a caller that owns the stepping loop (the server's engine thread
 * decodes other requests alongside). ponder_think_run is this loop over ponder_gen_run:
 *   create(p, prompt tokens) → while next(&req): submit req (set on_event/user as you
 *   like), step until done, collect(g, id), release → finish(&result).
 * Same rounds, seeds and results as ponder_think_run; the prompt is taken as given (build
 * it with ponder_think_prompt_text or put the cue where it belongs, e.g. in a chat's last
 * user message). p's pointers (stop, prefix) must outlive the job. */
typedef struct ponder_think_job ponder_think_job;
ponder_status ponder_think_job_create(const ponder_think_params *p, const ponder_token *prompt, int32_t n_prompt,
                                      ponder_think_job **out, ponder_error *err);
void ponder_think_job_free(ponder_think_job *j); /* NULL is a no-op */
/* Sequences the largest round asks at once (sc/bon: N; asc: min(asc_round, N); else 1;
 * then at most max_parallel when set). */
int32_t ponder_think_job_max_choices(const ponder_think_params *p);
/* The next round's request into *req (prompt, n_choices, max_tokens, sampling with the
 * round's first seed, stop, logprobs; on_event and user NULL); false when the strategy is
 * settled. req's pointers are valid until the job is freed. */
bool ponder_think_job_next(ponder_think_job *j, ponder_gen_request *req);
/* Reads the finished round's chains and usage from g (request_id from submitting the last
 * next() request; the caller releases it afterwards), votes, and decides whether another
 * round follows. */
ponder_status ponder_think_job_collect(ponder_think_job *j, const ponder_gen *g, int32_t request_id,
                                       ponder_error *err);
/* Picks the answer (vote or bon) and hands the result over (free with
 * ponder_think_result_free); wall_ms counts from create. Call once, after next() is false. */
ponder_status ponder_think_job_finish(ponder_think_job *j, ponder_think_result **out, ponder_error *err);

/* ---- scoring choices by log-likelihood (lm-eval-harness's multiple-choice method) ---- */

typedef struct ponder_choice_scores {
    double *sum_logprob;  /* per choice: sum of logprobs of its continuation tokens */
    int32_t *n_tokens;    /* continuation tokens */
    size_t *n_bytes;      /* continuation bytes (acc_norm divides by these, as lm-eval) */
    int32_t best;         /* argmax sum_logprob (acc), ties to the lowest index */
    int32_t best_norm;    /* argmax sum_logprob / n_bytes (acc_norm) */
    uint64_t tokens_evaluated;
    uint64_t flops;
} ponder_choice_scores;

/* For each continuation c, log P(c | context) = sum of the logprobs of the tokens of
 * tokenize(context + c) past the tokens it shares with tokenize(context) (the boundary
 * token is re-scored when the tokenizer merges across it, as llama.cpp's hellaswag does).
 * The prefix all choices share is decoded once and sequence 0's KV truncated back to it for
 * each choice. ctx is reset before and after. Fills *out (free with ponder_choice_scores_free). */
ponder_status ponder_think_score_choices(ponder_context *ctx, const ponder_model *m, const ponder_tokenizer *tok,
                                         const char *context, const char *const *conts, int32_t n_conts,
                                         ponder_choice_scores *out, ponder_error *err);
void ponder_choice_scores_free(ponder_choice_scores *s);

/* ---- evaluation tasks (the data in shared/data, see each README) ---- */

typedef enum ponder_task_kind {
    PONDER_TASK_GENERATIVE = 0, /* numeric answer generated by the model */
    PONDER_TASK_CHOICE,         /* pick one of n choices */
} ponder_task_kind;

#define PONDER_EVAL_MAX_CHOICES 8

typedef struct ponder_eval_item {
    char *question;     /* generative: the problem text; choice: the context to continue */
    char *gold;         /* generative: normalized number; choice: the letter of the gold choice */
    int32_t gold_index; /* choice: 0-based */
    int32_t n_choices;
    char *choices[PONDER_EVAL_MAX_CHOICES]; /* continuations as scored (with a leading space) */
    char *subject;      /* mmlu: the file's subject; else NULL */
    char *solution;     /* a worked solution ending "The answer is N." (gsm8k, arith); else NULL */
    bool plain_prompt;  /* arith: the generator's own format, the one `ponder train` learns
                           from {"question","solution"} pairs: "<q>\n" then the solution */
} ponder_eval_item;

typedef struct ponder_eval_items {
    ponder_task_kind kind;
    const char *task;   /* the canonical task name */
    int32_t n;
    ponder_eval_item *items;
} ponder_eval_items;

/* Task names: gsm8k, svamp, multiarith, addsub, singleeq, arith (generative; arith reads
 * JSONL {"question","solution","answer"}), arc-easy, arc-challenge, hellaswag, mmlu (choice).
 * Unknown name → PONDER_ERR_INVALID_ARG listing them. */
ponder_status ponder_task_kind_of(const char *task, ponder_task_kind *out, ponder_error *err);
/* The file under shared/ a task reads by default ("data/gsm8k/test.jsonl"; mmlu: the folder
 * "data/mmlu/test"); NULL for arith (it needs --data). */
const char *ponder_task_default_data(const char *task);
/* Loads up to limit items (<= 0: all) from path (a file; for mmlu a file or a folder of
 * *_test.csv / *.csv files read in name order). Errors name the file and the line/item. */
ponder_status ponder_eval_load(const char *task, const char *path, int32_t limit, ponder_eval_items **out,
                               ponder_error *err);
void ponder_eval_items_free(ponder_eval_items *items);
/* Few-shot chain-of-thought exemplars from the first k items with solutions:
 * "Question: <q>\nAnswer: <solution>\n\n" each (plain-prompt items: "<q>\n<solution>\n\n"),
 * the prompt format below, malloc'ed into *out.
 * gsm8k takes them from train.jsonl; arith from the data file (skip those items then). */
ponder_status ponder_eval_exemplars(const ponder_eval_items *items, int32_t k, char **out, ponder_error *err);
/* The prompt text for a generative item under a strategy: "Question: <q>\nAnswer:" and,
 * for direct, " The answer is" so the number comes first; a plain-prompt item (arith) is
 * "<q>\n", for direct "<q>\nThe answer is". Malloc'ed; NULL when out of memory. */
char *ponder_eval_prompt(const ponder_eval_item *it, ponder_think_kind kind);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_THINK_H */
