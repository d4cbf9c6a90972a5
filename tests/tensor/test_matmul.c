/* test_matmul.c — ponder_matmul for every supported weight type against a naive double
 * reference built from the dequantized weights (and, in the default mode, the activations
 * rounded through the weight type's vec_dot_type, as llama.cpp does). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor_test.h"

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
    ponder_matmul(&w, n_tokens, x, y, work, false);
    ponder_matmul(&w, n_tokens, x, yf, work, true);

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
    ponder_matmul(&w, 2, x, y, work, false);
    assert_true(y[0] == 6.0f);     /* token 0, row 0 */
    assert_true(y[1] == -0.25f);   /* token 0, row 1 */
    assert_true(y[2] == 18.0f);    /* token 1, row 0: 2 - 8 + 24 */
    assert_true(y[3] == -2.0f);    /* token 1, row 1: -2 - 2 + 2 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_work_bytes),
        cmocka_unit_test(test_matmul_f32_exact),
        cmocka_unit_test(test_matmul_all_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
