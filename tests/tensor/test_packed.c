/* test_packed.c — weights repacked for a path's tile kernel (ponder_matrix_pack) against
 * the scalar oracle.
 *
 * For every kernel path this CPU runs that has an interleaved layout for a type ("avx512",
 * and "avx2" / "avxvnni" on the same 16-row groups), a matrix with whole groups and a tail of
 * file-layout rows is packed and multiplied through ponder_matmul with 1 to 11 tokens and
 * a prompt-sized batch; every output must match the scalar vec_dot of the file row within
 * 2e-6 of the sum of |terms| (the kernel fuses the scale multiply-add, the oracle rounds
 * the product first; for Q4_K the terms include the mins' corrections), and the packed matrix must give the same bits as in any batch. A
 * CPU without such a path prints a SKIP line (cmocka's [ SKIPPED ]) instead. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor/kernels.h"
#include "tensor/quants.h"
#include "tensor_test.h"

#include <stdio.h>
#include <string.h>

static const char *const PATHS[] = {"scalar", "avx2", "avx512vnni", "avxvnni", "avx512"};
enum { N_PATHS = sizeof PATHS / sizeof PATHS[0] };

/* Weights with blocks of different magnitudes, an all-zero block and extremes. */
static void fill_rows(tt_rng *r, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += PONDER_QK) {
        const uint64_t kind = tt_next(r) % 5;
        const float s = ldexpf(1.0f, (int)(tt_next(r) % 10) - 7);
        for (int64_t k = 0; k < PONDER_QK && i + k < n; k++)
            x[i + k] = kind == 0 ? 0.0f : (float)tt_gauss(r) * s;
        if (kind == 1)
            x[i + (int64_t)(tt_next(r) % (uint64_t)(n - i < PONDER_QK ? n - i : PONDER_QK))] = -30.0f * s;
    }
}

/* Q4_K subtracts dmin * min * (sum of x) per sub-block from d * scale * (sum of q x):
 * sum of |those min terms|, which the kernel and the oracle round differently (the terms
 * can be large while a weight d*sc*q - dmin*m is small). */
static double k4_min_terms_abs(int t, const uint8_t *row, const float *xd, int64_t n)
{
    if (t != PONDER_TYPE_Q4_K)
        return 0.0;
    double s = 0.0;
    for (int64_t i = 0; i < n / PONDER_QK_K; i++) {
        const ponder_block_q4_K *b = (const ponder_block_q4_K *)row + i;
        for (int j = 0; j < 8; j++) {
            const int m = j < 4 ? b->scales[j + 4] & 63 : (b->scales[j + 4] >> 4) | ((b->scales[j] >> 6) << 4);
            double sx = 0.0;
            for (int k = 0; k < 32; k++)
                sx += fabs(xd[i * PONDER_QK_K + 32 * j + k]);
            s += fabs(ponder_f16_to_f32(b->dmin)) * m * sx;
        }
    }
    return s;
}

