/*
 * ops.c — forward and backward of each layer type the trainer uses: RMSNorm, RoPE (the
 * adjacent-pair "normal" mode of llama), causal grouped-query attention, SwiGLU,
 * cross-entropy, and the matrix product (AVX2 tiles in gemm_avx2.c, a portable loop here).
 * The forward rounding follows the engine's layers (src/model/blocks.c, arch_llama.c) so
 * trained weights give the engine's logits; backward formulas are the textbook ones,
 * written so the inner loops are contiguous (gcc vectorizes them at -O2).
 */
#include "train/train_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "ponder/tensor.h"

/* ---- RMSNorm ---- */

void tr_rmsnorm_fwd(float *y, float *rinv, const float *x, const float *w, int n_tok, int n, float eps)
{
    for (int t = 0; t < n_tok; t++) {
        const float *xr = x + (size_t)t * n;
        float *yr = y + (size_t)t * n;
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += (double)(xr[i] * xr[i]);
        const float mean = (float)(sum / n);
        const float scale = 1.0f / sqrtf(mean + eps);
        rinv[t] = scale;
        for (int i = 0; i < n; i++)
            yr[i] = (xr[i] * scale) * w[i];
    }
}

/* y = x r w with r = (mean(x^2) + eps)^(-1/2), dr/dx_i = -r^3 x_i / n:
 * dx_i = r w_i dy_i - x_i r^3 / n * sum_j (dy_j w_j x_j);  dw_i += dy_i x_i r. */
void tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rinv,
                    int n_tok, int n)
{
    for (int t = 0; t < n_tok; t++) {
        const float *xr = x + (size_t)t * n, *dyr = dy + (size_t)t * n;
        float *dxr = dx + (size_t)t * n;
        const float r = rinv[t];
        float dot = 0.0f;
        for (int i = 0; i < n; i++)
            dot += dyr[i] * w[i] * xr[i];
        const float c = dot * r * r * r / (float)n;
        for (int i = 0; i < n; i++) {
            dxr[i] = r * w[i] * dyr[i] - c * xr[i];
            dw[i] += dyr[i] * xr[i] * r;
        }
    }
}

/* ---- RoPE ---- */

void tr_rope_cache(float *cs, int n_tok, int hd, float base)
{
    const float theta_scale = powf(base, -2.0f / (float)hd);
    for (int t = 0; t < n_tok; t++) {
        float theta = (float)t;
        for (int i0 = 0; i0 < hd; i0 += 2) {
            cs[(size_t)t * hd + i0] = cosf(theta);
            cs[(size_t)t * hd + i0 + 1] = sinf(theta);
            theta *= theta_scale;
        }
    }
}

static void rope_rows(float *x, int n_tok, int n_heads, int hd, const float *cs, float sign)
{
    for (int t = 0; t < n_tok; t++) {
        const float *c = cs + (size_t)t * hd;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + ((size_t)t * n_heads + h) * hd;
            for (int i0 = 0; i0 < hd; i0 += 2) {
                const float co = c[i0], si = sign * c[i0 + 1];
                const float x0 = xh[i0], x1 = xh[i0 + 1];
                xh[i0] = x0 * co - x1 * si;
                xh[i0 + 1] = x0 * si + x1 * co;
            }
        }
    }
}

void tr_rope_fwd(float *x, int n_tok, int n_heads, int hd, const float *cs) { rope_rows(x, n_tok, n_heads, hd, cs, 1.0f); }

/* The rotation is orthogonal: its transpose is the rotation by -angle. */
void tr_rope_bwd(float *dx, int n_tok, int n_heads, int hd, const float *cs)
{
    rope_rows(dx, n_tok, n_heads, hd, cs, -1.0f);
}

/* ---- attention ---- */

/* Each head is four matrix products on tr_gemm's kernels (one thread each; the pool
 * splits the KV groups, so the heads sharing K, V, dK, dV stay on one thread). The
 * causal part is a full T x T product with the upper triangle of P set to zero: twice
 * the FLOPs of a triangular loop, but at the kernel's speed instead of a scalar dot. */

size_t tr_attn_scratch_floats(int n_tok, int n_kv, int hd)
{
    return (size_t)n_kv * ((size_t)hd * n_tok + (size_t)n_tok * n_tok);
}

