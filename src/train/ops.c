/*
 * ops.c — forward and backward of each layer type the trainer uses: RMSNorm, NORM RoPE,
 * causal grouped-query attention, SwiGLU, cross-entropy, and the matrix product (AVX2
 * tiles in gemm_avx2.c, a portable loop here). The forward rounding follows src/model/forward.c so
 * trained weights give the engine's logits; backward formulas are the textbook ones,
 * written so the inner loops are contiguous (gcc vectorizes them at -O2).
 */
#include "train/train_internal.h"

#include <math.h>
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

/* Dot product in eight independent lanes (summed at the end), so the compiler can
 * vectorize it without reassociating float additions. */
static inline float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += a[i + u] * b[i + u];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

typedef struct attn_task {
    float *out, *probs, *dq, *dk, *dv;
    const float *dout, *cprobs, *q, *k, *v;
    int n_tok, n_head, n_kv, hd;
} attn_task;

static void attn_fwd_slice(void *arg, int ith, int nth)
{
    const attn_task *a = arg;
    const int T = a->n_tok, hd = a->hd, group = a->n_head / a->n_kv;
    const int qs = a->n_head * hd, ks = a->n_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = ith; h < a->n_head; h += nth) {
        const int g = h / group;
        for (int i = 0; i < T; i++) {
            const float *qi = a->q + (size_t)i * qs + (size_t)h * hd;
            float *p = a->probs + ((size_t)h * T + i) * T;
            float max = -INFINITY;
            for (int j = 0; j <= i; j++) {
                const float *kj = a->k + (size_t)j * ks + (size_t)g * hd;
                p[j] = dot(qi, kj, hd) * scale;
                max = p[j] > max ? p[j] : max;
            }
            double sum = 0.0;
            for (int j = 0; j <= i; j++) {
                p[j] = expf(p[j] - max);
                sum += (double)p[j];
            }
            const float inv = (float)(1.0 / sum);
            float *o = a->out + (size_t)i * qs + (size_t)h * hd;
            for (int d = 0; d < hd; d++)
                o[d] = 0.0f;
            for (int j = 0; j <= i; j++) {
                p[j] *= inv;
                const float *vj = a->v + (size_t)j * ks + (size_t)g * hd;
                for (int d = 0; d < hd; d++)
                    o[d] += p[j] * vj[d];
            }
        }
    }
}

void tr_attn_fwd(float *out, float *probs, const float *q, const float *k, const float *v, int n_tok, int n_head,
                 int n_kv, int hd, ponder_pool *pool)
{
    attn_task a = {.out = out, .probs = probs, .q = q, .k = k, .v = v, .n_tok = n_tok, .n_head = n_head,
                   .n_kv = n_kv, .hd = hd};
    ponder_pool_run(pool, attn_fwd_slice, &a);
}

/* Per query head: dP_ij = do_i . v_j; dv_j += P_ij do_i; dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij);
 * dq_i = scale sum_j dS_ij k_j; dk_j += scale dS_ij q_i. Threads split the KV heads, so
 * the heads of a group (which share dk, dv) stay on one thread. */
static void attn_bwd_slice(void *arg, int ith, int nth)
{
    const attn_task *a = arg;
    const int T = a->n_tok, hd = a->hd, group = a->n_head / a->n_kv;
    const int qs = a->n_head * hd, ks = a->n_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int g = ith; g < a->n_kv; g += nth) {
        for (int j = 0; j < T; j++) {
            memset(a->dk + (size_t)j * ks + (size_t)g * hd, 0, (size_t)hd * sizeof(float));
            memset(a->dv + (size_t)j * ks + (size_t)g * hd, 0, (size_t)hd * sizeof(float));
        }
        for (int h = g * group; h < (g + 1) * group; h++) {
            for (int i = 0; i < T; i++) {
                const float *p = a->cprobs + ((size_t)h * T + i) * T;
                const float *doi = a->dout + (size_t)i * qs + (size_t)h * hd;
                const float *qi = a->q + (size_t)i * qs + (size_t)h * hd;
                float *dqi = a->dq + (size_t)i * qs + (size_t)h * hd;
                /* two passes over j: the first for sum_j P_ij dP_ij, the second recomputes dP_ij */
                float sum = 0.0f;
                for (int j = 0; j <= i; j++) {
                    const float *vj = a->v + (size_t)j * ks + (size_t)g * hd;
                    sum += p[j] * dot(doi, vj, hd);
                }
                for (int d = 0; d < hd; d++)
                    dqi[d] = 0.0f;
                for (int j = 0; j <= i; j++) {
                    const float *vj = a->v + (size_t)j * ks + (size_t)g * hd;
                    const float *kj = a->k + (size_t)j * ks + (size_t)g * hd;
                    float *dkj = a->dk + (size_t)j * ks + (size_t)g * hd;
                    float *dvj = a->dv + (size_t)j * ks + (size_t)g * hd;
                    const float dsij = p[j] * (dot(doi, vj, hd) - sum) * scale;
                    for (int d = 0; d < hd; d++) {
                        dvj[d] += p[j] * doi[d];
                        dqi[d] += dsij * kj[d];
                        dkj[d] += dsij * qi[d];
                    }
                }
            }
        }
    }
}

void tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                 const float *k, const float *v, int n_tok, int n_head, int n_kv, int hd, ponder_pool *pool)
{
    attn_task a = {.dq = dq, .dk = dk, .dv = dv, .dout = dout, .cprobs = probs, .q = q, .k = k, .v = v,
                   .n_tok = n_tok, .n_head = n_head, .n_kv = n_kv, .hd = hd};
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

double tr_cross_entropy(float *dlogits, const float *logits, const int32_t *tokens, const uint8_t *mask, int n_tok,
                        int n_vocab, int64_t *n_targets)
{
    double loss = 0.0;
    int64_t count = 0;
    for (int r = 0; r < n_tok; r++) {
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

typedef struct gemm_task {
    const tr_gemm_args *g;
    bool avx2;
} gemm_task;

#define GEMM_COL_UNIT 16 /* the AVX2 tile width: thread slices are multiples of it */

static void gemm_slice(void *arg, int ith, int nth)
{
    const gemm_task *t = arg;
    const int units = (t->g->N + GEMM_COL_UNIT - 1) / GEMM_COL_UNIT;
    const int u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
    const int n0 = u0 * GEMM_COL_UNIT, n1 = u1 * GEMM_COL_UNIT < t->g->N ? u1 * GEMM_COL_UNIT : t->g->N;
    if (n0 >= n1)
        return;
#ifdef PONDER_TRAIN_AVX2
    if (t->avx2) {
        tr_gemm_avx2(t->g, n0, n1);
        return;
    }
#endif
    tr_gemm_ref(t->g, n0, n1);
}

void tr_gemm(const tr_gemm_args *g, ponder_pool *pool)
{
    const char *isa = ponder_cpu_isa(); /* honours PONDER_ISA / ponder_tensor_force_isa */
    gemm_task t = {.g = g, .avx2 = strcmp(isa, "avx2") == 0 || strcmp(isa, "avx512") == 0};
    ponder_pool_run(pool, gemm_slice, &t);
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
