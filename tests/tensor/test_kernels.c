/* test_kernels.c — every kernel path this CPU runs against the scalar oracle.
 *
 * For each path (forced with ponder_tensor_force_isa): activation quantizers and f16/bf16
 * row conversions must give the oracle's bytes on millions of values, ties, NaN, inf,
 * subnormals and sign-of-the-extreme cases included; dots must agree with the reference
 * dot up to float summation order, on awkward lengths and extreme data, and tile kernels
 * with the path's own dot bit for bit. Paths the CPU lacks are skipped (and reported) rather than failed. */
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

static const char *const PATHS[] = {"scalar", "avx2", "avx512vnni", "avxvnni", "avx512"};
enum { N_PATHS = sizeof PATHS / sizeof PATHS[0] };

static float bits_to_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Forces path p; false (and a note) if this CPU cannot run it. */
static bool use_path(int p)
{
    if (!ponder_tensor_isa_available(PATHS[p])) {
        ponder_error err = {0};
        assert_int_not_equal(ponder_tensor_force_isa(PATHS[p], &err), PONDER_OK);
        assert_true(err.msg[0] != '\0');
        print_message("path %s: not available here (%s), skipped\n", PATHS[p], err.msg);
        return false;
    }
    assert_int_equal(ponder_tensor_force_isa(PATHS[p], NULL), PONDER_OK);
    assert_string_equal(ponder_cpu_isa(), PATHS[p]);
    return true;
}

static void test_force_isa(void **state)
{
    (void)state;
    ponder_error err = {0};
    assert_int_equal(ponder_tensor_force_isa("sse9", &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "sse9"));
    assert_true(ponder_tensor_isa_available("scalar"));
    assert_false(ponder_tensor_isa_available("sse9"));
    assert_false(ponder_tensor_isa_available(NULL));
    assert_int_equal(ponder_tensor_force_isa("scalar", NULL), PONDER_OK);
    assert_string_equal(ponder_cpu_isa(), "scalar");
    assert_int_equal(ponder_tensor_force_isa(NULL, NULL), PONDER_OK);
    const char *best = ponder_cpu_isa();
    assert_true(ponder_tensor_isa_available(best));
    /* the best path is the last available one in preference order */
    int last = 0;
    for (int p = 0; p < N_PATHS; p++)
        if (ponder_tensor_isa_available(PATHS[p]))
            last = p;
    assert_string_equal(best, PATHS[last]);
    assert_int_equal(ponder_tensor_force_isa("auto", NULL), PONDER_OK);
    assert_string_equal(ponder_cpu_isa(), best);
    const ponder_cpu_features f = ponder_cpu_detect();
#if defined(__x86_64__)
    assert_int_equal(ponder_tensor_isa_available("avx2"), f.avx2 && f.fma && f.f16c);
#else
    (void)f;
    assert_false(ponder_tensor_isa_available("avx2"));
#endif
    print_message("cpu: avx2 %d fma %d f16c %d avx512f %d bw %d vl %d vnni %d bf16 %d avx_vnni %d; best path %s\n",
                  f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni, f.avx512bf16,
                  f.avx_vnni, best);
}

/* ---- activation quantizers: identical bytes ---- */