typedef struct attn_task {
    float *out, *probs, *dq, *dk, *dv, *scratch;
    const float *dout, *cprobs, *q, *k, *v;
    int n_tok, n_head, n_kv, hd;
} attn_task;

/* dst (hd, T) = the hd columns of group g of x (T rows of stride ks), transposed. */
static void group_t(float *dst, const float *x, int T, int ks, int g, int hd)
{
    for (int j = 0; j < T; j++)
        for (int d = 0; d < hd; d++)
            dst[(size_t)d * T + j] = x[(size_t)j * ks + (size_t)g * hd + d];
}

static void gemm1(float *C, int ldc, const float *A, int sam, int sak, const float *B, int ldb, int M, int N, int K,
                  bool acc)
{
    const tr_gemm_args g = {.C = C, .A = A, .B = B, .M = M, .N = N, .K = K, .ldc = ldc, .ldb = ldb, .sam = sam,
                            .sak = sak, .accumulate = acc};
    tr_gemm(&g, NULL);
}

static void attn_fwd_slice(void *arg, int ith, int nth)
{
    const attn_task *a = arg;
    const int T = a->n_tok, hd = a->hd, group = a->n_head / a->n_kv;
    const int qs = a->n_head * hd, ks = a->n_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int g = ith; g < a->n_kv; g += nth) {
        float *kt = a->scratch + (size_t)g * ((size_t)hd * T + (size_t)T * T);
        group_t(kt, a->k, T, ks, g, hd);
        for (int h = g * group; h < (g + 1) * group; h++) {
            float *P = a->probs + (size_t)h * T * T;
            gemm1(P, T, a->q + (size_t)h * hd, qs, 1, kt, T, T, T, hd, false); /* S = Q K^T */
            for (int i = 0; i < T; i++) {
                float *p = P + (size_t)i * T;
                float max = -INFINITY;
                for (int j = 0; j <= i; j++) {
                    p[j] *= scale;
                    max = p[j] > max ? p[j] : max;
                }
                double sum = 0.0;
                for (int j = 0; j <= i; j++) {
                    p[j] = expf(p[j] - max);
                    sum += (double)p[j];
                }
                const float inv = (float)(1.0 / sum);
                for (int j = 0; j <= i; j++)
                    p[j] *= inv;
                for (int j = i + 1; j < T; j++)
                    p[j] = 0.0f;
            }
            gemm1(a->out + (size_t)h * hd, qs, P, T, 1, a->v + (size_t)g * hd, ks, T, hd, T, false); /* O = P V */
        }
    }
}

void tr_attn_fwd(float *out, float *probs, const float *q, const float *k, const float *v, int n_tok, int n_head,
                 int n_kv, int hd, float *scratch, ponder_pool *pool)
{
    attn_task a = {.out = out, .probs = probs, .q = q, .k = k, .v = v, .n_tok = n_tok, .n_head = n_head,
                   .n_kv = n_kv, .hd = hd, .scratch = scratch};
    ponder_pool_run(pool, attn_fwd_slice, &a);
}

/* Per query head: dP = dO V^T; dV += P^T dO; dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij) scale;
 * dQ = dS K; dK += dS^T Q. */
static void attn_bwd_slice(void *arg, int ith, int nth)
{
    const attn_task *a = arg;
    const int T = a->n_tok, hd = a->hd, group = a->n_head / a->n_kv;
    const int qs = a->n_head * hd, ks = a->n_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int g = ith; g < a->n_kv; g += nth) {
        float *vt = a->scratch + (size_t)g * ((size_t)hd * T + (size_t)T * T), *dS = vt + (size_t)hd * T;
        group_t(vt, a->v, T, ks, g, hd);
        float *dkg = a->dk + (size_t)g * hd, *dvg = a->dv + (size_t)g * hd;
        for (int h = g * group; h < (g + 1) * group; h++) {
            const float *P = a->cprobs + (size_t)h * T * T, *doh = a->dout + (size_t)h * hd;
            const bool first = h == g * group;
            gemm1(dS, T, doh, qs, 1, vt, T, T, T, hd, false);  /* dP = dO V^T */
            gemm1(dvg, ks, P, 1, T, doh, qs, T, hd, T, !first); /* dV += P^T dO */
            for (int i = 0; i < T; i++) {
                const float *p = P + (size_t)i * T;
                float *ds = dS + (size_t)i * T;
                float sum = 0.0f;
                for (int j = 0; j <= i; j++)
                    sum += p[j] * ds[j];
                for (int j = 0; j <= i; j++)
                    ds[j] = p[j] * (ds[j] - sum) * scale;
                for (int j = i + 1; j < T; j++)
                    ds[j] = 0.0f;
            }
            gemm1(a->dq + (size_t)h * hd, qs, dS, T, 1, a->k + (size_t)g * hd, ks, T, hd, T, false); /* dQ = dS K */
            gemm1(dkg, ks, dS, 1, T, a->q + (size_t)h * hd, qs, T, hd, T, !first); /* dK += dS^T Q */
        }
    }
}

void tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                 const float *k, const float *v, int n_tok, int n_head, int n_kv, int hd, float *scratch,
                 ponder_pool *pool)
{
    attn_task a = {.dq = dq, .dk = dk, .dv = dv, .dout = dout, .cprobs = probs, .q = q, .k = k, .v = v,
                   .n_tok = n_tok, .n_head = n_head, .n_kv = n_kv, .hd = hd, .scratch = scratch};
    ponder_pool_run(pool, attn_bwd_slice, &a);
}

/* ---- SwiGLU ---- */

void tr_swiglu_fwd(float *h, const float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g). */
void tr_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-g[i]));
        du[i] = dh[i] * g[i] * s;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

/* ---- cross-entropy ---- */

double tr_cross_entropy_rows(float *dlogits, const float *logits, const int32_t *tokens, const uint8_t *mask,
                             int n_tok, int n_vocab, int r0, int r1, int64_t *n_targets)
{
    double loss = 0.0;
    int64_t count = 0;
    for (int r = r0; r < r1; r++) {
        float *d = dlogits + (size_t)r * n_vocab;
        const int i = r + 1; /* row r predicts token i */
        if (i >= n_tok || (mask && !mask[i])) {
            memset(d, 0, (size_t)n_vocab * sizeof(float));
            continue;
        }
        const float *z = logits + (size_t)r * n_vocab;
        float max = z[0];
        for (int c = 1; c < n_vocab; c++)
            max = z[c] > max ? z[c] : max;
        double sum = 0.0;
        for (int c = 0; c < n_vocab; c++) {
            d[c] = expf(z[c] - max);
            sum += (double)d[c];
        }
        const float inv = (float)(1.0 / sum);
        for (int c = 0; c < n_vocab; c++)
            d[c] *= inv;
        loss += log(sum) - (double)(z[tokens[i]] - max);
        d[tokens[i]] -= 1.0f;
        count++;
    }
    if (n_targets)
        *n_targets = count;
    return loss;
}

double tr_cross_entropy(float *dlogits, const float *logits, const int32_t *tokens, const uint8_t *mask, int n_tok,
                        int n_vocab, int64_t *n_targets)
{
    return tr_cross_entropy_rows(dlogits, logits, tokens, mask, n_tok, n_vocab, 0, n_tok, n_targets);
}

/* ---- a parallel loop ---- */

typedef struct pfor_task {
    tr_range_fn fn;
    void *ctx;
    int64_t n, chunk, n_chunks;
    _Atomic int64_t next, done;
} pfor_task;

static void pfor_slice(void *arg, int ith, int nth)
{
    (void)nth;
    pfor_task *t = arg;
    for (;;) {
        const int64_t c = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (c >= t->n_chunks)
            break;
        const int64_t i0 = c * t->chunk, i1 = i0 + t->chunk < t->n ? i0 + t->chunk : t->n;
        t->fn(t->ctx, c, i0, i1);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
    }
    if (ith == 0)
        while (atomic_load_explicit(&t->done, memory_order_acquire) < t->n_chunks)
            ;
}

void tr_parallel_for(ponder_pool *pool, int64_t n, int64_t chunk, tr_range_fn fn, void *ctx)
{
    pfor_task t = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk, .n_chunks = (n + chunk - 1) / chunk};
    atomic_init(&t.next, 0);
    atomic_init(&t.done, 0);
    if (t.n_chunks <= 1 || !pool)
        pfor_slice(&t, 0, 1);
    else
        ponder_pool_run_dynamic(pool, pfor_slice, &t);
}

