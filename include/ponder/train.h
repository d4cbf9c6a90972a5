/*
 * train.h — training small Llama-architecture models on the CPU, and the data they learn.
 *
 * The trainer holds float32 master weights, their gradients and AdamW moments in one
 * flat array each. Its forward pass is exactly the one src/model runs for "llama"
 * (RMSNorm, NORM (adjacent-pair) RoPE, grouped-query attention, SwiGLU, tied output), so
 * a checkpoint saved here loads in `ponder run` and llama.cpp and gives the same logits.
 *
 * A step: any number of ponder_trainer_accumulate() calls (gradient accumulation; each
 * adds the gradient of the SUM of its token losses), then one ponder_trainer_step(),
 * which divides by the number of target tokens seen, clips the global gradient norm,
 * applies AdamW at the scheduled learning rate (linear warm-up, then cosine decay to
 * lr_min) and zeroes the gradients.
 *
 * Checkpoints: a GGUF model file (general.architecture = llama, llama.* hyper-parameters,
 * tokenizer.ggml.* copied from the vocabulary source, F32 tensors, ponder.train.* keys)
 * plus, for resuming, a sidecar "<path>.optim" GGUF holding the Adam moments, the step
 * and the optimizer settings. The sidecar stays out of the model file because llama.cpp
 * rejects model files with tensors it does not expect.
 */
#ifndef PONDER_TRAIN_H
#define PONDER_TRAIN_H

#include "ponder/common.h"
#include "ponder/gguf.h"
#include "ponder/pool.h"
#include "ponder/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_train_shape {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv; /* divides n_head (grouped-query attention) */
    int32_t n_ff;
    int32_t n_ctx;     /* longest sequence the trainer accepts; written as context_length */
    float norm_eps;    /* RMSNorm epsilon */
    float rope_base;   /* RoPE frequency base */
} ponder_train_shape;

typedef struct ponder_train_params {
    ponder_train_shape shape;
    float lr;           /* peak learning rate */
    float lr_min;       /* end of the cosine decay */
    int32_t warmup_steps;
    int32_t total_steps; /* length of the schedule (the cosine reaches lr_min here) */
    float beta1, beta2, adam_eps;
    float weight_decay; /* decoupled (AdamW), on matrices only: not on norm weights */
    float grad_clip;    /* global L2 norm; <= 0: off */
    float init_std;     /* N(0, init_std) for matrices; output projections scaled by 1/sqrt(2 n_layer) */
    uint64_t seed;      /* weight initialisation */
    ponder_pool *pool;  /* borrowed; NULL: the calling thread only */
} ponder_train_params;

ponder_train_params ponder_train_params_default(void);

typedef struct ponder_trainer ponder_trainer;

ponder_status ponder_trainer_create(const ponder_train_params *p, ponder_trainer **out, ponder_error *err);
/* Loads a checkpoint written by ponder_trainer_save. If "<path>.optim" exists the Adam
 * moments, step and optimizer settings come from it (exact resume); otherwise the
 * optimizer starts fresh with the settings of p (p->shape is ignored: it comes from the
 * file). p->pool is used either way. */
ponder_status ponder_trainer_load(const char *path, const ponder_train_params *p, ponder_trainer **out,
                                  ponder_error *err);
void ponder_trainer_free(ponder_trainer *t); /* NULL is a no-op */

const ponder_train_params *ponder_trainer_params(const ponder_trainer *t);
/* Changes the schedule and optimizer settings (not the shape, seed or moments): how a
 * resumed run extends its schedule. */
void ponder_trainer_set_schedule(ponder_trainer *t, float lr, float lr_min, int32_t warmup_steps,
                                 int32_t total_steps, float weight_decay, float grad_clip);
void ponder_trainer_set_pool(ponder_trainer *t, ponder_pool *pool);
/* Forgets the optimizer state (Adam moments, step count, accumulated gradient): a
 * fine-tune of a loaded checkpoint then starts its own schedule at step 0 instead of
 * resuming the run that wrote the checkpoint's sidecar. */