/* Fills one block of `len` floats with one of several hard patterns. */
static void fill_block(tt_rng *r, float *x, int len, int pattern)
{
    const float scale = ldexpf(1.0f, (int)(tt_next(r) % 40) - 20);
    switch (pattern) {
    case 0: /* plain Gaussian at a random scale */
        for (int i = 0; i < len; i++)
            x[i] = (float)tt_gauss(r) * scale;
        break;
    case 1: /* Q8_0/Q8_1 ties: amax = 127*2^k makes d = 2^k exact, so (m + 0.5) 2^k is a tie */
        for (int i = 0; i < len; i++)
            x[i] = ((float)(int)(tt_next(r) % 254) - 126.5f) * scale;
        x[tt_next(r) % (uint64_t)len] = (tt_next(r) & 1 ? 127.0f : -127.0f) * scale;
        break;
    case 2: /* Q8_K ties: max = -127 makes iscale exactly 1 */
        for (int i = 0; i < len; i++)
            x[i] = (float)(int)(tt_next(r) % 254) - 126.5f;
        x[tt_next(r) % (uint64_t)len] = -127.0f;
        break;
    case 3: /* +a and -a both extreme: the first one decides the sign */
        for (int i = 0; i < len; i++)
            x[i] = (float)tt_gauss(r) * scale;
        x[tt_next(r) % (uint64_t)len] = 9.0f * scale;
        x[tt_next(r) % (uint64_t)len] = -9.0f * scale;
        break;
    case 4: /* random bit patterns: NaN payloads, inf, subnormals, huge */
        for (int i = 0; i < len; i++)
            x[i] = bits_to_f((uint32_t)tt_next(r));
        break;
    case 5: /* mostly zeros, signed zeros and subnormals */
        for (int i = 0; i < len; i++) {
            const uint64_t u = tt_next(r);
            x[i] = u % 3 == 0 ? -0.0f : u % 3 == 1 ? 0.0f : bits_to_f((uint32_t)(u >> 32) & 0x807fffffu);
        }
        break;
    case 6: /* one NaN or inf among ordinary values */
        for (int i = 0; i < len; i++)
            x[i] = (float)tt_gauss(r) * scale;
        x[tt_next(r) % (uint64_t)len] = tt_next(r) & 1 ? bits_to_f(0x7fc00000u | (uint32_t)(tt_next(r) & 0x3fffff))
                                                       : (tt_next(r) & 1 ? INFINITY : -INFINITY);
        break;
    default: /* all equal */
        for (int i = 0; i < len; i++)
            x[i] = scale;
        break;
    }
}
enum { N_PATTERNS = 8 };

static void check_from_float_exact(int t, int p)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    const ponder_from_float_fn fast = ponder_kernels()->type[t].from_float;
    assert_non_null(fast);
    const int64_t be = tr->block_elems == 1 ? 64 : tr->block_elems;
    const int64_t n_values = 1 << 21; /* ~2M values per type and path */
    const int64_t rows = 64;
    const int64_t n = n_values / rows / be * be + (tr->block_elems == 1 ? 13 : 0); /* floats: not a multiple of 8 */
    float *x = malloc((size_t)n * sizeof *x);
    const size_t nb = tt_row_bytes(t, n);
    uint8_t *a = malloc(nb), *b = malloc(nb);
    assert_true(x && a && b);
    tt_rng rng = {0x51ed + (uint64_t)t * 31 + (uint64_t)p};
    for (int64_t row = 0; row < rows; row++) {
        for (int64_t i = 0; i < n; i += be) {
            const int len = (int)(n - i < be ? n - i : be);
            fill_block(&rng, x + i, len, (int)((row + i / be) % N_PATTERNS));
        }
        memset(a, 0x55, nb);
        memset(b, 0xaa, nb);
        tr->from_float(x, a, n);
        fast(x, b, n);
        if (memcmp(a, b, nb) != 0) {
            size_t k = 0;
            while (a[k] == b[k])
                k++;
            fail_msg("%s from_float on path %s: byte %zu of row %lld differs (ref %02x, got %02x)", tr->name,
                     PATHS[p], k, (long long)row, a[k], b[k]);
        }
    }
    free(x);
    free(a);
    free(b);
}

static void test_activation_conversions_exact(void **state)
{
    (void)state;
    const int types[] = {PONDER_TYPE_Q8_0, PONDER_TYPE_Q8_1, PONDER_TYPE_Q8_K, PONDER_TYPE_F16, PONDER_TYPE_BF16};
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            check_from_float_exact(types[i], p);
    }
    ponder_tensor_force_isa(NULL, NULL);
}

