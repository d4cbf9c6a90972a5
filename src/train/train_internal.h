/*
 * train_internal.h — the trainer's layer kernels (forward and backward), shared by the
 * trainer and the gradient-check tests. Shapes are row-major, one row per token.
 * Backward kernels WRITE the input gradient (=) and ADD to weight gradients (+=).
 */
#ifndef PONDER_TRAIN_INTERNAL_H
#define PONDER_TRAIN_INTERNAL_H

#include "ponder/pool.h"
#include "ponder/train.h"

/* y = x / rms(x) * w over n_tok rows of n; rinv[t] = 1 / rms(x[t]) (as src/model: the
 * sum of squares in double). */
void tr_rmsnorm_fwd(float *y, float *rinv, const float *x, const float *w, int n_tok, int n, float eps);
void tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rinv,
                    int n_tok, int n);

/* (cos, sin) pairs for positions 0..n_tok of a head of hd dims, built as
 * ggml_rope_cache_init does (theta multiplied along the pairs): cs[t][hd]. */
void tr_rope_cache(float *cs, int n_tok, int hd, float base);
/* Rotates adjacent pairs of every head of each row in place (NORM RoPE); the backward
 * pass rotates the gradient by the opposite angle. */
void tr_rope_fwd(float *x, int n_tok, int n_heads, int hd, const float *cs);
void tr_rope_bwd(float *dx, int n_tok, int n_heads, int hd, const float *cs);

/* Causal grouped-query attention. q (n_tok, n_head*hd), k/v (n_tok, n_kv*hd), out
 * (n_tok, n_head*hd), probs (n_head, n_tok, n_tok) keeps the softmax for the backward
 * pass (zero above the diagonal). Query head h reads KV head h / (n_head / n_kv). KV
 * groups run on the pool; scratch holds tr_attn_scratch_floats(n_tok, n_kv, hd) floats. */
size_t tr_attn_scratch_floats(int n_tok, int n_kv, int hd);
void tr_attn_fwd(float *out, float *probs, const float *q, const float *k, const float *v, int n_tok, int n_head,
                 int n_kv, int hd, float *scratch, ponder_pool *pool);
void tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                 const float *k, const float *v, int n_tok, int n_head, int n_kv, int hd, float *scratch,
                 ponder_pool *pool);

/* h = silu(g) * u over n elements. */
void tr_swiglu_fwd(float *h, const float *g, const float *u, int64_t n);
void tr_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n);

/* Cross-entropy of rows 0..n_tok-2 of logits (n_tok, n_vocab) against tokens[1..n_tok),
 * masked by mask[1..] (NULL: all). Writes dlogits (gradient of the summed loss, zero rows
 * where no target), returns the summed loss in double; *n_targets gets the count. */
double tr_cross_entropy(float *dlogits, const float *logits, const int32_t *tokens, const uint8_t *mask, int n_tok,
                        int n_vocab, int64_t *n_targets);

/* Rows [r0, r1) only (rows are independent); tr_cross_entropy is rows [0, n_tok). */
double tr_cross_entropy_rows(float *dlogits, const float *logits, const int32_t *tokens, const uint8_t *mask,
                             int n_tok, int n_vocab, int r0, int r1, int64_t *n_targets);

/* fn(ctx, c, i0, i1) for chunks c of [0, n) (chunk items each) on the pool's threads,
 * handed out dynamically: fn must make chunk c's result independent of the thread. */
typedef void (*tr_range_fn)(void *ctx, int64_t c, int64_t i0, int64_t i1);
void tr_parallel_for(ponder_pool *pool, int64_t n, int64_t chunk, tr_range_fn fn, void *ctx);

/* C (M, N) [+]= A . B: B row-major (K, N) with row stride ldb, A(m, k) = A[m*sam + k*sak]
 * (so a transposed A needs no copy), C with row stride ldc. */
typedef struct tr_gemm_args {
    float *C;
    const float *A, *B;
    int M, N, K;
    int ldc, ldb, sam, sak;
    bool accumulate; /* add to C instead of overwriting it */
} tr_gemm_args;

/* The whole product on the pool: columns split in multiples of 16, so every element is
 * computed the same way for any thread count (bit-identical results). AVX2+FMA tiles
 * when the CPU path is avx2, else the portable loop. */
void tr_gemm(const tr_gemm_args *g, ponder_pool *pool);
/* Columns [n0, n1) only: the portable reference, and the AVX2 tiles (gemm_avx2.c). */
void tr_gemm_ref(const tr_gemm_args *g, int n0, int n1);
void tr_gemm_avx2(const tr_gemm_args *g, int n0, int n1);
/* Columns [32 panel, 32 panel + 32) with packed B panels (gemm_avx512.c). */
void tr_gemm_avx512_panel(const tr_gemm_args *g, int panel);
/* The path tr_gemm takes now (0 portable, 1 avx2, 2 avx512) and its name. */
int tr_gemm_path(void);
const char *tr_gemm_path_name(void);

/* dst (n_cols, n_rows) = src (n_rows, n_cols) transposed. */
void tr_transpose(float *dst, const float *src, int64_t n_rows, int64_t n_cols);

/* splitmix64 (Steele et al.): the trainer's seeded streams (init, batches, the task). */
static inline uint64_t tr_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Register-only FMA loop of the AVX2 path: FLOP/s of one core (peak_avx2.c). */
double tr_peak_flops_avx2(void);
double tr_peak_flops_avx512(void);

#endif
