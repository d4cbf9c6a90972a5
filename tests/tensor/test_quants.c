/* test_quants.c — every computable row of the traits table: quantize -> dequantize error
 * on random data, and vec_dot against a double-precision dot of the dequantized operands.
 * A type added to the table is picked up here; it then needs an entry in BOUNDS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor/quants.h"
#include "tensor_test.h"

#include <stdio.h>
#include <string.h>

/* Largest relative RMS error of quantize -> dequantize on Gaussian data, per type. Set a
 * little above what the reference quantizers reach (printed by this test), in line with
 * what ggml's own quantizers reach on the synthetic models (models/synthetic/README.md). */
static const struct {
    const char *name;
    double max_rel_rms;
} BOUNDS[] = {
    /* measured here: F16 0.00021, BF16 0.0016, Q8_0 0.0051, Q8_1 0.0054, Q8_K 0.0070,
     * Q6_K 0.0176, Q5_0 0.042, Q5_1 0.036, Q5_K 0.036, Q4_0 0.089, Q4_1 0.079, Q4_K 0.072,
     * IQ4_NL 0.078, Q3_K 0.150, Q2_K 0.296 */
    {"F32", 0.0},     {"F16", 0.0003},  {"BF16", 0.002},  {"Q8_0", 0.0055}, {"Q8_1", 0.0058},
    {"Q8_K", 0.0075}, {"Q6_K", 0.019},  {"Q5_0", 0.045},  {"Q5_1", 0.04},   {"Q5_K", 0.04},
    {"Q4_0", 0.095},  {"Q4_1", 0.085},  {"Q4_K", 0.078},  {"IQ4_NL", 0.083}, {"Q3_K", 0.16},
    {"Q2_K", 0.32},
};

static double bound_for(const char *name)
{
    for (size_t i = 0; i < sizeof BOUNDS / sizeof BOUNDS[0]; i++)
        if (strcmp(BOUNDS[i].name, name) == 0)
            return BOUNDS[i].max_rel_rms;
    fail_msg("type %s has kernels but no error bound in test_quants.c", name);
    return 0;
}

/* Block-aligned test lengths: several blocks, including odd counts. */
static int64_t test_len(int64_t block, int k)
{
    static const int64_t mult[] = {1, 3, 8, 17};
    return block == 1 ? 32 * mult[k] + 1 : block * mult[k];
}

static void test_round_trip_error(void **state)
{
    (void)state;
    const double sigmas[] = {0.02, 1.0, 300.0};
    int n_types = 0;
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        if (!tr || !tr->to_float || !tr->from_float)
            continue;
        n_types++;
        const double bound = bound_for(tr->name);
        tt_rng rng = {1000u + (uint64_t)t};
        double num = 0.0, den = 0.0;
        for (size_t si = 0; si < sizeof sigmas / sizeof sigmas[0]; si++) {
            for (int k = 0; k < 4; k++) {
                const int64_t n = test_len(tr->block_elems, k);
                float *x = malloc((size_t)n * sizeof *x);
                float *back = malloc((size_t)n * sizeof *back);
                void *q = malloc(tt_row_bytes(t, n));
                assert_non_null(x);
                assert_non_null(back);
                assert_non_null(q);
                tt_fill_gauss(&rng, x, n, sigmas[si]);
                assert_int_equal(ponder_quantize_row(t, x, q, n, NULL), PONDER_OK);
                assert_int_equal(ponder_dequantize_row(t, q, back, n, NULL), PONDER_OK);
                const double e = tt_rel_rms(back, x, n);
                /* one short row is a small sample: allow it 1.5x the aggregate bound */
                if (e > 1.5 * bound + 1e-12)
                    fail_msg("%s: n=%lld sigma=%g rel rms %.5f > %.5f", tr->name, (long long)n,
                             sigmas[si], e, 1.5 * bound);
                for (int64_t i = 0; i < n; i++) {
                    const double d = (double)back[i] - x[i];
                    num += d * d;
                    den += (double)x[i] * x[i];
                }
                free(x);
                free(back);
                free(q);
            }
        }
        const double e = sqrt(num / den);
        print_message("  %-7s rel rms %.5f (bound %.4f)\n", tr->name, e, bound);
        if (e > bound)
            fail_msg("%s: aggregate rel rms %.5f > bound %.5f", tr->name, e, bound);
    }
    assert_true(n_types >= 16); /* F32 F16 BF16, 7 32-blocks, 6 K-quants */
}

