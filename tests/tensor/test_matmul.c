/* test_matmul.c — ponder_matmul for every supported weight type against a naive double
 * reference built from the dequantized weights (and, in the default mode, the activations
 * rounded through the weight type's vec_dot_type, as llama.cpp does); ponder_matmul_multi
 * with every type at once: bit-identical for every thread count, equal to the scalar
 * single-thread reference up to float summation order (bit-equal on the scalar path). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor/kernels.h"
#include "tensor/quants.h"
#include "tensor_test.h"

#include <math.h>

#include <stdio.h>
#include <string.h>

enum { N_COLS = 512, N_ROWS = 7 }; /* 512: a multiple of every block size (2 K-blocks) */

static void check_type(int t, int64_t n_tokens)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    tt_rng rng = {(uint64_t)(t * 100 + n_tokens)};
    const size_t row_bytes = tt_row_bytes(t, N_COLS);
    uint8_t *wq = malloc(row_bytes * N_ROWS);
    float *wf = malloc(sizeof(float) * N_COLS * N_ROWS);    /* original weights */
    float *wdeq = malloc(sizeof(float) * N_COLS * N_ROWS);  /* dequantized weights */
    float *x = malloc(sizeof(float) * N_COLS * (size_t)n_tokens);
    float *xa = malloc(sizeof(float) * N_COLS * (size_t)n_tokens); /* x through vec_dot_type */
    float *y = malloc(sizeof(float) * N_ROWS * (size_t)n_tokens);
    float *yf = malloc(sizeof(float) * N_ROWS * (size_t)n_tokens);
    void *aq = malloc(tt_row_bytes(tr->vec_dot_type, N_COLS));
    assert_true(wq && wf && wdeq && x && xa && y && yf && aq);

    tt_fill_gauss(&rng, wf, N_COLS * N_ROWS, 0.05);
    tt_fill_gauss(&rng, x, N_COLS * n_tokens, 1.0);
    for (int r = 0; r < N_ROWS; r++) {
        assert_int_equal(ponder_quantize_row(t, wf + r * N_COLS, wq + r * row_bytes, N_COLS, NULL), PONDER_OK);
        assert_int_equal(ponder_dequantize_row(t, wq + r * row_bytes, wdeq + r * N_COLS, N_COLS, NULL),
                         PONDER_OK);
    }
    for (int64_t i = 0; i < n_tokens; i++) {
        vt->from_float(x + i * N_COLS, aq, N_COLS);
        vt->to_float(aq, xa + i * N_COLS, N_COLS);
    }

    const ponder_matrix w = {.type = (ponder_type)t, .n_cols = N_COLS, .n_rows = N_ROWS,
                             .row_bytes = row_bytes, .data = wq};
    const size_t wb = ponder_matmul_work_bytes(&w, n_tokens);
    assert_true(wb >= tt_row_bytes(tr->vec_dot_type, N_COLS) * (size_t)n_tokens);
    assert_true(wb >= N_COLS * sizeof(float));
    void *work = malloc(wb); /* exactly the advertised size: ASan catches overruns */
    assert_non_null(work);
    ponder_matmul(&w, n_tokens, x, y, work, false, NULL);
    ponder_matmul(&w, n_tokens, x, yf, work, true, NULL);

    for (int64_t i = 0; i < n_tokens; i++) {
        for (int r = 0; r < N_ROWS; r++) {
            const float *wr = wdeq + r * N_COLS;
            const double got = y[i * N_ROWS + r], gotf = yf[i * N_ROWS + r];
            /* quantized-activation mode: the dot of the two dequantized operands */
            const double ref = tt_dot(wr, xa + i * N_COLS, N_COLS);
            const double tol = 1e-5 * tt_dot_abs(wr, xa + i * N_COLS, N_COLS) +
                               tt_q8_1_slack(t, wq + r * row_bytes, xa + i * N_COLS, N_COLS);
            if (fabs(got - ref) > tol + 1e-30)
                fail_msg("%s tokens=%lld y[%lld][%d] = %.9g, reference %.9g", tr->name, (long long)n_tokens,
                         (long long)i, r, got, ref);
            /* float mode: dequantized weights times the float activations */
            const double reff = tt_dot(wr, x + i * N_COLS, N_COLS);
            const double tolf = 1e-6 * tt_dot_abs(wr, x + i * N_COLS, N_COLS);
            if (fabs(gotf - reff) > tolf + 1e-30)
                fail_msg("%s float mode y[%lld][%d] = %.9g, reference %.9g", tr->name, (long long)i, r, gotf,
                         reff);
            /* the two modes differ only by the activation rounding */
            const double norms = sqrt(tt_dot(wr, wr, N_COLS) * tt_dot(x + i * N_COLS, x + i * N_COLS, N_COLS));
            if (fabs(got - gotf) > 0.03 * norms)
                fail_msg("%s: modes differ too much: %.6g vs %.6g (norms %.3g)", tr->name, got, gotf, norms);
        }
    }
    free(work);
    free(wq);
    free(wf);
    free(wdeq);
    free(x);
    free(xa);
    free(y);
    free(yf);
    free(aq);
}

