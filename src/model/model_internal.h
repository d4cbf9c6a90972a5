/*
 * model_internal.h — what the loader, the context and the forward pass share: the
 * per-architecture descriptor, the bound weight tensors and the model/context structs.
 */
#ifndef PONDER_MODEL_INTERNAL_H
#define PONDER_MODEL_INTERNAL_H

#include "ponder/model.h"

typedef struct layer_weights layer_weights;

/* One layer of n micro-batch tokens, in place on ctx->x: each architecture's own short
 * function (arch_<name>.c) built from the blocks of blocks.h. */
typedef void (*arch_layer_fn)(ponder_context *ctx, const layer_weights *l, int il, int n);
void llama_layer(ponder_context *ctx, const layer_weights *l, int il, int n);
void qwen2_layer(ponder_context *ctx, const layer_weights *l, int il, int n);
void gemma2_layer(ponder_context *ctx, const layer_weights *l, int il, int n);
void phi3_layer(ponder_context *ctx, const layer_weights *l, int il, int n);

/* An architecture: its layer function and the facts the loader, the context and the
 * shared blocks need (which tensors exist, scratch shapes, the window rule). */
typedef enum ffn_kind {
    FFN_SWIGLU = 0,       /* down(silu(gate x) * up x), separate gate and up */
    FFN_SWIGLU_FUSED,     /* phi3: up holds [gate; up] (2 n_ff rows) */
    FFN_GEGLU,            /* gemma2: down(gelu(gate x) * up x) */
} ffn_kind;

typedef struct arch_desc {
    ponder_arch arch;
    const char *name;
    ponder_rope_kind rope_kind;
    ffn_kind ffn;
    bool fused_qkv;          /* phi3: blk.N.attn_qkv */
    bool qkv_bias_required;  /* qwen2 */
    bool post_norms;         /* gemma2: post_attention_norm, post_ffw_norm */
    bool embd_scale_sqrt;    /* gemma2: embeddings scaled by sqrt(n_embd) */
    bool experts;            /* the layer function runs routed experts when n_expert > 0 */
    int swa_every;           /* sliding window on layers il % swa_every == 0 (gemma2: 2); 1 = all layers; 0 = none */
    arch_layer_fn layer;
} arch_desc;

const arch_desc *arch_find(const char *name); /* NULL if unsupported */

/* Experts routed per token that the MoE scratch holds (Mixtral: 2, DeepSeek-style: 8). */
#define MOE_MAX_EXPERTS_USED 64
/* Experts per layer we accept (the router's scratch ordering lives on the stack). */
#define MOE_MAX_EXPERTS 1024

struct layer_weights {
    ponder_matrix wq, wk, wv, wqkv; /* wqkv only when fused */
    const float *bq, *bk, *bv, *bo; /* optional biases (F32) */
    ponder_matrix wo;
    const float *attn_norm;         /* (n_embd) */
    const float *attn_post_norm;    /* gemma2 */
    const float *ffn_norm;
    const float *ffn_post_norm;     /* gemma2 */
    ponder_matrix w_gate, w_up, w_down;  /* dense FFN (w_gate empty for fused) */
    /* MoE: router (n_embd -> n_expert) and per-expert stacks, expert e at data + e*stride */
    ponder_matrix w_router;
    ponder_matrix w_gate_exps, w_up_exps, w_down_exps; /* one expert's matrix each */
    size_t gate_exps_stride, up_exps_stride, down_exps_stride;
};

struct ponder_model {
    ponder_gguf *gguf;
    const arch_desc *desc;
    ponder_hparams hp;
    char arch_name[32];
    ponder_matrix tok_embd;    /* (n_vocab rows of n_embd) */
    const float *output_norm;
    ponder_matrix output;      /* == tok_embd when tied */
    const float *output_bias;  /* optional */
    const float *rope_freqs;   /* optional per-pair frequency divisors (Llama 3.1), n_rot/2 */
    const float *rope_factors_long, *rope_factors_short; /* Phi-3 LongRoPE divisors, n_rot/2 */
    layer_weights *layers;
    uint64_t n_params;
    uint64_t n_matrix_elems;   /* elements of every bound weight matrix (all experts) */
    float q_scale;             /* applied to Q (prescale archs) or to Q·K in softmax */
    ponder_log_fn log;
    void *log_user;
};

/* The paged KV store (kv.c). Cells come in blocks of KV_BLOCK_CELLS; a sequence's block
 * table maps its position p to cell table[p / KV_BLOCK_CELLS] * KV_BLOCK_CELLS + p %
 * KV_BLOCK_CELLS. Blocks are reference-counted: a fork copies the table (the prompt's
 * cells are stored once) and a write into a block held by another sequence copies it first.
 * Invariant: sequence s holds exactly ceil(seq_len[s] / KV_BLOCK_CELLS) blocks. */
#define KV_BLOCK_CELLS 32 /* vLLM uses 16; 32 keeps the row kernels' runs long at little waste */
/* Tokens of one sequence a flash-attention unit takes at once: each K/V block it reads is
 * used by this many tokens' queries (times the query heads of the KV head) while in L1. */
#define ATTN_TILE_TOKENS 16