void ponder_trainer_reset_optimizer(ponder_trainer *t);
int64_t ponder_trainer_n_params(const ponder_trainer *t);
int64_t ponder_trainer_step_count(const ponder_trainer *t); /* optimizer steps taken */
/* Learning rate the next ponder_trainer_step applies. */
float ponder_trainer_lr(const ponder_trainer *t);
/* Model FLOPs of one training token (forward + backward = 3x forward: 2 per multiply-add
 * of every matrix product including the output, plus attention over n_pos positions). */
double ponder_trainer_flops_per_token(const ponder_trainer *t, int32_t n_pos);

/* One training sequence: tokens[0..n), n <= n_ctx. Position i (i >= 1) contributes the
 * loss -log p(tokens[i] | tokens[0..i)) when loss_mask is NULL or loss_mask[i] != 0. */
typedef struct ponder_train_seq {
    const int32_t *tokens;
    const uint8_t *loss_mask;
    int32_t n;
} ponder_train_seq;

/* Forward and backward over the sequences; adds the gradient of the summed loss to the
 * accumulated gradient. *loss_sum and *n_targets (either may be NULL) receive the summed
 * loss and the number of target tokens of these sequences. */
ponder_status ponder_trainer_accumulate(ponder_trainer *t, const ponder_train_seq *seqs, int n_seqs,
                                        double *loss_sum, int64_t *n_targets, ponder_error *err);
/* Applies the accumulated gradient (see the top of this file). *grad_norm (may be NULL)
 * receives the global norm before clipping. No targets accumulated → PONDER_ERR_INVALID_ARG. */
ponder_status ponder_trainer_step(ponder_trainer *t, float *grad_norm, ponder_error *err);
/* Forward only: summed loss and target count (held-out loss). */
ponder_status ponder_trainer_eval(ponder_trainer *t, const ponder_train_seq *seqs, int n_seqs, double *loss_sum,
                                  int64_t *n_targets, ponder_error *err);
/* Logits of every position of one sequence: n rows of n_vocab floats. */
ponder_status ponder_trainer_logits(ponder_trainer *t, const int32_t *tokens, int32_t n, float *logits,
                                    ponder_error *err);

/* The byte-level vocabulary (`ponder train --vocab bytes`): SentencePiece with no merges,
 * <unk> <s> </s>, the 256 byte tokens and U+2581 for the space (260 tokens; see
 * vocab_bytes.c). ponder_train_byte_vocab opens it as an in-memory vocabulary source for
 * ponder_trainer_save and the tokenizer (free with ponder_gguf_free); _write_ writes it as
 * a vocabulary-only GGUF file. */
int32_t ponder_train_byte_vocab_size(void);
ponder_status ponder_train_byte_vocab(ponder_gguf **out, ponder_error *err);
ponder_status ponder_train_write_byte_vocab(const char *path, ponder_error *err);

/* Writes the model to path and the optimizer sidecar to "<path>.optim" (if with_optim).
 * vocab_src: the GGUF whose tokenizer.* keys are copied (its vocabulary size must equal
 * n_vocab), or NULL to write none (a model the engine can load but not tokenize for). */
ponder_status ponder_trainer_save(const ponder_trainer *t, const char *path, const ponder_gguf *vocab_src,
                                  bool with_optim, ponder_error *err);

/* The flat parameter and gradient arrays (n_params floats), for tests and tools.
 * Tensor i of ponder_trainer_n_tensors() is named as in the GGUF file. */
float *ponder_trainer_weights(ponder_trainer *t);
float *ponder_trainer_grads(ponder_trainer *t);
int ponder_trainer_n_tensors(const ponder_trainer *t);
const char *ponder_trainer_tensor_name(const ponder_trainer *t, int i, int64_t *offset, int64_t *n_elems);
/* Call after writing weights through ponder_trainer_weights (before the next forward
 * pass): the products read a transposed copy that only this, load and every step refresh. */
void ponder_trainer_sync_weights(ponder_trainer *t);
/* Zeroes the accumulated gradient and target count without stepping. */
void ponder_trainer_zero_grad(ponder_trainer *t);

/* Peak float32 multiply-add throughput of one core in FLOP/s (2 per FMA), measured by a
 * short register-only FMA loop on the widest vector path this CPU has (about 50 ms).
 * MFU = achieved model FLOP/s / (this × threads). */
double ponder_train_peak_flops_1core(void);