static int check_type(const char *path, int t, int64_t n, int64_t n_rows)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    enum { MAX_TOK = 64 };
    tt_rng rng = {0xfacade00u + (uint64_t)(t * 1000 + n)};
    const size_t rb = tt_row_bytes(t, n), ab = tt_row_bytes(tr->vec_dot_type, n);
    uint8_t *wq = malloc(rb * (size_t)n_rows), *xq = malloc(ab * MAX_TOK);
    float *f = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n * MAX_TOK);
    float *wd = malloc(sizeof(float) * (size_t)n), *xd = malloc(sizeof(float) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)(n_rows * MAX_TOK)), *y1 = malloc(sizeof(float) * (size_t)n_rows);
    assert_true(wq && xq && f && x && wd && xd && y && y1);
    for (int64_t r = 0; r < n_rows; r++) {
        fill_rows(&rng, f, n);
        tr->from_float(f, wq + (size_t)r * rb, n);
    }
    for (int i = 0; i < MAX_TOK; i++) {
        fill_rows(&rng, x + (size_t)i * (size_t)n, n);
        vt->from_float(x + (size_t)i * (size_t)n, xq + (size_t)i * ab, n);
    }
    ponder_matrix w = {.type = (ponder_type)t, .n_cols = n, .n_rows = n_rows, .row_bytes = rb, .data = wq};
    assert_int_equal(ponder_matrix_pack(&w, false, NULL), PONDER_OK);
    assert_non_null(w.packed);
    assert_int_equal(w.packed_rows, n_rows / PONDER_PACK_ROWS * PONDER_PACK_ROWS);
    const ponder_matmul_job job = {.w = &w, .y = y};
    void *work = malloc(ponder_matmul_multi_work_bytes(&job, 1, MAX_TOK, 1) + 1);
    assert_true(work && ponder_matmul_work_bytes(&w, MAX_TOK) >= ponder_matmul_multi_work_bytes(&job, 1, MAX_TOK, 1));
    static const int64_t batches[] = {1, 2, 3, 5, 7, 8, 9, 11, MAX_TOK};
    int n_checked = 0;
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        const int64_t nt = batches[bi];
        ponder_matmul(&w, nt, x, y, work, false, NULL);
        for (int64_t i = 0; i < nt; i++) {
            vt->to_float(xq + (size_t)i * ab, xd, n);
            /* the same token alone: the same bits */
            ponder_matmul(&w, 1, x + (size_t)i * (size_t)n, y1, work, false, NULL);
            for (int64_t r = 0; r < n_rows; r++) {
                const float got = y[i * n_rows + r];
                if (memcmp(&got, &y1[r], sizeof got) != 0)
                    fail_msg("%s packed on %s, n=%lld: token %lld row %lld is %.9g in a batch of %lld, %.9g alone",
                             tr->name, path, (long long)n, (long long)i, (long long)r, got, (long long)nt, y1[r]);
                float ref;
                tr->vec_dot(n, &ref, wq + (size_t)r * rb, xq + (size_t)i * ab);
                tr->to_float(wq + (size_t)r * rb, wd, n);
                const double tol =
                    2e-6 * (tt_dot_abs(wd, xd, n) + k4_min_terms_abs(t, wq + (size_t)r * rb, xd, n)) + 1e-35;
                if (!(fabs((double)got - (double)ref) <= tol))
                    fail_msg("%s packed on %s, n=%lld, %lld tokens: token %lld row %lld: oracle %.9g got %.9g (tol %.3g)",
                             tr->name, path, (long long)n, (long long)nt, (long long)i, (long long)r, ref, got, tol);
                n_checked++;
            }
        }
    }
    ponder_matrix_unpack(&w);
    assert_null(w.packed);
    assert_int_equal(w.packed_rows, 0);
    free(work);
    free(wq);
    free(xq);
    free(f);
    free(x);
    free(wd);
    free(xd);
    free(y);
    free(y1);
    return n_checked;
}

static void test_packed_vs_oracle(void **state)
{
    (void)state;
    int n_types = 0;
    for (int p = 0; p < N_PATHS; p++) {
        if (!ponder_tensor_isa_available(PATHS[p]))
            continue;
        assert_int_equal(ponder_tensor_force_isa(PATHS[p], NULL), PONDER_OK);
        const ponder_isa_kernels *k = ponder_kernels();
        for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
            if (k->type[t].pack_layout == PONDER_PACK_NONE)
                continue;
            assert_non_null(k->type[t].packed_gemm);
            /* one block, an odd count of blocks, the SmolLM2 widths (K-quants: 1536, 2304);
             * 16 rows, or 37 (two groups and a tail of file rows) */
            const int64_t be = ponder_type_get_traits(t)->block_elems;
            int64_t cols[] = {be, 9 * be, be == 32 ? 576 : 6 * be, be == 32 ? 1536 : 9 * be};
            if (be == 1) { /* float rows: odd lengths, and longer than the kernel's segment */
                cols[0] = 37, cols[1] = 300, cols[2] = 1001, cols[3] = 4103;
            }
            int checked = 0;
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
                checked += check_type(PATHS[p], t, cols[c], c % 2 ? 37 : 16);
            print_message("path %s: %s packed (layout %d): %d outputs checked\n", PATHS[p], ponder_type_name(t),
                          k->type[t].pack_layout, checked);
            n_types++;
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    if (n_types == 0) {
        print_message("SKIP: no kernel path with packed weights on this CPU (avx2 needs AVX2/FMA/F16C, avx512 "
                      "AVX-512 F/BW/VL/VNNI)\n");
        skip();
    }
}

/* A path without a layout for the type leaves the matrix as it is; a packed matrix used
 * on such a path reads its file rows (same results as never packed). */
static void test_pack_other_paths(void **state)
{
    (void)state;
    if (!ponder_tensor_isa_available("avx512")) {
        print_message("SKIP: the avx512 path is not available on this CPU\n");
        skip();
    }
    enum { N = 576, ROWS = 48 };
    tt_rng rng = {77};
    const size_t rb = tt_row_bytes(PONDER_TYPE_Q8_0, N);
    uint8_t *wq = malloc(rb * ROWS);
    float f[N], x[N], ya[ROWS], yb[ROWS];
    assert_non_null(wq);
    for (int r = 0; r < ROWS; r++) {
        fill_rows(&rng, f, N);
        assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_0, f, wq + (size_t)r * rb, N, NULL), PONDER_OK);
    }
    fill_rows(&rng, x, N);
    ponder_matrix w = {.type = PONDER_TYPE_Q8_0, .n_cols = N, .n_rows = ROWS, .row_bytes = rb, .data = wq};
    void *work = malloc(ponder_matmul_work_bytes(&w, 1) + 4096);
    assert_non_null(work);
    assert_int_equal(ponder_tensor_force_isa("scalar", NULL), PONDER_OK);
    assert_int_equal(ponder_matrix_pack(&w, false, NULL), PONDER_OK);
    assert_null(w.packed);
    ponder_matmul(&w, 1, x, ya, work, false, NULL);
    assert_int_equal(ponder_tensor_force_isa("avx512", NULL), PONDER_OK);
    assert_int_equal(ponder_matrix_pack(&w, false, NULL), PONDER_OK);
    assert_non_null(w.packed);
    assert_int_equal(ponder_tensor_force_isa("scalar", NULL), PONDER_OK);
    ponder_matmul(&w, 1, x, yb, work, false, NULL);
    assert_memory_equal(ya, yb, sizeof ya);
    ponder_matrix_unpack(&w);
    ponder_tensor_force_isa(NULL, NULL);
    free(work);
    free(wq);
}