typedef struct kv_pages {
    int32_t n_blocks;
    int32_t n_seq;
    int32_t max_blocks_seq; /* ceil(n_ctx / KV_BLOCK_CELLS) */
    int32_t n_free;
    int32_t *free_list;     /* n_blocks: a stack of free block ids, top at n_free - 1 */
    int32_t *refs;          /* n_blocks: sequences whose table holds the block */
    int32_t *tables;        /* n_seq × max_blocks_seq block ids */
    int32_t *seq_len;       /* n_seq positions in use */
    int32_t *writers;       /* n_blocks: scratch of kv_blocks_needed, all 0 between calls */
} kv_pages;

struct ponder_context {
    const ponder_model *model;
    ponder_context_params params;
    int32_t n_ctx;
    int32_t n_ubatch;
    kv_pages kv;
    /* KV cells: per layer, kv.n_blocks * KV_BLOCK_CELLS rows of (n_head_kv * head_dim)
     * elements of type_k/type_v */
    void **k_cache, **v_cache;
    size_t k_row_bytes, v_row_bytes;
    /* per micro-batch token: its sequence and position (set by the caller of forward_ubatch) */
    ponder_seq_id *ub_seq;
    int32_t *ub_pos;
    int32_t *ub_out;    /* indices (in the micro-batch) of the tokens whose logits are computed */
    int32_t *seq_count, *seq_next, *seq_last; /* n_seq scratch of decode_batch */
    /* scratch for one micro-batch of n_ubatch tokens */
    float *x, *xb, *xb2, *q, *k, *v, *attn, *hb, *hb2;
    float *scores;      /* per thread: n_ctx attention weights (exact), or one block of scores
                           per query of a flash unit (at least ATTN_TILE_TOKENS × group × 32) */
    size_t n_scores;    /* floats of scores per thread */
    float *rope_cs;     /* n_ubatch × n_rot: (cos, sin) per rotated pair, per token */
    const float *rope_divisors; /* per-pair frequency divisors for this context's size, or NULL */
    float *logits;      /* n_vocab: the last computed row */
    /* MoE (1-element when dense): router logits, each token's choices and weights, the
     * gathered rows of one expert's tokens and their products, one output per choice */
    float *router;      /* n_ubatch × n_expert */
    int32_t *moe_ids;   /* n_ubatch × n_expert_used expert ids */
    float *moe_w;       /* n_ubatch × n_expert_used renormalized weights */
    int32_t *moe_rows;  /* n_ubatch: (token, choice) slot of each gathered row */
    float *moe_in, *moe_out;  /* n_ubatch × n_embd */
    float *moe_gate, *moe_up; /* n_ubatch × n_ff */
    float *moe_slots;   /* n_ubatch × n_expert_used × n_embd */
    bool flash;         /* attention fused over KV blocks (attention.c), else the exact form */
    void *attn_qc;      /* per thread attn_qc_bytes: the query heads of a unit converted for
                           the K cache's dot (F16, Q8_0 or F32), 64-byte slots */
    size_t attn_qc_bytes;
    float *attn_m;      /* per thread ATTN_TILE_TOKENS × group: running max (flash) */
    double *attn_l;     /* per thread ATTN_TILE_TOKENS × group: running sum (flash) */
    int32_t *attn_tiles;/* n_ubatch + 1: token bounds of the flash tiles */
    ponder_f16 *p16;    /* per thread: n_ctx softmax weights rounded to F16 (F16 V cache) */
    void *work;
    size_t work_bytes;
    /* Embeddings hook (embed.c): when non-NULL, forward_ubatch writes the final-norm hidden
     * state of every micro-batch token here (n rows of n_embd, then advances it) and computes
     * no logits. NULL for ordinary decoding. */
    float *embd_out;
};

/* kv.c */
ponder_status kv_pages_init(kv_pages *kv, int32_t n_seq, int32_t n_cells, int32_t n_ctx);
void kv_pages_free(kv_pages *kv);
/* Cell holding position pos of sequence seq (the block must be in the table). */
static inline size_t kv_cell(const kv_pages *kv, ponder_seq_id seq, int32_t pos)
{
    const int32_t block = kv->tables[(size_t)seq * (size_t)kv->max_blocks_seq + (size_t)(pos / KV_BLOCK_CELLS)];
    return (size_t)block * KV_BLOCK_CELLS + (size_t)(pos % KV_BLOCK_CELLS);
}
/* Blocks that appending n_new[s] positions to every sequence s would take from the free
 * list (new blocks plus copies of shared blocks written into). Changes nothing. */
int32_t kv_blocks_needed(kv_pages *kv, const int32_t *n_new);
/* Makes positions seq_len .. seq_len + n_new - 1 of seq writable cells (copying a shared
 * tail block, appending blocks); seq_len is unchanged. The caller checked the capacity. */
void kv_seq_reserve(ponder_context *ctx, ponder_seq_id seq, int32_t n_new);
/* Keeps the first n_keep positions of seq, releasing the blocks past them. */
void kv_seq_keep(kv_pages *kv, ponder_seq_id seq, int32_t n_keep);
/* dst (already empty) shares every block of src. */
void kv_seq_share(kv_pages *kv, ponder_seq_id src, ponder_seq_id dst);

/* forward.c: runs tokens[0..n) (n <= n_ubatch) of the sequences ctx->ub_seq at positions
 * ctx->ub_pos, whose cells are reserved; writes the logits of the n_out tokens listed in
 * ctx->ub_out to out (n_out rows of n_vocab). */
void forward_ubatch(ponder_context *ctx, const int32_t *tokens, int32_t n, int32_t n_out, float *out);

#endif