static void test_matmul_all_types(void **state)
{
    (void)state;
    int n_checked = 0;
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        if (!ponder_type_is_supported(t))
            continue;
        const int64_t tokens[] = {1, 3, 5};
        for (size_t k = 0; k < sizeof tokens / sizeof tokens[0]; k++)
            check_type(t, tokens[k]);
        n_checked++;
    }
    assert_int_equal(n_checked, 14); /* F32 F16 BF16, Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL, Q2..Q6_K */
}

static void test_work_bytes(void **state)
{
    (void)state;
    ponder_matrix w = {.type = PONDER_TYPE_Q4_0, .n_cols = 4096, .n_rows = 2, .row_bytes = 2304};
    /* 5 tokens of 128 Q8_0 blocks of 34 bytes */
    assert_int_equal(ponder_matmul_work_bytes(&w, 5), 5 * 128 * 34);
    /* 3 tokens are smaller than the float_activations row: 4096 floats */
    assert_int_equal(ponder_matmul_work_bytes(&w, 3), 4096 * 4);
    w.type = PONDER_TYPE_Q4_K; /* Q8_K rows: 16 blocks of 292 */
    assert_int_equal(ponder_matmul_work_bytes(&w, 10), 10 * 16 * 292);
    w.type = PONDER_TYPE_F16;
    assert_int_equal(ponder_matmul_work_bytes(&w, 7), 7 * 4096 * 2);
    w.type = PONDER_TYPE_Q8_K; /* activation-only type: cannot be a weight */
    assert_int_equal(ponder_matmul_work_bytes(&w, 1), 0);
    w.type = PONDER_TYPE_IQ2_XXS;
    assert_int_equal(ponder_matmul_work_bytes(&w, 1), 0);
    w.type = PONDER_TYPE_Q4_K;
    w.n_cols = 4000; /* not a multiple of 256 */
    assert_int_equal(ponder_matmul_work_bytes(&w, 1), 0);
    w.type = PONDER_TYPE_Q8_0;
    w.n_cols = 1 << 20;
    assert_int_equal(ponder_matmul_work_bytes(&w, INT64_MAX), SIZE_MAX);
}

/* F32 weights: the product is a plain dot, exact up to the final rounding of a double sum. */
static void test_matmul_f32_exact(void **state)
{
    (void)state;
    const float wdata[2 * 3] = {1, 2, 3, -1, 0.5f, 0.25f};
    const float x[2 * 3] = {1, 1, 1, 2, -4, 8};
    const ponder_matrix w = {.type = PONDER_TYPE_F32, .n_cols = 3, .n_rows = 2, .row_bytes = 12, .data = wdata};
    float y[4], work[8];
    assert_true(ponder_matmul_work_bytes(&w, 2) <= sizeof work);
    ponder_matmul(&w, 2, x, y, work, false, NULL);
    assert_true(y[0] == 6.0f);     /* token 0, row 0 */
    assert_true(y[1] == -0.25f);   /* token 0, row 1 */
    assert_true(y[2] == 18.0f);    /* token 1, row 0: 2 - 8 + 24 */
    assert_true(y[3] == -2.0f);    /* token 1, row 1: -2 - 2 + 2 */
}