/* f32 -> f16 on random bit patterns (every class) and f16 -> f32 on all 65536 values. */
static void test_f16_rows_exact(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x), *back_a = malloc(65536 * sizeof(float)), *back_b = malloc(65536 * sizeof(float));
    ponder_f16 *ha = malloc(N * sizeof *ha), *hb = malloc(N * sizeof *hb), *all = malloc(65536 * sizeof *all);
    assert_true(x && back_a && back_b && ha && hb && all);
    tt_rng rng = {77};
    for (int i = 0; i < N; i++) {
        const uint32_t u = (uint32_t)tt_next(&rng);
        /* half random bits, half near the f16 range where rounding and ties happen */
        x[i] = i % 2 ? bits_to_f(u) : bits_to_f((u & 0x81ffffffu) | 0x36000000u) * (i % 4 == 0 ? 1.0f : 1024.0f);
    }
    for (int h = 0; h < 65536; h++)
        all[h] = (ponder_f16)h;
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        const int64_t lens[] = {N, N - 1, 7, 1, 0};
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            memset(hb, 0, N * sizeof *hb);
            ponder_f32_to_f16_row_ref(x, ha, lens[l]);
            ponder_f32_to_f16_row(x, hb, lens[l]);
            for (int64_t i = 0; i < lens[l]; i++)
                if (ha[i] != hb[i])
                    fail_msg("path %s f32->f16 of %08x: ref %04x got %04x", PATHS[p], (unsigned)(uint32_t)ha[i],
                             ha[i], hb[i]);
        }
        ponder_f16_to_f32_row_ref(all, back_a, 65536);
        ponder_f16_to_f32_row(all, back_b, 65536);
        assert_memory_equal(back_a, back_b, 65536 * sizeof(float));
        ponder_f16_to_f32_row(all + 3, back_b, 65533 - 8 * 1000); /* unaligned start, odd length */
        assert_memory_equal(back_a + 3, back_b, (65533 - 8 * 1000) * sizeof(float));
    }
    ponder_tensor_force_isa(NULL, NULL);
    free(x);
    free(back_a);
    free(back_b);
    free(ha);
    free(hb);
    free(all);
}

/* ---- dots: equal up to float summation order ---- */

/* Weights from Gaussian data with per-block scales, outliers and all-zero blocks, so the
 * quantized levels reach their extremes. */
static void fill_weights(tt_rng *r, float *x, int64_t n, int64_t block)
{
    for (int64_t i = 0; i < n; i += block) {
        const int64_t len = n - i < block ? n - i : block;
        const uint64_t kind = tt_next(r) % 6;
        const float s = ldexpf(1.0f, (int)(tt_next(r) % 12) - 8);
        for (int64_t k = 0; k < len; k++)
            x[i + k] = kind == 0 ? 0.0f : (float)tt_gauss(r) * s;
        if (kind == 1)
            x[i + (int64_t)(tt_next(r) % (uint64_t)len)] = 40.0f * s;
        if (kind == 2)
            for (int64_t k = 0; k < len; k++)
                x[i + k] = (k & 1) ? 3.0f * s : -3.0f * s;
    }
}

/* Q4_1/Q5_1 dots add d*q and the min m separately: sum over blocks of |m| * sum |x|. */
static double min_terms_abs(int t, const void *wq, const float *xd, int64_t n)
{
    if (t != PONDER_TYPE_Q4_1 && t != PONDER_TYPE_Q5_1)
        return 0.0;
    double s = 0.0;
    for (int64_t b = 0; b < n / PONDER_QK; b++) {
        const ponder_f16 m = t == PONDER_TYPE_Q4_1 ? ((const ponder_block_q4_1 *)wq)[b].m
                                                   : ((const ponder_block_q5_1 *)wq)[b].m;
        double sx = 0.0;
        for (int i = 0; i < PONDER_QK; i++)
            sx += fabs(xd[b * PONDER_QK + i]);
        s += 2.0 * fabs(ponder_f16_to_f32(m)) * sx; /* |d q| <= |w| + |m| */
    }
    return s;
}