/* All-zero input must come back as exact zeros (no NaN from a 0/0 scale). */
static void test_zero_rows(void **state)
{
    (void)state;
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        if (!tr || !tr->to_float || !tr->from_float)
            continue;
        const int64_t n = tr->block_elems == 1 ? 64 : 2 * tr->block_elems;
        float *x = calloc((size_t)n, sizeof *x);
        float *back = malloc((size_t)n * sizeof *back);
        void *q = malloc(tt_row_bytes(t, n));
        assert_non_null(x);
        assert_non_null(back);
        assert_non_null(q);
        tr->from_float(x, q, n);
        tr->to_float(q, back, n);
        for (int64_t i = 0; i < n; i++)
            if (back[i] != 0.0f)
                fail_msg("%s: zero row dequantized to %g at %lld", tr->name, (double)back[i], (long long)i);
        free(x);
        free(back);
        free(q);
    }
}

static void test_vec_dot(void **state)
{
    (void)state;
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        if (!tr || !tr->vec_dot)
            continue;
        const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
        assert_non_null(vt);
        assert_non_null(vt->from_float);
        assert_non_null(vt->to_float);
        assert_non_null(tr->from_float);
        const int64_t block = tr->block_elems > vt->block_elems ? tr->block_elems : vt->block_elems;
        tt_rng rng = {77u + (uint64_t)t};
        static const int mult[] = {1, 3, 7, 13};
        for (int k = 0; k < 4; k++) {
            const int64_t n = block == 1 ? 100 * mult[k] + 1 : block * mult[k];
            float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
            float *wdeq = malloc((size_t)n * sizeof *wdeq), *adeq = malloc((size_t)n * sizeof *adeq);
            void *wq = malloc(tt_row_bytes(t, n)), *aq = malloc(tt_row_bytes(tr->vec_dot_type, n));
            assert_true(x && y && wdeq && adeq && wq && aq);
            tt_fill_gauss(&rng, x, n, 0.05);
            tt_fill_gauss(&rng, y, n, 2.0);
            tr->from_float(x, wq, n);
            tr->to_float(wq, wdeq, n);
            vt->from_float(y, aq, n);
            vt->to_float(aq, adeq, n);

            float got;
            tr->vec_dot(n, &got, wq, aq);
            const double ref = tt_dot(wdeq, adeq, n);
            const int64_t n_blocks = block == 1 ? 1 : n / block; /* float types sum in double */
            const double tol = 4e-7 * (double)(n_blocks + 4) * tt_dot_abs(wdeq, adeq, n) +
                               tt_q8_1_slack(t, wq, adeq, n);
            if (fabs(got - ref) > tol)
                fail_msg("%s x %s n=%lld: vec_dot %.9g, dequantized dot %.9g (|diff| %.3g > %.3g)",
                         tr->name, vt->name, (long long)n, (double)got, ref, fabs(got - ref), tol);

            /* and it approximates the exact dot of the unquantized rows */
            const double exact = tt_dot(x, y, n);
            const double norms = sqrt(tt_dot(x, x, n) * tt_dot(y, y, n));
            const double loose = 2.0 * (bound_for(tr->name) + bound_for(vt->name)) * norms + 1e-7 * norms;
            if (fabs(got - exact) > loose)
                fail_msg("%s n=%lld: vec_dot %.6g vs exact %.6g beyond %.3g", tr->name, (long long)n,
                         (double)got, exact, loose);
            free(x);
            free(y);
            free(wdeq);
            free(adeq);
            free(wq);
            free(aq);
        }
    }
}