/* ---- ponder_matmul_multi ---- */

/* The scalar oracle: reference activation conversion, then one reference vec_dot per
 * (token, row), single thread. */
static void reference_product(const ponder_matrix *w, int64_t n_tokens, const float *x, float *y)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    void *a = malloc(tt_row_bytes(tr->vec_dot_type, w->n_cols));
    assert_non_null(a);
    for (int64_t t = 0; t < n_tokens; t++) {
        vt->from_float(x + t * w->n_cols, a, w->n_cols);
        for (int64_t r = 0; r < w->n_rows; r++)
            tr->vec_dot(w->n_cols, &y[t * w->n_rows + r], (const uint8_t *)w->data + (size_t)r * w->row_bytes, a);
    }
    free(a);
}

/* The reference float mode: dequantized row . float activations, double sum. */
static void reference_float_product(const ponder_matrix *w, int64_t n_tokens, const float *x, float *y)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    float *row = malloc((size_t)w->n_cols * sizeof *row);
    assert_non_null(row);
    for (int64_t r = 0; r < w->n_rows; r++) {
        tr->to_float((const uint8_t *)w->data + (size_t)r * w->row_bytes, row, w->n_cols);
        for (int64_t t = 0; t < n_tokens; t++)
            ponder_vec_dot_f32(w->n_cols, &y[t * w->n_rows + r], row, x + t * w->n_cols);
    }
    free(row);
}

/* sum |terms| of y[t][r] for the tolerance: dequantized weights and activations, plus the
 * separately added mins of Q4_1/Q5_1 */
static double abs_terms(const ponder_matrix *w, int64_t r, const float *xa_t)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    const uint8_t *wq = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    float *wd = malloc((size_t)w->n_cols * sizeof *wd);
    assert_non_null(wd);
    tr->to_float(wq, wd, w->n_cols);
    double s = tt_dot_abs(wd, xa_t, w->n_cols);
    if (w->type == PONDER_TYPE_Q4_1 || w->type == PONDER_TYPE_Q5_1) {
        for (int64_t b = 0; b < w->n_cols / PONDER_QK; b++) {
            const ponder_f16 m = w->type == PONDER_TYPE_Q4_1 ? ((const ponder_block_q4_1 *)wq)[b].m
                                                             : ((const ponder_block_q5_1 *)wq)[b].m;
            for (int i = 0; i < PONDER_QK; i++)
                s += 2.0 * fabs((double)ponder_f16_to_f32(m) * xa_t[b * PONDER_QK + i]);
        }
    }
    free(wd);
    return s;
}

enum { MULTI_COLS = 768, MAX_JOBS = PONDER_TYPE_COUNT };

typedef struct {
    int n_jobs;
    ponder_matrix w[MAX_JOBS];
    ponder_matmul_job jobs[MAX_JOBS];
    uint8_t *wq[MAX_JOBS];
} job_set;