/* The oracle and the active path on the same bytes; tolerance relative to sum |terms|. */
static void check_dot(int t, int p, int64_t n, tt_rng *rng)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    const ponder_isa_kernels *k = ponder_kernels();
    float *wf = malloc((size_t)n * sizeof(float)), *xf = malloc((size_t)n * sizeof(float));
    float *wd = malloc((size_t)n * sizeof(float)), *xd = malloc((size_t)n * sizeof(float));
    void *wq = malloc(tt_row_bytes(t, n)), *xq = malloc(tt_row_bytes(tr->vec_dot_type, n));
    assert_true(wf && xf && wd && xd && wq && xq);
    fill_weights(rng, wf, n, tr->block_elems == 1 ? 32 : tr->block_elems);
    fill_weights(rng, xf, n, vt->block_elems == 1 ? 32 : vt->block_elems);
    tr->from_float(wf, wq, n);
    vt->from_float(xf, xq, n);
    tr->to_float(wq, wd, n);
    vt->to_float(xq, xd, n);
    float ref, got;
    tr->vec_dot(n, &ref, wq, xq);
    k->type[t].vec_dot(n, &got, wq, xq);
    const double tol = 2e-6 * (tt_dot_abs(wd, xd, n) + min_terms_abs(t, wq, xd, n)) + 1e-35;
    if (!(fabs((double)got - (double)ref) <= tol))
        fail_msg("%s vec_dot on path %s, n=%lld: ref %.9g got %.9g (tol %.3g)", tr->name, PATHS[p], (long long)n,
                 ref, got, tol);
    free(wf);
    free(xf);
    free(wd);
    free(xd);
    free(wq);
    free(xq);
}

static void test_vec_dot_vs_oracle(void **state)
{
    (void)state;
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        int n_types = 0;
        for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
            if (!ponder_type_is_supported(t))
                continue;
            n_types++;
            const ponder_type_traits *tr = ponder_type_get_traits(t);
            tt_rng rng = {900u + (uint64_t)t};
            const int64_t mult[] = {1, 2, 3, 5, 7, 16, 17};
            const int64_t float_lens[] = {1, 7, 8, 9, 31, 32, 33, 100, 257, 1000, 4099};
            if (tr->block_elems == 1) {
                for (size_t i = 0; i < sizeof float_lens / sizeof float_lens[0]; i++)
                    for (int rep = 0; rep < 20; rep++)
                        check_dot(t, p, float_lens[i], &rng);
            } else {
                for (size_t i = 0; i < sizeof mult / sizeof mult[0]; i++)
                    for (int rep = 0; rep < 20; rep++)
                        check_dot(t, p, tr->block_elems * mult[i], &rng);
            }
        }
        assert_int_equal(n_types, 14);
    }
    ponder_tensor_force_isa(NULL, NULL);
}