/* ---- matrix products ---- */

/* Row by row, k outer and columns inner: the inner loop is a contiguous axpy gcc
 * vectorizes on any target. */
void tr_gemm_ref(const tr_gemm_args *g, int n0, int n1)
{
    for (int m = 0; m < g->M; m++) {
        float *c = g->C + (size_t)m * g->ldc;
        if (!g->accumulate)
            for (int n = n0; n < n1; n++)
                c[n] = 0.0f;
        const float *a = g->A + (size_t)m * g->sam;
        for (int k = 0; k < g->K; k++) {
            const float ak = a[(size_t)k * g->sak];
            const float *b = g->B + (size_t)k * g->ldb;
            for (int n = n0; n < n1; n++)
                c[n] += ak * b[n];
        }
    }
}

/* Work units are column panels (32 columns on AVX-512, 64 on AVX2, 64 for the portable
 * loop) handed out through a shared counter (ponder_pool_run_dynamic): a thread the OS
 * has descheduled costs its share of speed, not a stall. Each unit is computed the same
 * way by whichever thread takes it, so results do not depend on the thread count. */
enum { PATH_REF, PATH_AVX2, PATH_AVX512 };

typedef struct gemm_task {
    const tr_gemm_args *g;
    int path, units, unit_w;
    _Atomic int next, done;
} gemm_task;

static void gemm_unit(const gemm_task *t, int u)
{
#ifdef PONDER_TRAIN_AVX2
    if (t->path == PATH_AVX512) {
        tr_gemm_avx512_panel(t->g, u);
        return;
    }
#endif
    const int n0 = u * t->unit_w, n1 = n0 + t->unit_w < t->g->N ? n0 + t->unit_w : t->g->N;
#ifdef PONDER_TRAIN_AVX2
    if (t->path == PATH_AVX2) {
        tr_gemm_avx2(t->g, n0, n1);
        return;
    }
#endif
    tr_gemm_ref(t->g, n0, n1);
}

static void gemm_slice(void *arg, int ith, int nth)
{
    (void)nth;
    gemm_task *t = arg;
    for (;;) {
        const int u = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (u >= t->units)
            break;
        gemm_unit(t, u);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
    }
    if (ith == 0) /* the caller returns once every unit is finished, by whichever thread */
        while (atomic_load_explicit(&t->done, memory_order_acquire) < t->units)
            ;
}

int tr_gemm_path(void)
{
    /* PONDER_ISA / ponder_tensor_force_isa: "scalar" takes the portable loop, "avx2" the
     * AVX2 tiles; any other path means the widest this CPU runs */
    const char *isa = ponder_cpu_isa();
    if (strcmp(isa, "scalar") == 0)
        return PATH_REF;
#ifdef PONDER_TRAIN_AVX2
    if (strcmp(isa, "avx2") != 0 && __builtin_cpu_supports("avx512f"))
        return PATH_AVX512;
    if (ponder_tensor_isa_available("avx2"))
        return PATH_AVX2;
#endif
    return PATH_REF;
}

const char *tr_gemm_path_name(void)
{
    static const char *const names[] = {"portable", "avx2", "avx512"};
    return names[tr_gemm_path()];
}

void tr_gemm(const tr_gemm_args *g, ponder_pool *pool)
{
    gemm_task t = {.g = g, .path = tr_gemm_path()};
    t.unit_w = t.path == PATH_AVX512 ? 32 : 64;
    t.units = (g->N + t.unit_w - 1) / t.unit_w;
    atomic_init(&t.next, 0);
    atomic_init(&t.done, 0);
    if (t.units <= 1 || !pool)
        gemm_slice(&t, 0, 1);
    else
        ponder_pool_run_dynamic(pool, gemm_slice, &t);
}

void tr_transpose(float *dst, const float *src, int64_t n_rows, int64_t n_cols)
{
    /* blocks of 16x16 keep both sides in cache */
    for (int64_t r0 = 0; r0 < n_rows; r0 += 16)
        for (int64_t c0 = 0; c0 < n_cols; c0 += 16) {
            const int64_t r1 = r0 + 16 < n_rows ? r0 + 16 : n_rows, c1 = c0 + 16 < n_cols ? c0 + 16 : n_cols;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    dst[c * n_rows + r] = src[r * n_cols + c];
        }
}