/* One matrix per supported type, with awkward row counts (not multiples of 4 or 16). */
static void make_jobs(job_set *js, tt_rng *rng)
{
    static const int64_t rows[] = {7, 33, 100, 50, 19, 64, 3, 129, 16, 1, 45, 77, 31, 90};
    js->n_jobs = 0;
    float *f = malloc(MULTI_COLS * sizeof *f);
    assert_non_null(f);
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        if (!ponder_type_is_supported(t))
            continue;
        const int j = js->n_jobs++;
        const int64_t nr = rows[j % 14];
        const size_t rb = tt_row_bytes(t, MULTI_COLS) + (j % 3 == 0 ? 8 : 0); /* some padded rows */
        js->wq[j] = calloc((size_t)nr, rb);
        assert_non_null(js->wq[j]);
        for (int64_t r = 0; r < nr; r++) {
            tt_fill_gauss(rng, f, MULTI_COLS, 0.05);
            assert_int_equal(ponder_quantize_row(t, f, js->wq[j] + (size_t)r * rb, MULTI_COLS, NULL), PONDER_OK);
        }
        js->w[j] = (ponder_matrix){.type = (ponder_type)t, .n_cols = MULTI_COLS, .n_rows = nr, .row_bytes = rb,
                                   .data = js->wq[j]};
    }
    free(f);
}

/* Runs the whole job set into freshly allocated outputs (one block per job). */
static float *run_multi(job_set *js, int64_t n_tokens, const float *x, bool float_mode, ponder_pool *pool)
{
    size_t total = 0;
    for (int j = 0; j < js->n_jobs; j++)
        total += (size_t)(js->w[j].n_rows * n_tokens);
    float *y = malloc(total * sizeof *y + 1);
    assert_non_null(y);
    memset(y, 0xff, total * sizeof *y); /* NaN: an output never written shows */
    size_t off = 0;
    for (int j = 0; j < js->n_jobs; j++) {
        js->jobs[j] = (ponder_matmul_job){.w = &js->w[j], .y = y + off};
        off += (size_t)(js->w[j].n_rows * n_tokens);
    }
    const size_t wb = ponder_matmul_multi_work_bytes(js->jobs, js->n_jobs, n_tokens, ponder_pool_n_threads(pool));
    void *work = malloc(wb ? wb : 1); /* exactly the advertised size: ASan catches overruns */
    assert_non_null(work);
    ponder_matmul_multi(js->jobs, js->n_jobs, n_tokens, x, work, float_mode, pool);
    free(work);
    return y;
}

static void test_matmul_multi_threads_and_reference(void **state)
{
    (void)state;
    tt_rng rng = {2024};
    job_set js;
    make_jobs(&js, &rng);
    assert_int_equal(js.n_jobs, 14);
    ponder_pool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        assert_int_equal(ponder_pool_create(i + 1, &pools[i], NULL), PONDER_OK);
    const int64_t token_counts[] = {1, 2, 3, 5, 17};
    const char *paths[] = {"scalar", "avx2", "avx512"};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!ponder_tensor_isa_available(paths[p]))
            continue;
        assert_int_equal(ponder_tensor_force_isa(paths[p], NULL), PONDER_OK);
        const bool scalar = strcmp(paths[p], "scalar") == 0;
        for (size_t k = 0; k < sizeof token_counts / sizeof token_counts[0]; k++) {
            const int64_t nt = token_counts[k];
            float *x = malloc((size_t)(nt * MULTI_COLS) * sizeof *x);
            assert_non_null(x);
            tt_fill_gauss(&rng, x, nt * MULTI_COLS, 1.0);
            for (int fm = 0; fm < 2; fm++) {
                float *y0 = run_multi(&js, nt, x, fm, NULL);
                size_t total = 0;
                for (int j = 0; j < js.n_jobs; j++)
                    total += (size_t)(js.w[j].n_rows * nt);
                /* every thread count gives the same bits */
                for (int i = 0; i < 3; i++) {
                    float *yi = run_multi(&js, nt, x, fm, pools[i]);
                    if (memcmp(y0, yi, total * sizeof *y0) != 0)
                        fail_msg("path %s tokens %lld float_mode %d: %d threads differ from no pool", paths[p],
                                 (long long)nt, fm, i + 1);
                    free(yi);
                }
                /* against the scalar single-thread reference */
                size_t off = 0;
                for (int j = 0; j < js.n_jobs; j++) {
                    const ponder_matrix *w = &js.w[j];
                    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
                    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
                    float *ref = malloc((size_t)(w->n_rows * nt) * sizeof *ref);
                    float *xa = malloc((size_t)MULTI_COLS * sizeof *xa);
                    void *aq = malloc(tt_row_bytes(tr->vec_dot_type, MULTI_COLS));
                    assert_true(ref && xa && aq);
                    if (fm)
                        reference_float_product(w, nt, x, ref);
                    else
                        reference_product(w, nt, x, ref);
                    const bool exact = fm || scalar; /* same kernels, same order */
                    for (int64_t t = 0; t < nt; t++) {
                        vt->from_float(x + t * MULTI_COLS, aq, MULTI_COLS);
                        vt->to_float(aq, xa, MULTI_COLS);
                        for (int64_t r = 0; r < w->n_rows; r++) {
                            const float got = y0[off + (size_t)(t * w->n_rows + r)], want = ref[t * w->n_rows + r];
                            if (exact ? memcmp(&got, &want, sizeof got) != 0
                                      : !(fabs((double)got - want) <= 2e-6 * abs_terms(w, r, xa) + 1e-35))
                                fail_msg("path %s %s tokens %lld float_mode %d y[%lld][%lld] = %.9g, reference %.9g",
                                         paths[p], tr->name, (long long)nt, fm, (long long)t, (long long)r, got, want);
                        }
                    }
                    off += (size_t)(w->n_rows * nt);
                    free(ref);
                    free(xa);
                    free(aq);
                }
                free(y0);
            }
            free(x);
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    for (int i = 0; i < 3; i++)
        ponder_pool_free(pools[i]);
    for (int j = 0; j < js.n_jobs; j++)
        free(js.wq[j]);
}