static void test_vec_dot_f16_vs_oracle(void **state)
{
    (void)state;
    enum { N = 5000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    ponder_f16 *ha = malloc(N * sizeof *ha), *hb = malloc(N * sizeof *hb);
    assert_true(a && b && ha && hb);
    tt_rng rng = {4242};
    tt_fill_gauss(&rng, a, N, 3.0);
    tt_fill_gauss(&rng, b, N, 0.01);
    ponder_f32_to_f16_row_ref(a, ha, N);
    ponder_f32_to_f16_row_ref(b, hb, N);
    ponder_f16_to_f32_row_ref(ha, a, N);
    ponder_f16_to_f32_row_ref(hb, b, N);
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        const int64_t lens[] = {0, 1, 7, 8, 15, 31, 32, 33, 64, 65, 127, N - 3}; /* + offsets 0..2 */
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            for (int64_t off = 0; off < 3; off++) {
                float ref, got;
                ponder_vec_dot_f16_ref(lens[l], &ref, ha + off, hb + off);
                ponder_vec_dot_f16(lens[l], &got, ha + off, hb + off);
                const double tol = 2e-6 * tt_dot_abs(a + off, b + off, lens[l]) + 1e-35;
                if (!(fabs((double)got - (double)ref) <= tol))
                    fail_msg("vec_dot_f16 path %s n=%lld: ref %.9g got %.9g", PATHS[p], (long long)lens[l], ref, got);
            }
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    free(a);
    free(b);
    free(ha);
    free(hb);
}

/* y += a * x over f16 rows: bit-identical on every path (no fused multiply-add). */
static void test_vec_mad_f16_exact(void **state)
{
    (void)state;
    enum { N = 3000 };
    float *x = malloc(N * sizeof *x), *y0 = malloc(N * sizeof *y0), *ya = malloc(N * sizeof *ya),
          *yb = malloc(N * sizeof *yb);
    ponder_f16 *hx = malloc(N * sizeof *hx);
    assert_true(x && y0 && ya && yb && hx);
    tt_rng rng = {555};
    for (int i = 0; i < N; i++) {
        const uint32_t u = (uint32_t)tt_next(&rng);
        hx[i] = (ponder_f16)(i % 7 == 0 ? u : (u & 0x83ff) | 0x3800); /* all classes, and ordinary values */
    }
    tt_fill_gauss(&rng, y0, N, 2.0);
    const float scales[] = {0.0f, 1.0f, -0.3333333f, 1e-30f, 65504.0f, 3.0e38f};
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        const int64_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 100, N - 2};
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                const int64_t off = (int64_t)(l % 3);
                memcpy(ya, y0, N * sizeof *ya);
                memcpy(yb, y0, N * sizeof *yb);
                ponder_vec_mad_f16_ref(lens[l], ya + off, hx + off, scales[s]);
                ponder_vec_mad_f16(lens[l], yb + off, hx + off, scales[s]);
                if (memcmp(ya, yb, N * sizeof *ya) != 0)
                    fail_msg("vec_mad_f16 path %s n=%lld a=%g differs from the oracle", PATHS[p], (long long)lens[l],
                             scales[s]);
            }
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    free(x);
    free(y0);
    free(ya);
    free(yb);
    free(hx);
}

/* The row-batched forms give exactly the bits of their one-row forms on the same path. */
static void test_f16_rows_batched(void **state)
{
    (void)state;
    enum { MAXN = 1100, ROWS = 37 };
    const size_t stride_elems = MAXN + 3; /* rows not packed */
    ponder_f16 *rows = malloc(ROWS * stride_elems * sizeof *rows), *x = malloc(MAXN * sizeof *x);
    float *w = malloc(ROWS * sizeof *w), *y0 = malloc(MAXN * sizeof *y0), *ya = malloc(MAXN * sizeof *ya),
          *yb = malloc(MAXN * sizeof *yb), *outa = malloc(ROWS * sizeof *outa), *outb = malloc(ROWS * sizeof *outb);
    assert_true(rows && x && w && y0 && ya && yb && outa && outb);
    tt_rng rng = {8080};
    float *tmp = malloc(ROWS * stride_elems * sizeof *tmp);
    assert_non_null(tmp);
    tt_fill_gauss(&rng, tmp, (int64_t)(ROWS * stride_elems), 1.0);
    ponder_f32_to_f16_row_ref(tmp, rows, (int64_t)(ROWS * stride_elems));
    tt_fill_gauss(&rng, tmp, MAXN, 1.0);
    ponder_f32_to_f16_row_ref(tmp, x, MAXN);
    tt_fill_gauss(&rng, w, ROWS, 0.2);
    tt_fill_gauss(&rng, y0, MAXN, 1.0);
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        const int64_t lens[] = {1, 7, 8, 63, 64, 65, 128, 200, 1025, MAXN};
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            const int64_t n = lens[l];
            const int64_t nrs[] = {0, 1, 3, 4, 5, 12, 23, 36, ROWS};
            for (size_t q = 0; q < sizeof nrs / sizeof nrs[0]; q++) {
                const int64_t nr = nrs[q];
                ponder_vec_dot_f16_rows(n, nr, outb, rows, stride_elems * sizeof *rows, x);
                for (int64_t j = 0; j < nr; j++)
                    ponder_vec_dot_f16(n, &outa[j], rows + (size_t)j * stride_elems, x);
                if (nr && memcmp(outa, outb, (size_t)nr * sizeof *outa) != 0)
                    fail_msg("vec_dot_f16_rows path %s n=%lld rows=%lld differs from per-row dots", PATHS[p],
                             (long long)n, (long long)nr);
                memcpy(ya, y0, MAXN * sizeof *ya);
                memcpy(yb, y0, MAXN * sizeof *yb);
                ponder_vec_mad_f16_rows(n, nr, yb, rows, stride_elems * sizeof *rows, w);
                for (int64_t j = 0; j < nr; j++)
                    ponder_vec_mad_f16_ref(n, ya, rows + (size_t)j * stride_elems, w[j]);
                if (memcmp(ya, yb, MAXN * sizeof *ya) != 0)
                    fail_msg("vec_mad_f16_rows path %s n=%lld rows=%lld differs from the oracle", PATHS[p],
                             (long long)n, (long long)nr);
            }
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    free(rows);
    free(x);
    free(w);
    free(y0);
    free(ya);
    free(yb);
    free(outa);
    free(outb);
    free(tmp);
}