/* ponder_quantize_row / ponder_dequantize_row reject what they cannot do. */
static void test_row_errors(void **state)
{
    (void)state;
    float x[64] = {0};
    uint8_t q[256] = {0};
    ponder_error err;
    assert_int_equal(ponder_dequantize_row(4, q, x, 32, &err), PONDER_ERR_UNSUPPORTED); /* hole */
    assert_int_equal(err.code, PONDER_ERR_UNSUPPORTED);
    assert_int_equal(ponder_dequantize_row(PONDER_TYPE_COUNT, q, x, 32, &err), PONDER_ERR_UNSUPPORTED);
    assert_int_equal(ponder_dequantize_row(-1, q, x, 32, &err), PONDER_ERR_UNSUPPORTED);
    assert_int_equal(ponder_dequantize_row(PONDER_TYPE_IQ2_XXS, q, x, 256, &err), PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "IQ2_XXS"));
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_IQ4_XS, x, q, 256, &err), PONDER_ERR_UNSUPPORTED);
    assert_int_equal(ponder_dequantize_row(PONDER_TYPE_Q4_0, q, x, 48, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "48"));
    assert_non_null(strstr(err.msg, "Q4_0"));
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q4_K, x, q, 64, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_0, x, q, -32, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_0, NULL, q, 32, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_dequantize_row(PONDER_TYPE_Q8_0, q, NULL, 32, NULL), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_dequantize_row(PONDER_TYPE_Q8_0, NULL, NULL, 0, &err), PONDER_OK);
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_0, x, q, 64, &err), PONDER_OK);

    assert_true(ponder_type_is_supported(PONDER_TYPE_Q4_K));
    assert_true(ponder_type_is_supported(PONDER_TYPE_IQ4_NL));
    assert_true(ponder_type_is_supported(PONDER_TYPE_BF16));
    assert_false(ponder_type_is_supported(PONDER_TYPE_Q8_K)); /* activation-only */
    assert_false(ponder_type_is_supported(PONDER_TYPE_Q8_1));
    assert_false(ponder_type_is_supported(PONDER_TYPE_IQ2_XXS));
}

/* The block structs have the sizes the traits table (and GGUF) expect. */
static void test_block_sizes_match_traits(void **state)
{
    (void)state;
    const struct {
        int t;
        size_t size;
        int64_t elems;
    } b[] = {
        {PONDER_TYPE_Q4_0, sizeof(ponder_block_q4_0), PONDER_QK},
        {PONDER_TYPE_Q4_1, sizeof(ponder_block_q4_1), PONDER_QK},
        {PONDER_TYPE_Q5_0, sizeof(ponder_block_q5_0), PONDER_QK},
        {PONDER_TYPE_Q5_1, sizeof(ponder_block_q5_1), PONDER_QK},
        {PONDER_TYPE_Q8_0, sizeof(ponder_block_q8_0), PONDER_QK},
        {PONDER_TYPE_Q8_1, sizeof(ponder_block_q8_1), PONDER_QK},
        {PONDER_TYPE_IQ4_NL, sizeof(ponder_block_iq4_nl), PONDER_QK},
        {PONDER_TYPE_Q2_K, sizeof(ponder_block_q2_K), PONDER_QK_K},
        {PONDER_TYPE_Q3_K, sizeof(ponder_block_q3_K), PONDER_QK_K},
        {PONDER_TYPE_Q4_K, sizeof(ponder_block_q4_K), PONDER_QK_K},
        {PONDER_TYPE_Q5_K, sizeof(ponder_block_q5_K), PONDER_QK_K},
        {PONDER_TYPE_Q6_K, sizeof(ponder_block_q6_K), PONDER_QK_K},
        {PONDER_TYPE_Q8_K, sizeof(ponder_block_q8_K), PONDER_QK_K},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        const ponder_type_traits *tr = ponder_type_get_traits(b[i].t);
        assert_non_null(tr);
        assert_int_equal(tr->block_bytes, b[i].size);
        assert_int_equal(tr->block_elems, b[i].elems);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_sizes_match_traits),
        cmocka_unit_test(test_round_trip_error),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_row_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