/* ---- data ----
 * A dataset is a list of token sequences with loss masks, read from
 *  - plain text: tokenized whole (BOS first if the vocabulary adds one) and cut into
 *    windows of n_ctx tokens, loss on every token;
 *  - JSONL (the first non-blank character is '{'): one object per line with
 *    "prompt"/"completion" or "question"/"solution" (the prompt then is question + "\n");
 *    the sequence is BOS + tokens(prompt + completion) + EOS, loss on the completion and
 *    EOS only. Lines longer than n_ctx tokens are skipped (counted). */
typedef struct ponder_train_data ponder_train_data;

ponder_status ponder_train_data_load(const char *path, const ponder_tokenizer *tok, int32_t n_ctx,
                                     ponder_train_data **out, ponder_error *err);
/* Same over a buffer in memory (name is used in messages). */
ponder_status ponder_train_data_from_text(const char *text, size_t len, const char *name,
                                          const ponder_tokenizer *tok, int32_t n_ctx, ponder_train_data **out,
                                          ponder_error *err);
void ponder_train_data_free(ponder_train_data *d);
int64_t ponder_train_data_n_seqs(const ponder_train_data *d);
int64_t ponder_train_data_n_skipped(const ponder_train_data *d); /* JSONL lines too long */
int64_t ponder_train_data_n_tokens(const ponder_train_data *d);
ponder_train_seq ponder_train_data_seq(const ponder_train_data *d, int64_t i);
/* Index of the i-th sequence of the batch for optimizer step `step`: a pure function of
 * (seed, step, i), so a resumed run sees the same batches as an uninterrupted one. */
int64_t ponder_train_data_pick(const ponder_train_data *d, uint64_t seed, int64_t step, int64_t i);

/* ---- the arithmetic reasoning task ----
 * Word problems with step-by-step solutions. Difficulty d (1..PONDER_ARITH_MAX_DIFFICULTY)
 * sets the number of operations (d) and the size of the numbers (operands below
 * 10, 20, 50, 100, 200 for d = 1..5; products use small factors). The solution is one
 * line per operation, "a + b = c.", then "The answer is N." The answer is a non-negative
 * integer. Train and test splits are disjoint: an item belongs to the test split iff a
 * hash of its question text falls in the lowest PONDER_ARITH_TEST_PERMILLE of 1000, and
 * each split's generator rejects the other's items. */
#define PONDER_ARITH_MAX_DIFFICULTY 5
#define PONDER_ARITH_TEST_PERMILLE 100 /* 10% of the problem space is held out */
#define PONDER_ARITH_TEXT_BYTES 512

typedef struct ponder_arith_item {
    char question[PONDER_ARITH_TEXT_BYTES];
    char solution[PONDER_ARITH_TEXT_BYTES];
    int64_t answer;
} ponder_arith_item;

typedef enum ponder_arith_split { PONDER_ARITH_TRAIN = 0, PONDER_ARITH_TEST = 1 } ponder_arith_split;

/* The index-th item of (difficulty, seed, split): deterministic. */
ponder_status ponder_arith_generate(int difficulty, uint64_t seed, ponder_arith_split split, uint64_t index,
                                    ponder_arith_item *out, ponder_error *err);
/* The split a question belongs to (the hash rule above). */
ponder_arith_split ponder_arith_split_of(const char *question);

/* Rewrites it->solution so each line takes one of several equivalent paths, chosen by
 * `seed` (deterministic): as written ("96 - 43 = 53."), with the operands of + and *
 * swapped ("2 * 77 = 154."), or through tens and units ("96 - 43 = 96 - 40 - 3 = 56 - 3
 * = 53.", "28 * 4 = 20 * 4 + 8 * 4 = 80 + 32 = 112."). Every path computes the same
 * numbers, so the answer line is unchanged. Why: a model trained on one path per line
 * repeats its own slips in every sampled chain, so a vote over chains only averages its
 * bias; trained on several paths, sampled chains take different routes whose slips
 * differ, and the vote pays (bench/results/arith/). INVALID_ARG if the solution is not
 * the generator's format or the result would not fit. */
ponder_status ponder_arith_vary_paths(ponder_arith_item *it, uint64_t seed, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_TRAIN_H */