/* ---- tile kernels: each output equals the path's own vec_dot, bit for bit ---- */

static void test_gemm_tiles(void **state)
{
    (void)state;
    int n_checked = 0;
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        const ponder_isa_kernels *k = ponder_kernels();
        for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
            const ponder_type_kernels *kt = &k->type[t];
            if (!kt->gemm)
                continue;
            n_checked++;
            const ponder_type_traits *tr = ponder_type_get_traits(t);
            const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
            /* 36 or more rows per call: the kernel walks the rows itself (in groups of up to
             * 16, for some), so several groups and a partial one */
            const int RM = (36 + kt->gemm_rows - 1) / kt->gemm_rows * kt->gemm_rows, RN = kt->gemm_tokens;
            assert_true(kt->gemm_rows >= 1 && kt->gemm_rows <= 16 && RN >= 1 && RN <= 16);
            /* float rows: odd lengths, and one too long for a stack-widened tile */
            const int64_t lens[] = {tr->block_elems == 1 ? 37 : tr->block_elems, tr->block_elems * 9,
                                    tr->block_elems == 1 ? 1001 : tr->block_elems * 6,
                                    tr->block_elems == 1 ? 5003 : tr->block_elems * 2};
            tt_rng rng = {31337u + (uint64_t)t};
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                const int64_t n = lens[l];
                /* padded strides, keeping the 4-byte alignment Q8_K activations (float d) need */
                const size_t wrow = tt_row_bytes(t, n) + 6, arow = tt_row_bytes(tr->vec_dot_type, n) + 12;
                uint8_t *w = calloc((size_t)RM, wrow), *a = calloc((size_t)RN, arow);
                float *f = malloc((size_t)n * sizeof *f);
                float y[16 * (36 + 16 + 3)];
                assert_true(w && a && f);
                for (int r = 0; r < RM; r++) {
                    fill_weights(&rng, f, n, tr->block_elems == 1 ? 32 : tr->block_elems);
                    tr->from_float(f, w + (size_t)r * wrow, n);
                }
                for (int i = 0; i < RN; i++) {
                    fill_weights(&rng, f, n, vt->block_elems == 1 ? 32 : vt->block_elems);
                    k->type[tr->vec_dot_type].from_float(f, a + (size_t)i * arow, n);
                }
                const size_t ys = (size_t)RM + 3;
                for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
                    y[i] = NAN; /* an output the kernel skips fails the comparison */
                kt->gemm(n, RM, RN, w, wrow, a, arow, y, ys);
                for (int r = 0; r < RM; r++) {
                    for (int i = 0; i < RN; i++) {
                        float ref;
                        kt->vec_dot(n, &ref, w + (size_t)r * wrow, a + (size_t)i * arow);
                        /* bit for bit: batching must not change a result (test_batch_invariance
                         * checks the whole product) */
                        const float got = y[(size_t)i * ys + r];
                        if (memcmp(&got, &ref, sizeof got) != 0)
                            fail_msg("%s gemm path %s n=%lld tile %dx%d (%d,%d): vec_dot %.9g gemm %.9g", tr->name,
                                     PATHS[p], (long long)n, RM, RN, r, i, ref, got);
                    }
                }
                free(w);
                free(a);
                free(f);
            }
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    print_message("tile kernels checked: %d\n", n_checked);
}