/* Prompt-sized batch through the tile kernels: chunk and tile edges (rows not a multiple
 * of 4 or 16, tokens not a multiple of the tile width) must not change any result. */
static void test_matmul_tiles_large_batch(void **state)
{
    (void)state;
    tt_rng rng = {99};
    const int types[] = {PONDER_TYPE_Q8_0, PONDER_TYPE_Q5_0, PONDER_TYPE_F16, PONDER_TYPE_Q4_K};
    const int64_t n_cols = 512, n_rows = 70, nt = 37;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    float *x = malloc((size_t)(nt * n_cols) * sizeof *x), *f = malloc((size_t)n_cols * sizeof *f);
    assert_true(x && f);
    tt_fill_gauss(&rng, x, nt * n_cols, 1.0);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const int t = types[k];
        const size_t rb = tt_row_bytes(t, n_cols);
        uint8_t *wq = malloc(rb * (size_t)n_rows);
        float *y1 = malloc((size_t)(nt * n_rows) * sizeof *y1), *y2 = malloc((size_t)(nt * n_rows) * sizeof *y2);
        float *ref = malloc((size_t)(nt * n_rows) * sizeof *ref);
        assert_true(wq && y1 && y2 && ref);
        for (int64_t r = 0; r < n_rows; r++) {
            tt_fill_gauss(&rng, f, n_cols, 0.05);
            ponder_quantize_row(t, f, wq + (size_t)r * rb, n_cols, NULL);
        }
        const ponder_matrix w = {.type = (ponder_type)t, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = rb, .data = wq};
        void *work = malloc(ponder_matmul_work_bytes(&w, nt));
        assert_non_null(work);
        ponder_matmul(&w, nt, x, y1, work, false, NULL);
        ponder_matmul(&w, nt, x, y2, work, false, pool);
        assert_memory_equal(y1, y2, (size_t)(nt * n_rows) * sizeof *y1);
        reference_product(&w, nt, x, ref);
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
        void *aq = malloc(tt_row_bytes(tr->vec_dot_type, n_cols));
        float *xa = malloc((size_t)n_cols * sizeof *xa);
        assert_true(aq && xa);
        for (int64_t i = 0; i < nt; i++) {
            vt->from_float(x + i * n_cols, aq, n_cols);
            vt->to_float(aq, xa, n_cols);
            for (int64_t r = 0; r < n_rows; r++)
                if (!(fabs((double)y1[i * n_rows + r] - ref[i * n_rows + r]) <= 2e-6 * abs_terms(&w, r, xa) + 1e-35))
                    fail_msg("%s y[%lld][%lld] = %.9g, reference %.9g", tr->name, (long long)i, (long long)r,
                             y1[i * n_rows + r], ref[i * n_rows + r]);
        }
        free(aq);
        free(xa);
        free(work);
        free(wq);
        free(y1);
        free(y2);
        free(ref);
    }
    free(x);
    free(f);
    ponder_pool_free(pool);
}