/* The packed kernels of every path compute the same exact integer sums and the same float
 * steps in the same order (x86_avx2_packed.inc follows x86_avx512.c), so a matrix packed
 * once gives the same bits on avx2, avxvnni and avx512, for one token and a prompt. */
static void test_packed_paths_agree(void **state)
{
    (void)state;
    static const char *const packed_paths[] = {"avx2", "avxvnni", "avx512"};
    enum { N_TOK = 13, ROWS = 48 };
    int n_avail = 0, checked = 0;
    for (size_t p = 0; p < sizeof packed_paths / sizeof packed_paths[0]; p++)
        n_avail += ponder_tensor_isa_available(packed_paths[p]);
    if (!ponder_tensor_isa_available("avx2") || n_avail < 2) {
        print_message("SKIP: fewer than two paths with packed weights on this CPU (avx2, avxvnni, avx512)\n");
        skip();
    }
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        assert_int_equal(ponder_tensor_force_isa("avx2", NULL), PONDER_OK);
        const int layout = ponder_kernels()->type[t].pack_layout;
        if (layout == PONDER_PACK_NONE)
            continue;
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        const int64_t n = tr->block_elems == 1 ? 1001 : (tr->block_elems == 32 ? 576 : 1536);
        tt_rng rng = {0xabcdefu + (uint64_t)t};
        const size_t rb = tt_row_bytes(t, n);
        uint8_t *wq = malloc(rb * ROWS);
        float *f = malloc(sizeof(float) * (size_t)n * N_TOK), *ya = malloc(sizeof(float) * ROWS * N_TOK),
              *yb = malloc(sizeof(float) * ROWS * N_TOK);
        assert_true(wq && f && ya && yb);
        for (int r = 0; r < ROWS; r++) {
            fill_rows(&rng, f, n);
            tr->from_float(f, wq + (size_t)r * rb, n);
        }
        for (int i = 0; i < N_TOK; i++)
            fill_rows(&rng, f + (size_t)i * (size_t)n, n);
        ponder_matrix w = {.type = (ponder_type)t, .n_cols = n, .n_rows = ROWS, .row_bytes = rb, .data = wq};
        assert_int_equal(ponder_matrix_pack(&w, false, NULL), PONDER_OK);
        assert_non_null(w.packed);
        const ponder_matmul_job job = {.w = &w, .y = ya};
        void *work = malloc(ponder_matmul_multi_work_bytes(&job, 1, N_TOK, 1) + 1);
        assert_non_null(work);
        for (int nt = 1; nt <= N_TOK; nt += N_TOK - 1) {
            ponder_matmul(&w, nt, f, ya, work, false, NULL);
            for (size_t p = 1; p < sizeof packed_paths / sizeof packed_paths[0]; p++) {
                if (!ponder_tensor_isa_available(packed_paths[p]))
                    continue;
                assert_int_equal(ponder_tensor_force_isa(packed_paths[p], NULL), PONDER_OK);
                assert_int_equal(ponder_kernels()->type[t].pack_layout, layout);
                ponder_matmul(&w, nt, f, yb, work, false, NULL);
                for (int64_t i = 0; i < (int64_t)nt * ROWS; i++)
                    if (memcmp(&ya[i], &yb[i], sizeof ya[i]) != 0)
                        fail_msg("%s packed, %d tokens: output %lld is %.9g on avx2, %.9g on %s", tr->name, nt,
                                 (long long)i, ya[i], yb[i], packed_paths[p]);
                checked++;
                assert_int_equal(ponder_tensor_force_isa("avx2", NULL), PONDER_OK);
            }
        }
        ponder_matrix_unpack(&w);
        free(work);
        free(wq);
        free(f);
        free(ya);
        free(yb);
    }
    ponder_tensor_force_isa(NULL, NULL);
    print_message("packed products compared across paths: %d\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_vs_oracle),
        cmocka_unit_test(test_pack_other_paths),
        cmocka_unit_test(test_packed_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