/* Distance in representable floats (same sign side or across zero). */
static int64_t ulp_dist(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    const int64_t oa = ia < 0 ? -(int64_t)(ia & 0x7fffffff) : ia, ob = ib < 0 ? -(int64_t)(ib & 0x7fffffff) : ib;
    return oa > ob ? oa - ob : ob - oa;
}

/* ponder_vec_exp_sub on every path against expf element by element: within 2 ulp
 * (subnormal and zero results included, so no flush-to-zero), exact specials (-inf -> 0,
 * NaN -> NaN, overflow -> inf), awkward lengths, y aliasing x, and the returned sum
 * against a double sum of the expf values. */
static void test_vec_exp_sub(void **state)
{
    (void)state;
    enum { MAXN = 1031 };
    float *x = malloc(MAXN * sizeof *x), *y = malloc(MAXN * sizeof *y), *ref = malloc(MAXN * sizeof *ref);
    assert_true(x && y && ref);
    tt_rng rng = {4242};
    const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.7f, 88.73f, 100.0f, -87.3f, -88.0f, -100.0f, -103.9f,
                              -103.98f, -104.0f, -120.0f, -1e30f, 1e30f, -INFINITY, INFINITY, NAN, 0.3465736f,
                              -0.3465736f, 1e-8f, -1e-8f};
    const int n_spec = (int)(sizeof specials / sizeof specials[0]);
    const float maxes[] = {0.0f, 3.5f, -2.0f};
    for (int p = 0; p < N_PATHS; p++) {
        if (!use_path(p))
            continue;
        for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++) {
            const float max = maxes[mi];
            for (int i = 0; i < MAXN; i++) {
                if (i >= 64 && i < 64 + n_spec) /* past 64: shorter lengths keep finite sums */
                    x[i] = specials[i - 64] + max;
                else if (i % 3 == 0)
                    x[i] = (float)(tt_uniform(&rng) * 200.0 - 150.0); /* the whole range and beyond */
                else
                    x[i] = (float)(tt_uniform(&rng) * 20.0 - 16.0); /* softmax-like */
            }
            const int64_t lens[] = {0, 1, 7, 8, 9, 23, 64, MAXN};
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                const int64_t n = lens[l];
                double want = 0.0;
                for (int64_t i = 0; i < n; i++) {
                    ref[i] = expf(x[i] - max);
                    want += (double)ref[i];
                }
                for (int alias = 0; alias < 2; alias++) {
                    float *out = y;
                    for (int i = 0; i < MAXN; i++)
                        y[i] = -7.0f; /* the tail past n must stay untouched */
                    if (alias)
                        memcpy(y, x, (size_t)n * sizeof *y);
                    const double got = ponder_vec_exp_sub(n, out, alias ? y : x, max);
                    for (int64_t i = 0; i < n; i++) {
                        const bool ok = isnan(ref[i]) ? isnan(out[i]) : ulp_dist(out[i], ref[i]) <= 2;
                        if (!ok)
                            fail_msg("path %s: exp(%.9g - %.9g) = %.9g, expf %.9g", PATHS[p], x[i], max, out[i],
                                     ref[i]);
                    }
                    for (int64_t i = n; i < MAXN; i++)
                        assert_true(y[i] == -7.0f);
                    if (isnan(want))
                        assert_true(isnan(got));
                    else if (isinf(want))
                        assert_true(got == want);
                    else if (!(fabs(got - want) <= 1e-6 * want))
                        fail_msg("path %s n=%lld: sum %.17g, expected %.17g", PATHS[p], (long long)n, got, want);
                }
            }
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    free(x);
    free(y);
    free(ref);
}

/* The VNNI paths are the AVX2 source with one vpdpbusd for the 8-bit dot step, promised
 * to give the same int32 sums: every dot and tile product must be bit-identical to avx2. */