/* Q4_0, Q5_0 and IQ4_NL weights hold int8 levels times an f16 d, so the same levels
 * written as Q8_0 blocks must give bit-identical products. With a prompt-sized batch the
 * matmul rewrites such rows to Q8_0 once per chunk (to_q8_0_row) when they fit its stack
 * buffer, and runs the type's own tile kernel when they do not (8192 columns): both
 * paths, with and without a pool, must equal the Q8_0 product of levels recovered
 * independently from the dequantized weights. */
static void test_matmul_rewritten_rows_equal_q8_0(void **state)
{
    (void)state;
    const int types[] = {PONDER_TYPE_Q4_0, PONDER_TYPE_Q5_0, PONDER_TYPE_IQ4_NL};
    const int64_t cols[] = {512, 1536, 8192};
    const int64_t n_rows = 70, nt = 37;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    int n_rewritten = 0;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const int t = types[k];
        if (!ponder_kernels()->type[t].to_q8_0_row)
            continue; /* the scalar dots of the two types need not add in the same order */
        n_rewritten++;
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            const int64_t n_cols = cols[c], nb = n_cols / 32;
            tt_rng rng = {(uint64_t)(1000 + 10 * t + (int)c)};
            const size_t rb = tt_row_bytes(t, n_cols), rb8 = tt_row_bytes(PONDER_TYPE_Q8_0, n_cols);
            const size_t bb = ponder_type_get_traits(t)->block_bytes;
            uint8_t *wq = malloc(rb * (size_t)n_rows), *w8 = malloc(rb8 * (size_t)n_rows);
            float *f = malloc((size_t)n_cols * sizeof *f), *x = malloc((size_t)(nt * n_cols) * sizeof *x);
            float *ya = malloc((size_t)(nt * n_rows) * sizeof *ya), *yb = malloc((size_t)(nt * n_rows) * sizeof *yb);
            float *y8 = malloc((size_t)(nt * n_rows) * sizeof *y8);
            assert_true(wq && w8 && f && x && ya && yb && y8);
            tt_fill_gauss(&rng, x, nt * n_cols, 1.0);
            for (int64_t r = 0; r < n_rows; r++) {
                uint8_t *row = wq + (size_t)r * rb;
                tt_fill_gauss(&rng, f, n_cols, 0.05);
                assert_int_equal(ponder_quantize_row(t, f, row, n_cols, NULL), PONDER_OK);
                assert_int_equal(ponder_dequantize_row(t, row, f, n_cols, NULL), PONDER_OK);
                ponder_block_q8_0 *b8 = (ponder_block_q8_0 *)(w8 + (size_t)r * rb8);
                for (int64_t ib = 0; ib < nb; ib++) {
                    ponder_f16 d;
                    memcpy(&d, row + (size_t)ib * bb, sizeof d); /* every one of these types starts with d */
                    const float df = ponder_f16_to_f32(d);
                    assert_true(df != 0.0f);
                    b8[ib].d = d;
                    for (int e = 0; e < 32; e++)
                        b8[ib].qs[e] = (int8_t)lrintf(f[ib * 32 + e] / df);
                }
            }
            const ponder_matrix w = {.type = (ponder_type)t, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = rb, .data = wq};
            const ponder_matrix m8 = {.type = PONDER_TYPE_Q8_0, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = rb8,
                                      .data = w8};
            void *work = malloc(ponder_matmul_work_bytes(&m8, nt));
            assert_non_null(work);
            ponder_matmul(&m8, nt, x, y8, work, false, NULL);
            ponder_matmul(&w, nt, x, ya, work, false, NULL);
            ponder_matmul(&w, nt, x, yb, work, false, pool);
            for (int64_t i = 0; i < nt * n_rows; i++)
                if (memcmp(&ya[i], &y8[i], sizeof *ya) != 0 || memcmp(&yb[i], &y8[i], sizeof *yb) != 0)
                    fail_msg("%s %lld cols: y[%lld] = %.9g / %.9g (pool), Q8_0 %.9g", ponder_type_name(t),
                             (long long)n_cols, (long long)i, ya[i], yb[i], y8[i]);
            free(work);
            free(wq);
            free(w8);
            free(f);
            free(x);
            free(ya);
            free(yb);
            free(y8);
        }
    }
    if (strcmp(ponder_cpu_isa(), "scalar") != 0)
        assert_int_equal(n_rewritten, 3);
    ponder_pool_free(pool);
}

