/*
 * model_internal.h — what the loader, the context and the forward pass share: the
 * per-architecture descriptor, the bound weight tensors and the model/context structs.
 */
#ifndef PONDER_MODEL_INTERNAL_H
#define PONDER_MODEL_INTERNAL_H

#include "ponder/model.h"

/* How an architecture's block differs from llama's. Every difference is a field here, so
 * the forward pass has no per-architecture branches (llama.cpp's llm_build_* functions
 * differ in exactly these ways for the archs we support). */
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
    bool q_prescale;         /* gemma2, phi3: Q scaled before Q·K (kq_scale 1); others scale in softmax */
    int swa_every;           /* sliding window on layers il % swa_every == 0 (gemma2: 2); 1 = all layers; 0 = none */
} arch_desc;

const arch_desc *arch_find(const char *name); /* NULL if unsupported */

/* Experts routed per token that the MoE scratch holds (Mixtral: 2, DeepSeek-style: 8). */
#define MOE_MAX_EXPERTS_USED 64
/* Experts per layer we accept (the router's scratch ordering lives on the stack). */
#define MOE_MAX_EXPERTS 1024

typedef struct layer_weights {
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
} layer_weights;

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
    layer_weights *layers;
    uint64_t n_params;
    float q_scale;             /* applied to Q (prescale archs) or to Q·K in softmax */
    ponder_log_fn log;
    void *log_user;
};

struct ponder_context {
    const ponder_model *model;
    ponder_context_params params;
    int32_t n_ctx;
    int32_t n_past;
    int32_t n_ubatch;
    /* KV cache: per layer, n_ctx rows of (n_head_kv * head_dim) elements of type_k/type_v */
    void **k_cache, **v_cache;
    size_t k_row_bytes, v_row_bytes;
    /* scratch for one micro-batch of n_ubatch tokens */
    float *x, *xb, *xb2, *q, *k, *v, *attn, *hb, *hb2;
    float *scores;      /* per thread: n_ctx attention weights */
    float *rope_cs;     /* n_ubatch × n_rot: (cos, sin) per rotated pair, per token */
    float *logits;      /* n_vocab: the last token's */
    float *router;      /* n_expert */
    float *moe_acc, *moe_gate, *moe_up, *moe_out; /* MoE per-token scratch */
    ponder_f16 *q16;    /* per thread: one query head rounded to F16 (F16 K cache) */
    ponder_f16 *p16;    /* per thread: n_ctx softmax weights rounded to F16 (F16 V cache) */
    void *work;
    size_t work_bytes;
};

/* forward.c: runs tokens[0..n) (n <= n_ubatch) at positions n_past…; writes the last
 * token's logits to ctx->logits and, if all_logits, every token's logits. */
void forward_ubatch(ponder_context *ctx, const int32_t *tokens, int32_t n, float *all_logits);

#endif
