/*
 * test_grad.c — every layer's backward pass against central finite differences of its
 * forward pass (float, with a tolerance that real bugs exceed by orders of magnitude),
 * then the whole model's gradient (embedding, tied output and matrix products included).
 *
 * Each op is checked through L = sum(out * R) for a fixed random R, so dL/dout = R.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/tensor.h"
#include "ponder/train.h"
#include "train/train_internal.h"

#define FD_STEP 1e-2f
#define MODEL_FD_STEP 2e-3f /* the whole model is more curved: a smaller step */
#define REL_TOL 2e-2
#define ABS_TOL 2e-3

static uint64_t g_rng = 42;

static float frand(void) /* uniform [-1, 1) */
{
    return (float)((double)(tr_splitmix64(&g_rng) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand() * scale;
}

static double dotd(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void expect_close(const char *what, size_t i, double analytic, double numeric)
{
    const double tol = REL_TOL * fmax(fabs(analytic), fabs(numeric)) + ABS_TOL;
    if (fabs(analytic - numeric) > tol)
        fail_msg("%s[%zu]: analytic %.6g, finite difference %.6g", what, i, analytic, numeric);
}

/* ---- RMSNorm ---- */

typedef struct {
    int T, n;
    float *x, *w, *y, *r, *R;
} rms_case;

static double rms_loss(rms_case *c)
{
    tr_rmsnorm_fwd(c->y, c->r, c->x, c->w, c->T, c->n, 1e-5f);
    return dotd(c->y, c->R, (size_t)c->T * c->n);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    rms_case c = {.T = 3, .n = 8};
    const size_t N = (size_t)c.T * c.n;
    float x[24], w[8], y[24], r[3], R[24], dx[24], dw[8] = {0};
    c.x = x, c.w = w, c.y = y, c.r = r, c.R = R;
    fill(x, N, 1.0f), fill(w, 8, 1.0f), fill(R, N, 1.0f);
    rms_loss(&c);
    tr_rmsnorm_bwd(dx, dw, R, x, w, r, c.T, c.n);
    for (size_t i = 0; i < N; i++) {
        const float keep = x[i];
        x[i] = keep + FD_STEP;
        const double lp = rms_loss(&c);
        x[i] = keep - FD_STEP;
        const double lm = rms_loss(&c);
        x[i] = keep;
        expect_close("rmsnorm dx", i, dx[i], (lp - lm) / (2 * FD_STEP));
    }
    for (size_t i = 0; i < 8; i++) {
        const float keep = w[i];
        w[i] = keep + FD_STEP;
        const double lp = rms_loss(&c);
        w[i] = keep - FD_STEP;
        const double lm = rms_loss(&c);
        w[i] = keep;
        expect_close("rmsnorm dw", i, dw[i], (lp - lm) / (2 * FD_STEP));
    }
}

/* ---- RoPE ---- */

static void test_rope(void **state)
{
    (void)state;
    enum { T = 4, H = 2, HD = 6, N = T * H * HD };
    float cs[T * HD], x[N], y[N], R[N], dx[N];
    tr_rope_cache(cs, T, HD, 10000.0f);
    fill(x, N, 1.0f), fill(R, N, 1.0f);
    memcpy(dx, R, sizeof dx);
    tr_rope_bwd(dx, T, H, HD, cs);
    for (size_t i = 0; i < N; i++) {
        const float keep = x[i];
        x[i] = keep + FD_STEP;
        memcpy(y, x, sizeof y);
        tr_rope_fwd(y, T, H, HD, cs);
        const double lp = dotd(y, R, N);
        x[i] = keep - FD_STEP;
        memcpy(y, x, sizeof y);
        tr_rope_fwd(y, T, H, HD, cs);
        const double lm = dotd(y, R, N);
        x[i] = keep;
        expect_close("rope dx", i, dx[i], (lp - lm) / (2 * FD_STEP));
    }
    /* position 0 is the identity, and the rotation keeps the norm */
    memcpy(y, x, sizeof y);
    tr_rope_fwd(y, T, H, HD, cs);
    for (int i = 0; i < H * HD; i++)
        assert_true(y[i] == x[i]);
    assert_true(fabs(dotd(y, y, N) - dotd(x, x, N)) < 1e-4 * dotd(x, x, N));
}

/* ---- attention (GQA: 4 query heads over 2 KV heads) ---- */

enum { AT = 5, AH = 4, AKV = 2, AHD = 4, AQ = AT * AH * AHD, AK = AT * AKV * AHD, AS = AKV * (AHD * AT + AT * AT) };

static double attn_loss(const float *q, const float *k, const float *v, const float *R, ponder_pool *pool)
{
    float out[AQ], probs[AH * AT * AT], scratch[AS];
    assert_true(tr_attn_scratch_floats(AT, AKV, AHD) == AS);
    tr_attn_fwd(out, probs, q, k, v, AT, AH, AKV, AHD, scratch, pool);
    return dotd(out, R, AQ);
}

static void check_attn(ponder_pool *pool)
{
    float q[AQ], k[AK], v[AK], R[AQ], out[AQ], probs[AH * AT * AT], dq[AQ], dk[AK], dv[AK], scratch[AS];
    fill(q, AQ, 1.0f), fill(k, AK, 1.0f), fill(v, AK, 1.0f), fill(R, AQ, 1.0f);
    tr_attn_fwd(out, probs, q, k, v, AT, AH, AKV, AHD, scratch, pool);
    tr_attn_bwd(dq, dk, dv, R, probs, q, k, v, AT, AH, AKV, AHD, scratch, pool);
    struct {
        const char *name;
        float *x, *d;
        int n;
    } in[] = {{"attention dq", q, dq, AQ}, {"attention dk", k, dk, AK}, {"attention dv", v, dv, AK}};
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < in[a].n; i++) {
            const float keep = in[a].x[i];
            in[a].x[i] = keep + FD_STEP;
            const double lp = attn_loss(q, k, v, R, pool);
            in[a].x[i] = keep - FD_STEP;
            const double lm = attn_loss(q, k, v, R, pool);
            in[a].x[i] = keep;
            expect_close(in[a].name, (size_t)i, in[a].d[i], (lp - lm) / (2 * FD_STEP));
        }
    /* causality: the first token's output is its own value row */
    for (int h = 0; h < AH; h++)
        for (int d = 0; d < AHD; d++)
            assert_true(fabsf(out[h * AHD + d] - v[(h / (AH / AKV)) * AHD + d]) < 1e-6f);
}

static void test_attention(void **state)
{
    (void)state;
    check_attn(NULL);
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    check_attn(pool); /* heads split across threads */
    ponder_pool_free(pool);
}

/* ---- SwiGLU ---- */

static void test_swiglu(void **state)
{
    (void)state;
    enum { N = 16 };
    float g[N], u[N], h[N], R[N], dg[N], du[N];
    fill(g, N, 3.0f), fill(u, N, 1.0f), fill(R, N, 1.0f);
    tr_swiglu_bwd(dg, du, R, g, u, N);
    for (int which = 0; which < 2; which++)
        for (int i = 0; i < N; i++) {
            float *x = which ? u : g;
            const float keep = x[i];
            x[i] = keep + FD_STEP;
            tr_swiglu_fwd(h, g, u, N);
            const double lp = dotd(h, R, N);
            x[i] = keep - FD_STEP;
            tr_swiglu_fwd(h, g, u, N);
            const double lm = dotd(h, R, N);
            x[i] = keep;
            expect_close(which ? "swiglu du" : "swiglu dg", (size_t)i, which ? du[i] : dg[i],
                         (lp - lm) / (2 * FD_STEP));
        }
}

/* ---- cross-entropy ---- */

static void test_cross_entropy(void **state)
{
    (void)state;
    enum { T = 4, V = 7 };
    const int32_t tokens[T] = {1, 5, 0, 6};
    const uint8_t mask[T] = {0, 0, 1, 1}; /* rows 1 and 2 have targets */
    float z[T * V], dz[T * V], scratch[T * V];
    fill(z, T * V, 2.0f);
    int64_t n = 0;
    const double loss = tr_cross_entropy(dz, z, tokens, mask, T, V, &n);
    assert_int_equal(n, 2);
    assert_true(loss > 0);
    for (int i = 0; i < V; i++) /* rows without a target have no gradient */
        assert_true(dz[i] == 0.0f && dz[3 * V + i] == 0.0f);
    for (int i = 0; i < T * V; i++) {
        const float keep = z[i];
        z[i] = keep + FD_STEP;
        const double lp = tr_cross_entropy(scratch, z, tokens, mask, T, V, NULL);
        z[i] = keep - FD_STEP;
        const double lm = tr_cross_entropy(scratch, z, tokens, mask, T, V, NULL);
        z[i] = keep;
        expect_close("cross-entropy dlogits", (size_t)i, dz[i], (lp - lm) / (2 * FD_STEP));
    }
}

/* ---- the matrix product: every path and thread count against a double loop ---- */

static void check_gemm(int M, int N, int K, bool transposed_a, bool acc, ponder_pool *pool)
{
    float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
    float *C = malloc((size_t)M * N * sizeof *C), *C0 = malloc((size_t)M * N * sizeof *C0);
    fill(A, (size_t)M * K, 1.0f), fill(B, (size_t)K * N, 1.0f), fill(C0, (size_t)M * N, 1.0f);
    memcpy(C, C0, (size_t)M * N * sizeof *C);
    /* A(m, k) is A[k*M + m] when transposed (how dW reads dY) */
    const tr_gemm_args g = {.C = C, .A = A, .B = B, .M = M, .N = N, .K = K, .ldc = N, .ldb = N,
                            .sam = transposed_a ? 1 : K, .sak = transposed_a ? M : 1, .accumulate = acc};
    tr_gemm(&g, pool);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double want = acc ? C0[(size_t)m * N + n] : 0.0;
            for (int k = 0; k < K; k++)
                want += (double)A[transposed_a ? (size_t)k * M + m : (size_t)m * K + k] * B[(size_t)k * N + n];
            const double got = C[(size_t)m * N + n];
            if (fabs(got - want) > 1e-5 * K)
                fail_msg("gemm %dx%dx%d [%d,%d]: %.7g, want %.7g (%s)", M, N, K, m, n, got, want, tr_gemm_path_name());
        }
    free(A), free(B), free(C), free(C0);
}

static void test_gemm(void **state)
{
    (void)state;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    /* remainders in every dimension: 8-row and 4-row tiles, 32-, 16- and 8-column panels,
     * masked and scalar tails, K over one packed block (300 > 256) */
    const int shapes[][3] = {{1, 1, 1},    {5, 37, 3},    {9, 16, 40},  {4, 24, 7},
                             {13, 53, 31}, {64, 128, 96}, {17, 70, 300}, {3, 33, 257}};
    /* every path: the widest (AVX-512 where the CPU has it), AVX2 tiles, the portable loop */
    const char *paths[] = {"auto", "avx2", "scalar"};
    bool saw_avx512 = false;
    for (int p = 0; p < 3; p++) {
        if (ponder_tensor_force_isa(paths[p], NULL) != PONDER_OK) {
            printf("SKIP gemm path %s: this CPU or build lacks it\n", paths[p]);
            continue;
        }
        saw_avx512 |= tr_gemm_path() == 2;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int variant = 0; variant < 4; variant++)
                check_gemm(shapes[i][0], shapes[i][1], shapes[i][2], variant & 1, variant & 2,
                           i % 2 ? pool : NULL);
    }
    if (!saw_avx512)
        printf("SKIP gemm path avx512: this CPU lacks AVX-512F\n");
    ponder_tensor_force_isa("auto", NULL);
    /* thread count changes nothing, bit for bit */
    enum { M = 11, N = 70, K = 33 };
    static float A[M * K], B[K * N], C1[M * N], C2[M * N];
    fill(A, M * K, 1.0f), fill(B, K * N, 1.0f);
    tr_gemm(&(tr_gemm_args){.C = C1, .A = A, .B = B, .M = M, .N = N, .K = K, .ldc = N, .ldb = N, .sam = K, .sak = 1},
            NULL);
    tr_gemm(&(tr_gemm_args){.C = C2, .A = A, .B = B, .M = M, .N = N, .K = K, .ldc = N, .ldb = N, .sam = K, .sak = 1},
            pool);
    assert_memory_equal(C1, C2, sizeof C1);
    ponder_pool_free(pool);
}