static void test_multi_work_bytes(void **state)
{
    (void)state;
    ponder_matrix q8 = {.type = PONDER_TYPE_Q8_0, .n_cols = 512, .n_rows = 4, .row_bytes = 16 * 34};
    ponder_matrix q4k = {.type = PONDER_TYPE_Q4_K, .n_cols = 512, .n_rows = 4, .row_bytes = 2 * 144};
    ponder_matrix q5 = {.type = PONDER_TYPE_Q5_0, .n_cols = 512, .n_rows = 4, .row_bytes = 16 * 22};
    ponder_matrix f32 = {.type = PONDER_TYPE_F32, .n_cols = 512, .n_rows = 4, .row_bytes = 2048};
    ponder_matrix bad = {.type = PONDER_TYPE_IQ2_XXS, .n_cols = 512, .n_rows = 4, .row_bytes = 2 * 66};
    ponder_matmul_job jobs[3] = {{&q8, NULL}, {&q4k, NULL}, {&q5, NULL}};
    /* Q8_0 rows (5 x 544 = 2720, rounded up to 2752 for the next region) + Q8_K (5 x 584);
     * Q5_0 shares the Q8_0 activations */
    assert_int_equal(ponder_matmul_multi_work_bytes(jobs, 3, 5, 2), 2752 + 5 * 584);
    assert_int_equal(ponder_matmul_multi_work_bytes(jobs, 1, 5, 1), 5 * 544);
    assert_true(ponder_matmul_multi_work_bytes(jobs, 1, 5, 1) <= ponder_matmul_work_bytes(&q8, 5));
    jobs[0].w = &f32; /* F32 activations are x itself */
    assert_int_equal(ponder_matmul_multi_work_bytes(jobs, 1, 5, 1), 0);
    jobs[1].w = &bad;
    assert_int_equal(ponder_matmul_multi_work_bytes(jobs, 2, 5, 1), 0);
    jobs[0].w = &q8;
    q8.n_cols = 1 << 20;
    assert_int_equal(ponder_matmul_multi_work_bytes(jobs, 1, INT64_MAX / 2, 1), SIZE_MAX);
    /* nothing to do: no writes, no crash */
    float y = 7.0f;
    ponder_matmul_job one = {&q4k, &y};
    ponder_matmul_multi(&one, 1, 0, NULL, NULL, false, NULL);
    ponder_matmul_multi(&one, 0, 3, NULL, NULL, false, NULL);
    assert_true(y == 7.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_work_bytes),
        cmocka_unit_test(test_matmul_f32_exact),
        cmocka_unit_test(test_matmul_all_types),
        cmocka_unit_test(test_multi_work_bytes),
        cmocka_unit_test(test_matmul_multi_threads_and_reference),
        cmocka_unit_test(test_matmul_tiles_large_batch),
        cmocka_unit_test(test_matmul_rewritten_rows_equal_q8_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
