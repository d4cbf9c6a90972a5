/*
 * distill.h — System 2 → System 1 distillation: a teacher model answers unlabeled questions
 * with a sampled-and-voted strategy (e.g. sc:8), the chains that agree with the vote become
 * prompt/completion training pairs, a student is fine-tuned on them, and the student is
 * scored greedily on held-out problems before and after. Labels are never used to choose
 * chains: the vote is the only filter (Wang et al. 2022's self-consistency as a teacher;
 * Huang et al. 2022, "Large Language Models Can Self-Improve").
 *
 * Prompt form. Every prompt — teacher, training pair, student evaluation — is the question
 * followed by PONDER_DISTILL_PROMPT_SUFFIX, exactly what `ponder train` builds from a
 * {"question","solution"} line, so a model trained on `ponder data arith` output is asked
 * the way it learned. No chain-of-thought cue and no few-shot prefix are added.
 *
 * Ownership: sets and question lists are opaque, made by *_create or *_load and freed by
 * *_free. Nothing here prints or keeps globals; errors come back through ponder_error.
 */
#ifndef PONDER_DISTILL_H
#define PONDER_DISTILL_H

#include "ponder/common.h"
#include "ponder/gen.h"
#include "ponder/think.h"
#include "ponder/tokenizer.h"
#include "ponder/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PONDER_DISTILL_PROMPT_SUFFIX "\n"

/* question + PONDER_DISTILL_PROMPT_SUFFIX, malloc'ed; NULL when out of memory. */
char *ponder_distill_prompt(const char *question);

/* ---- choosing chains ---- */

typedef struct ponder_distill_select_params {
    double min_agreement; /* keep a question's chains only if the vote's agreement >= this (0: always) */
    bool unique;          /* keep one copy of chains with identical text */
} ponder_distill_select_params;

/* The chains of r worth learning from, as indices into r->samples written to keep
 * (capacity r->n_samples), in chain order; returns how many. A chain is kept when its
 * extracted answer equals the strategy's answer (r->answer: the majority vote for sc/asc)
 * and it ended on its own (PONDER_FINISH_STOP: a truncated chain would teach the student
 * not to stop). Nothing is kept when r has no answer or r->agreement < min_agreement. */
int32_t ponder_distill_select(const ponder_think_result *r, const ponder_distill_select_params *p, int32_t *keep);

/* ---- the teacher's kept chains ---- */

typedef struct ponder_distill_set ponder_distill_set;

ponder_status ponder_distill_set_create(ponder_distill_set **out, ponder_error *err);
void ponder_distill_set_free(ponder_distill_set *s); /* NULL is a no-op */
/* Adds one pair; answer (may be NULL) and agreement are kept for the JSONL only. */
ponder_status ponder_distill_set_add(ponder_distill_set *s, const char *prompt, const char *completion,
                                     size_t completion_len, const char *answer, double agreement, ponder_error *err);
int64_t ponder_distill_set_count(const ponder_distill_set *s);
/* JSONL, one {"prompt","completion","answer","agreement"} object per line: the form
 * ponder_train_data reads (it uses prompt and completion). Malloc'ed into *out. */
ponder_status ponder_distill_set_jsonl(const ponder_distill_set *s, char **out, size_t *len, ponder_error *err);

/* ---- questions ---- */

typedef struct ponder_distill_questions ponder_distill_questions;

/* JSONL lines with a string "question"; an "answer" (number), if present, is kept for
 * reporting only (ponder_distill_questions_gold). Up to limit lines (<= 0: all). */
ponder_status ponder_distill_questions_load(const char *path, int32_t limit, ponder_distill_questions **out,
                                            ponder_error *err);
void ponder_distill_questions_free(ponder_distill_questions *q);
int32_t ponder_distill_questions_count(const ponder_distill_questions *q);
const char *ponder_distill_questions_text(const ponder_distill_questions *q, int32_t i);
/* Normalized gold answer (ponder_answer_format_number) or NULL when the line had none. */
const char *ponder_distill_questions_gold(const ponder_distill_questions *q, int32_t i);

/* ---- the steps ---- */

/* Refuses (PONDER_ERR_INVALID_ARG naming the first difference) unless both vocabularies
 * are the same: kind, size, every token's text and kind, BOS/EOS ids and whether BOS/EOS
 * are added. The student learns the teacher's token ids, so they must mean the same. */
ponder_status ponder_distill_check_vocab(const ponder_tokenizer *teacher, const ponder_tokenizer *student,
                                         ponder_error *err);

/* Think parameters for the teacher: the strategy at temperature temp (the sampler's other
 * defaults, as `ponder eval`: top-k 40, top-p 0.95, min-p 0.05), chains of at most
 * max_tokens, the sampling seed, numeric answers, no cue and no prefix. */
ponder_think_params ponder_distill_teacher_params(ponder_strategy s, float temp, int32_t max_tokens, uint64_t seed);

typedef struct ponder_distill_answer {
    int32_t n_samples, n_answered, n_kept;
    double agreement;
    char answer[PONDER_ANSWER_BYTES]; /* the vote's answer, "" when none */
    int32_t n_kept_correct;           /* kept chains whose answer equals gold (gold given) */
    uint64_t completion_tokens, flops;
} ponder_distill_answer;

/* The teacher answers one question (ponder_think_run on g with tp; g must hold the
 * strategy's chains at once) and the selected chains are added to set. gold (may be NULL)
 * only fills n_kept_correct: it never changes what is kept. */
ponder_status ponder_distill_teach(ponder_gen *g, const ponder_tokenizer *tok, const ponder_think_params *tp,
                                   const ponder_distill_select_params *sp, const char *question, const char *gold,
                                   ponder_distill_set *set, ponder_distill_answer *out, ponder_error *err);

/* Greedy answer (one chain, temperature 0, at most max_tokens) of the model behind g to
 * question; *correct: it equals gold (a normalized number). answer (may be NULL) receives
 * the extracted answer ("" when none). */
ponder_status ponder_distill_score(ponder_gen *g, const ponder_tokenizer *tok, const char *question, const char *gold,
                                   int32_t max_tokens, bool *correct, char answer[PONDER_ANSWER_BYTES],
                                   ponder_error *err);

/* One optimizer step of fine-tuning: accum micro-batches of batch sequences picked from
 * data by ponder_train_data_pick(data, data_seed, <the trainer's step>, ...). *loss (may be
 * NULL) receives the mean target-token loss of the step. */
ponder_status ponder_distill_train_step(ponder_trainer *t, const ponder_train_data *data, uint64_t data_seed,
                                        int32_t batch, int32_t accum, double *loss, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_DISTILL_H */