/* ---- the whole model: embedding, every matrix, norms, tied output ---- */

static void check_model(ponder_pool *pool)
{
    ponder_train_params p = ponder_train_params_default();
    p.shape = (ponder_train_shape){.n_vocab = 11, .n_embd = 8, .n_layer = 2, .n_head = 2, .n_head_kv = 1,
                                   .n_ff = 12, .n_ctx = 8, .norm_eps = 1e-5f, .rope_base = 10000.0f};
    p.init_std = 0.3f; /* large weights: every path carries a gradient well above the noise */
    p.pool = pool;
    ponder_trainer *t = NULL;
    ponder_error err;
    assert_int_equal(ponder_trainer_create(&p, &t, &err), PONDER_OK);
    float *w = ponder_trainer_weights(t), *g = ponder_trainer_grads(t);
    const int64_t np = ponder_trainer_n_params(t);
    for (int64_t i = 0; i < np; i++) /* norm weights away from 1 too */
        w[i] += 0.3f * frand();
    ponder_trainer_sync_weights(t);
    const int32_t tok_a[8] = {1, 4, 2, 9, 9, 0, 3, 10}, tok_b[5] = {7, 7, 1, 2, 5};
    const uint8_t mask_b[5] = {0, 0, 0, 1, 1};
    const ponder_train_seq seqs[2] = {{tok_a, NULL, 8}, {tok_b, mask_b, 5}};
    double loss = 0;
    int64_t n = 0;
    assert_int_equal(ponder_trainer_accumulate(t, seqs, 2, &loss, &n, &err), PONDER_OK);
    assert_int_equal(n, 7 + 2);
    float *grad = malloc((size_t)np * sizeof *grad);
    memcpy(grad, g, (size_t)np * sizeof *grad);
    for (int it = 0; it < ponder_trainer_n_tensors(t); it++) {
        int64_t off, ne;
        const char *name = ponder_trainer_tensor_name(t, it, &off, &ne);
        double max_grad = 0;
        for (int64_t j = 0; j < ne; j++) {
            const int64_t i = off + j;
            const float keep = w[i];
            double lp, lm;
            w[i] = keep + MODEL_FD_STEP;
            ponder_trainer_sync_weights(t);
            assert_int_equal(ponder_trainer_eval(t, seqs, 2, &lp, NULL, &err), PONDER_OK);
            w[i] = keep - MODEL_FD_STEP;
            ponder_trainer_sync_weights(t);
            assert_int_equal(ponder_trainer_eval(t, seqs, 2, &lm, NULL, &err), PONDER_OK);
            w[i] = keep;
            ponder_trainer_sync_weights(t);
            expect_close(name, (size_t)j, grad[i], (lp - lm) / (2 * MODEL_FD_STEP));
            max_grad = fmax(max_grad, fabs(grad[i]));
        }
        if (max_grad < 1e-3) /* a tensor the loss does not reach would pass vacuously */
            fail_msg("%s: gradient is ~0 (%g)", name, max_grad);
    }
    free(grad);
    ponder_trainer_free(t);
}

