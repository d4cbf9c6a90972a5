/*
 * model.h — a loaded model (immutable weights and hyper-parameters) and the per-request
 * context that runs it (KV cache, scratch, logits).
 *
 * Architectures: llama (Llama 2/3, SmolLM2, Mistral, TinyStories, Mixtral-style MoE),
 * qwen2 (Q/K/V biases), gemma2, phi3. Hyper-parameters come from "<arch>.*" metadata with
 * the format's defaults where a key is absent. The forward pass follows llama.cpp's graph
 * and rounding (activations converted to each weight type's dot type), so the logits
 * agree with llama.cpp's within the tolerances in shared/reference/logits/README.md.
 */
#ifndef PONDER_MODEL_H
#define PONDER_MODEL_H

#include "ponder/common.h"
#include "ponder/gguf.h"
#include "ponder/pool.h"
#include "ponder/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ponder_arch {
    PONDER_ARCH_LLAMA = 0,
    PONDER_ARCH_QWEN2,
    PONDER_ARCH_GEMMA2,
    PONDER_ARCH_PHI3,
    PONDER_ARCH_COUNT
} ponder_arch;

typedef enum ponder_rope_kind {
    PONDER_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]) — llama */
    PONDER_ROPE_NEOX = 1, /* rotate halves (x[i], x[i + d/2]) — qwen2, gemma2, phi3 */
} ponder_rope_kind;

typedef struct ponder_hparams {
    ponder_arch arch;
    const char *arch_name;    /* "llama" */
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_ff;             /* per expert for MoE */
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim_k;       /* attention.key_length, default n_embd / n_head */
    int32_t head_dim_v;       /* attention.value_length */
    int32_t n_rot;            /* rope.dimension_count */
    int32_t n_expert;         /* 0: dense */
    int32_t n_expert_used;
    float rope_freq_base;
    float rope_freq_scale;
    float rope_attn_factor;    /* rope.scaling.attn_factor: scales cos and sin (LongRoPE); 1: off */
    int32_t rope_n_ctx_orig;   /* rope.scaling.original_context_length (default n_ctx_train):
                                  LongRoPE uses its long factors past it, the short ones within */
    bool rope_long_short;      /* the file carries rope_factors_long/short (Phi-3 LongRoPE) */
    ponder_rope_kind rope_kind;
    float norm_rms_eps;
    float attn_logit_softcap;  /* 0: off (gemma2: 50) */
    float final_logit_softcap; /* 0: off (gemma2: 30) */
    int32_t sliding_window;    /* 0: off */
    bool tied_output;          /* output reuses token_embd */
} ponder_hparams;

typedef struct ponder_model ponder_model;

typedef struct ponder_model_params {
    ponder_log_fn log;  /* may be NULL */
    void *log_user;
} ponder_model_params;

ponder_model_params ponder_model_params_default(void);

/* Opens the GGUF at path (mmap), checks architecture, hyper-parameters and every tensor's
 * presence, shape and type. Unsupported architecture → PONDER_ERR_UNSUPPORTED listing
 * the supported ones; unsupported tensor type → error naming tensor and type. */
ponder_status ponder_model_load(const char *path, const ponder_model_params *p, ponder_model **out,
                                ponder_error *err);
void ponder_model_free(ponder_model *m); /* NULL is a no-op */

const ponder_hparams *ponder_model_hparams(const ponder_model *m);
const ponder_gguf *ponder_model_gguf(const ponder_model *m); /* valid while m lives */
const char *ponder_arch_name(ponder_arch a);
/* Comma-separated supported architecture names (for messages). */
const char *ponder_arch_supported_list(void);

/* Parameter count (elements of all weight tensors). */
uint64_t ponder_model_n_params(const ponder_model *m);
/* Parameters one token uses: all of them for a dense model; for mixture-of-experts only
 * n_expert_used of the n_expert experts of each layer, plus everything not an expert. */
uint64_t ponder_model_n_params_active(const ponder_model *m);
/* Forward FLOPs for one token at context position n_past, counting 2 per multiply-add:
 *   2 × (active matrix parameters − the embedding table, a lookup; + the output matrix
 *        when it is the tied embedding table)
 * + 2 × n_head × (head_dim_k + head_dim_v) × positions seen, summed over layers, where a
 *   layer sees n_past + 1 positions, or at most sliding_window on sliding-window layers.
 * Vectors (norms, biases) and elementwise ops are not counted. MoE: the router and the
 * used experts only, as the active parameters. */
uint64_t ponder_model_flops_per_token(const ponder_model *m, int32_t n_past);

/* ---- context ---- */
typedef struct ponder_context ponder_context;

/* Attention over the KV cache (llama.cpp's -fa). OFF: the exact form of llama.cpp's graph
 * without flash attention (all scores of a query, then the softmax). ON: fused over the
 * cache's blocks with an online softmax (llama.cpp's flash-attention kernel): no buffer
 * that grows with the context, each K/V block read once for up to 16 tokens of a
 * sequence and all query heads of its KV head. The results differ by rounding only.
 * AUTO: ON when the V cache is quantized (llama.cpp requires it there), else OFF. */
typedef enum ponder_flash_attn {
    PONDER_FLASH_ATTN_AUTO = 0,
    PONDER_FLASH_ATTN_OFF,
    PONDER_FLASH_ATTN_ON,
} ponder_flash_attn;