static void test_vnni_paths_match_avx2(void **state)
{
    (void)state;
    static const char *const vnni[] = {"avxvnni", "avx512vnni"};
    if (!ponder_tensor_isa_available("avx2"))
        skip();
    enum { N = 4096 + 256, ROWS = 5, TOK = 4 };
    tt_rng rng = {9001};
    int checked = 0;
    for (size_t v = 0; v < sizeof vnni / sizeof vnni[0]; v++) {
        if (!ponder_tensor_isa_available(vnni[v]))
            continue;
        for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
            const ponder_type_traits *tr = ponder_type_get_traits(t);
            if (!tr || !tr->from_float || !tr->vec_dot || !ponder_type_get_traits(tr->vec_dot_type)->from_float)
                continue;
            const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
            const size_t wb = tt_row_bytes(t, N), xb = tt_row_bytes(tr->vec_dot_type, N);
            float *wf = malloc((size_t)N * ROWS * sizeof(float)), *xf = malloc((size_t)N * TOK * sizeof(float));
            uint8_t *wq = malloc(wb * ROWS), *xq = malloc(xb * TOK);
            float ya[ROWS * TOK], yb[ROWS * TOK];
            assert_true(wf && xf && wq && xq);
            fill_weights(&rng, wf, (int64_t)N * ROWS, tr->block_elems == 1 ? 32 : tr->block_elems);
            fill_weights(&rng, xf, (int64_t)N * TOK, vt->block_elems == 1 ? 32 : vt->block_elems);
            for (int r = 0; r < ROWS; r++)
                tr->from_float(wf + (size_t)r * N, wq + (size_t)r * wb, N);
            for (int k = 0; k < TOK; k++)
                vt->from_float(xf + (size_t)k * N, xq + (size_t)k * xb, N);
            for (int pass = 0; pass < 2; pass++) {
                float *y = pass ? yb : ya;
                assert_int_equal(ponder_tensor_force_isa(pass ? vnni[v] : "avx2", NULL), PONDER_OK);
                const ponder_type_kernels *k = &ponder_kernels()->type[t];
                for (int r = 0; r < ROWS; r++)
                    for (int tok = 0; tok < TOK; tok++)
                        k->vec_dot(N, &y[tok * ROWS + r], wq + (size_t)r * wb, xq + (size_t)tok * xb);
            }
            if (memcmp(ya, yb, sizeof ya) != 0)
                fail_msg("%s vec_dot: path %s differs from avx2", tr->name, vnni[v]);
            for (int pass = 0; pass < 2; pass++) {
                float *y = pass ? yb : ya;
                assert_int_equal(ponder_tensor_force_isa(pass ? vnni[v] : "avx2", NULL), PONDER_OK);
                const ponder_type_kernels *k = &ponder_kernels()->type[t];
                if (!k->gemm)
                    break;
                const int rows = ROWS / k->gemm_rows * k->gemm_rows, toks = k->gemm_tokens;
                if (rows == 0 || toks > TOK)
                    break;
                memset(y, 0, sizeof ya);
                k->gemm(N, rows, toks, wq, wb, xq, xb, y, ROWS);
                if (pass && memcmp(ya, yb, sizeof ya) != 0)
                    fail_msg("%s gemm: path %s differs from avx2", tr->name, vnni[v]);
            }
            checked++;
            free(wf);
            free(xf);
            free(wq);
            free(xq);
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    if (checked == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_force_isa),
        cmocka_unit_test(test_activation_conversions_exact),
        cmocka_unit_test(test_f16_rows_exact),
        cmocka_unit_test(test_vec_dot_vs_oracle),
        cmocka_unit_test(test_vec_dot_f16_vs_oracle),
        cmocka_unit_test(test_vec_mad_f16_exact),
        cmocka_unit_test(test_f16_rows_batched),
        cmocka_unit_test(test_vec_exp_sub),
        cmocka_unit_test(test_gemm_tiles),
        cmocka_unit_test(test_vnni_paths_match_avx2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