static void test_model_gradient(void **state)
{
    (void)state;
    check_model(NULL);
}

static void test_model_gradient_threads(void **state)
{
    (void)state;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    check_model(pool);
    ponder_pool_free(pool);
}

/* Five AdamW steps on three sequences; returns the weights. */
static float *train_steps(ponder_pool *pool, int64_t *np)
{
    ponder_train_params p = ponder_train_params_default();
    p.shape = (ponder_train_shape){.n_vocab = 11, .n_embd = 32, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                                   .n_ff = 40, .n_ctx = 12, .norm_eps = 1e-5f, .rope_base = 10000.0f};
    p.pool = pool;
    p.warmup_steps = 0;
    ponder_trainer *t = NULL;
    ponder_error err;
    assert_int_equal(ponder_trainer_create(&p, &t, &err), PONDER_OK);
    const int32_t a[12] = {1, 4, 2, 9, 9, 0, 3, 10, 5, 5, 6, 7}, b[5] = {7, 7, 1, 2, 5},
                  c[9] = {3, 1, 4, 1, 5, 9, 2, 6, 5};
    const ponder_train_seq seqs[3] = {{a, NULL, 12}, {b, NULL, 5}, {c, NULL, 9}};
    for (int step = 0; step < 5; step++) {
        assert_int_equal(ponder_trainer_accumulate(t, seqs, 3, NULL, NULL, &err), PONDER_OK);
        assert_int_equal(ponder_trainer_step(t, NULL, &err), PONDER_OK);
    }
    *np = ponder_trainer_n_params(t);
    float *w = malloc((size_t)*np * sizeof *w);
    memcpy(w, ponder_trainer_weights(t), (size_t)*np * sizeof *w);
    ponder_trainer_free(t);
    return w;
}

/* Threads run whole sequences (data-parallel): a given thread count gives the same
 * weights bit for bit; another count only rounds differently. */
static void test_threads_reproducible(void **state)
{
    (void)state;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    int64_t n1, n2, n3;
    float *w1 = train_steps(NULL, &n1), *w2 = train_steps(pool, &n2), *w3 = train_steps(pool, &n3);
    assert_true(n1 == n2 && n2 == n3);
    assert_memory_equal(w2, w3, (size_t)n2 * sizeof *w2);
    for (int64_t i = 0; i < n1; i++)
        if (fabsf(w1[i] - w2[i]) > 1e-4f)
            fail_msg("weight %lld: 1 thread %.7g, 2 threads %.7g", (long long)i, w1[i], w2[i]);
    free(w1), free(w2), free(w3);
    ponder_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),          cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_cross_entropy),    cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_model_gradient),
        cmocka_unit_test(test_model_gradient_threads),
        cmocka_unit_test(test_threads_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