typedef struct ponder_context_params {
    int32_t n_ctx;          /* 0: min(n_ctx_train, 4096) */
    ponder_type type_k;     /* PONDER_TYPE_F16 (default, as llama.cpp), F32, Q8_0 or Q4_0 (the
                               quantized types need head dimensions that are multiples of 32) */
    ponder_type type_v;     /* the same; a quantized V cache implies flash attention */
    ponder_flash_attn flash_attn;
    bool float_activations; /* exact-float mode: dequantize weights, F32 activations */
    ponder_pool *pool;      /* threads for the forward pass; NULL: the calling thread only.
                               Borrowed: must outlive the context, used by one context at a time */
    int32_t n_seq_max;      /* sequences the context holds at once (0: 1) */
    int32_t n_kv_cells;     /* KV cells shared by all sequences (0: n_ctx * n_seq_max), rounded up
                               to whole blocks of 32 cells; cells of a prefix shared by forked
                               sequences are stored once */
} ponder_context_params;

ponder_context_params ponder_context_params_default(void);

/* Bytes of K and V cache per token of context (all layers) for these cache types; 0 if a
 * type cannot hold this model's heads (see ponder_context_params). Cells come in blocks
 * of 32 tokens. */
uint64_t ponder_kv_bytes_per_token(const ponder_model *m, ponder_type type_k, ponder_type type_v);

ponder_status ponder_context_create(const ponder_model *m, const ponder_context_params *p,
                                    ponder_context **out, ponder_error *err);
void ponder_context_free(ponder_context *ctx);

/* Runs tokens[0..n) at positions n_past … n_past+n-1, appending to the KV cache.
 * Afterwards ponder_context_logits() holds the last token's logits. If all_logits is
 * non-NULL it receives n rows of n_vocab logits. Token ids out of range or a full
 * context → error, and the context is left unchanged. */
ponder_status ponder_context_decode(ponder_context *ctx, const int32_t *tokens, int32_t n,
                                    float *all_logits, ponder_error *err);
const float *ponder_context_logits(const ponder_context *ctx); /* n_vocab floats */
int32_t ponder_context_n_past(const ponder_context *ctx);
int32_t ponder_context_n_ctx(const ponder_context *ctx);
bool ponder_context_flash_attn(const ponder_context *ctx); /* attention fused over KV blocks */
void ponder_context_reset(ponder_context *ctx); /* empties the KV cache (every sequence) */

/* ---- several sequences in one context ----
 *
 * A context holds up to n_seq_max sequences, ids 0..n_seq_max-1, each with its own
 * positions 0..len-1 (len <= n_ctx), their K/V stored in one pool of n_kv_cells cells.
 * The single-sequence calls above act on sequence 0. Tokens of different sequences
 * decoded in one batch share every matrix product (the throughput of continuous batching
 * and of self-consistency); a token attends only to its own sequence.
 *
 * Invariance: a sequence's logits do not depend on what else is in the batch, on the
 * batch size or on the thread count — a batch of N sequences gives bit-identical logits
 * to N separate decodes of the same tokens. Batching is an optimization, never a change
 * in results. */
typedef int32_t ponder_seq_id;

typedef struct ponder_batch {
    int32_t n_tokens;
    const int32_t *tokens;        /* n_tokens ids */
    const ponder_seq_id *seq;     /* sequence of each token; NULL: all sequence 0. A sequence's
                                     tokens appear in position order; each goes at that
                                     sequence's next position */
    const bool *want_logits;      /* NULL: the last token of each sequence in the batch */
} ponder_batch;

/* Decodes the batch. logits (may be NULL) receives one row of n_vocab floats for every
 * token whose logits are wanted, in batch order; ponder_context_logits() then holds the
 * last of those rows (with logits NULL only that row is computed). Errors (bad id, bad
 * sequence, a sequence past n_ctx, not enough free cells) leave the context unchanged;
 * PONDER_ERR_RANGE messages give the numbers. Batches longer than the micro-batch (512)
 * run in several passes with the same results. */
ponder_status ponder_context_decode_batch(ponder_context *ctx, const ponder_batch *b, float *logits,
                                          ponder_error *err);
int32_t ponder_context_n_seq_max(const ponder_context *ctx);
int32_t ponder_context_seq_len(const ponder_context *ctx, ponder_seq_id seq); /* -1: bad id */
/* Cells not in use by any sequence (what a new request may still take). Cells are handed
 * out in blocks of 32: the unused rest of a sequence's last block is not free, and a
 * sequence writing into a block it shares with another first takes a block for its copy. */
int32_t ponder_context_n_free_cells(const ponder_context *ctx);
/* Forgets the sequence's positions (frees its cells not shared with another sequence). */
ponder_status ponder_context_seq_clear(ponder_context *ctx, ponder_seq_id seq, ponder_error *err);
/* dst becomes a copy of src (dst cleared first; src == dst does nothing) without
 * recomputing anything: the cells are shared, copied on write. How n choices or N
 * reasoning chains share one prompt. */
ponder_status ponder_context_seq_fork(ponder_context *ctx, ponder_seq_id src, ponder_seq_id dst,
                                      ponder_error *err);
/* Keeps the first n_keep positions (n_keep <= len): rolls back rejected draft tokens, or
 * keeps a common prefix for reuse. */
ponder_status ponder_context_seq_truncate(ponder_context *ctx, ponder_seq_id seq, int32_t n_keep,
                                          ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_MODEL_H */
