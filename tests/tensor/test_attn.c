/* test_attn.c — the lanes attention kernels (kernels.h, ponder_attn_lanes) against a
 * scalar oracle of attention.c's exact form, and their invariance.
 *
 * For every path with such a kernel (today "avx512"), a paged F16 K/V cache (blocks in a
 * shuffled order, a KV head's slice inside wider rows) and up to 16 queries with their own
 * visible ranges (causal prompt rows, a sliding window, one decoded token, ranges ending
 * inside a block) are attended. Oracle: q rounded to F16, dots in double, scaled, expf,
 * double sum, the weights rounded to F16, then mul-then-add of V in position order. The
 * kernel's scores are float FMA chains and its exps a polynomial, so a weight can round to
 * the neighbouring F16: each output must be within 2e-3 of max |v| of the oracle. Then the
 * bits: a lane alone, or at another index among other lanes, gives the same output (what
 * makes a prompt's token equal to the same token decoded alone). A CPU without such a path
 * prints a SKIP line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor/kernels.h"
#include "tensor_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BC = 32, N_BLOCKS = 9, N_CELLS = BC * N_BLOCKS, KV_HEADS = 3 };

typedef struct cache {
    int hk, hv;
    size_t k_row, v_row; /* bytes */
    ponder_f16 *k, *v;
    int32_t blocks[N_BLOCKS];
} cache;

static void cache_make(cache *c, tt_rng *r, int hk, int hv)
{
    c->hk = hk;
    c->hv = hv;
    c->k_row = (size_t)KV_HEADS * hk * sizeof(ponder_f16);
    c->v_row = (size_t)KV_HEADS * hv * sizeof(ponder_f16);
    c->k = malloc(c->k_row * N_CELLS);
    c->v = malloc(c->v_row * N_CELLS);
    assert_non_null(c->k);
    assert_non_null(c->v);
    for (size_t i = 0; i < (size_t)KV_HEADS * hk * N_CELLS; i++)
        c->k[i] = ponder_f32_to_f16((float)tt_gauss(r));
    for (size_t i = 0; i < (size_t)KV_HEADS * hv * N_CELLS; i++)
        c->v[i] = ponder_f32_to_f16((float)tt_gauss(r));
    for (int b = 0; b < N_BLOCKS; b++)
        c->blocks[b] = b;
    for (int b = N_BLOCKS - 1; b > 0; b--) { /* a sequence's blocks in any order */
        const int o = (int)(tt_next(r) % (uint64_t)(b + 1));
        const int32_t t = c->blocks[b];
        c->blocks[b] = c->blocks[o];
        c->blocks[o] = t;
    }
}

static const ponder_f16 *row_at(const cache *c, bool v, int32_t p)
{
    const size_t cell = (size_t)c->blocks[p / BC] * BC + (size_t)(p % BC);
    return (const ponder_f16 *)((const uint8_t *)(v ? c->v : c->k) + cell * (v ? c->v_row : c->k_row)) +
           (v ? c->hv : c->hk); /* KV head 1's slice */
}

static void oracle(const cache *c, const float *q, int32_t lo, int32_t hi, float scale, float *out)
{
    float s[N_CELLS];
    float mx = -INFINITY;
    for (int32_t p = lo; p <= hi; p++) {
        const ponder_f16 *k = row_at(c, false, p);
        double d = 0.0;
        for (int i = 0; i < c->hk; i++)
            d += (double)ponder_f16_to_f32(ponder_f32_to_f16(q[i])) * (double)ponder_f16_to_f32(k[i]);
        s[p - lo] = (float)d * scale;
        mx = s[p - lo] > mx ? s[p - lo] : mx;
    }
    double sum = 0.0;
    for (int32_t p = lo; p <= hi; p++) {
        s[p - lo] = expf(s[p - lo] - mx);
        sum += s[p - lo];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < c->hv; i++)
        out[i] = 0.0f;
    for (int32_t p = lo; p <= hi; p++) {
        const float w = ponder_f16_to_f32(ponder_f32_to_f16(s[p - lo] * inv));
        const ponder_f16 *v = row_at(c, true, p);
        for (int i = 0; i < c->hv; i++) {
            const float prod = w * ponder_f16_to_f32(v[i]);
            out[i] += prod;
        }
    }
}

static void args_base(ponder_attn_lanes *a, const cache *c, float scale)
{
    memset(a, 0, sizeof *a);
    a->head_dim_k = c->hk;
    a->head_dim_v = c->hv;
    a->block_cells = BC;
    a->blocks = c->blocks;
    a->k = (const uint8_t *)c->k + (size_t)c->hk * sizeof(ponder_f16);
    a->v = (const uint8_t *)c->v + (size_t)c->hv * sizeof(ponder_f16);
    a->k_row_bytes = c->k_row;
    a->v_row_bytes = c->v_row;
    a->kq_scale = scale;
}

/* One set of lanes: lanes l < n see [lo[l], hi[l]]. */
static void check_lanes(ponder_attn_fn fn, const cache *c, tt_rng *r, int n, const int32_t *lo, const int32_t *hi,
                        float *scratch, const char *what)
{
    const float scale = 1.0f / sqrtf((float)c->hk);
    float q[PONDER_ATTN_LANES][PONDER_ATTN_MAX_HD], out[PONDER_ATTN_LANES][PONDER_ATTN_MAX_HD];
    float ref[PONDER_ATTN_MAX_HD], alone[PONDER_ATTN_MAX_HD], moved[PONDER_ATTN_LANES][PONDER_ATTN_MAX_HD];
    ponder_attn_lanes a;
    args_base(&a, c, scale);
    a.n_lanes = n;
    for (int l = 0; l < n; l++) {
        tt_fill_gauss(r, q[l], c->hk, 1.0 + l % 3); /* sharper and flatter softmaxes */
        a.q[l] = q[l];
        a.out[l] = out[l];
        a.lo[l] = lo[l];
        a.hi[l] = hi[l];
    }
    fn(&a, scratch);
    for (int l = 0; l < n; l++) {
        oracle(c, q[l], lo[l], hi[l], scale, ref);
        double vmax = 0.0, err = 0.0;
        for (int32_t p = lo[l]; p <= hi[l]; p++)
            for (int i = 0; i < c->hv; i++)
                vmax = fmax(vmax, fabs((double)ponder_f16_to_f32(row_at(c, true, p)[i])));
        for (int i = 0; i < c->hv; i++)
            err = fmax(err, fabs((double)out[l][i] - (double)ref[i]));
        if (err > 2e-3 * vmax)
            fail_msg("%s hk=%d hv=%d lane %d/%d [%d, %d]: error %.3g > 2e-3 * %.3g", what, c->hk, c->hv, l, n, lo[l],
                     hi[l], err, vmax);
        /* alone */
        ponder_attn_lanes one;
        args_base(&one, c, scale);
        one.n_lanes = 1;
        one.q[0] = q[l];
        one.out[0] = alone;
        one.lo[0] = lo[l];
        one.hi[0] = hi[l];
        fn(&one, scratch);
        if (memcmp(alone, out[l], (size_t)c->hv * sizeof(float)) != 0)
            fail_msg("%s lane %d/%d: not the same bits alone", what, l, n);
    }
    /* reversed lane order */
    ponder_attn_lanes rev;
    args_base(&rev, c, scale);
    rev.n_lanes = n;
    for (int l = 0; l < n; l++) {
        rev.q[l] = q[n - 1 - l];
        rev.out[l] = moved[n - 1 - l];
        rev.lo[l] = lo[n - 1 - l];
        rev.hi[l] = hi[n - 1 - l];
    }
    fn(&rev, scratch);
    for (int l = 0; l < n; l++)
        if (memcmp(moved[l], out[l], (size_t)c->hv * sizeof(float)) != 0)
            fail_msg("%s lane %d/%d: not the same bits at another index", what, l, n);
}

static void test_attn_lanes(void **state)
{
    (void)state;
    bool any = false;
    static const char *const PATHS[] = {"scalar", "avx2", "avx512vnni", "avxvnni", "avx512"};
    static const int HD[][2] = {{64, 64}, {32, 32}, {128, 64}, {16, 48}};
    for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++) {
        if (!ponder_tensor_isa_available(PATHS[p]))
            continue;
        assert_int_equal(ponder_tensor_force_isa(PATHS[p], NULL), PONDER_OK);
        const ponder_attn_fn fn = ponder_kernels()->attn_f16;
        if (!fn)
            continue;
        any = true;
        tt_rng r = {1234 + p};
        float *scratch = malloc(ponder_attn_scratch_floats(N_CELLS, PONDER_ATTN_MAX_HD, PONDER_ATTN_MAX_HD) *
                                sizeof(float));
        assert_non_null(scratch);
        for (size_t h = 0; h < sizeof HD / sizeof HD[0]; h++) {
            cache c;
            cache_make(&c, &r, HD[h][0], HD[h][1]);
            int32_t lo[PONDER_ATTN_LANES], hi[PONDER_ATTN_LANES];
            /* a causal prompt tile: 5 tokens x 3 heads at positions 200..204 */
            for (int l = 0; l < 15; l++) {
                lo[l] = 0;
                hi[l] = 200 + l / 3;
            }
            check_lanes(fn, &c, &r, 15, lo, hi, scratch, "prompt tile");
            /* 16 lanes, 2 tokens x 7 heads + 2, the tile's first tokens of a prompt */
            for (int l = 0; l < 16; l++) {
                lo[l] = 0;
                hi[l] = l / 7;
            }
            check_lanes(fn, &c, &r, 16, lo, hi, scratch, "prompt start");
            /* a sliding window and ranges ending anywhere in a block */
            for (int l = 0; l < 16; l++) {
                hi[l] = 31 + 17 * l;
                lo[l] = l % 2 ? hi[l] - 40 > 0 ? hi[l] - 40 : 0 : 0;
            }
            check_lanes(fn, &c, &r, 16, lo, hi, scratch, "window");
            /* one decoded token of a 3-head group at the cache's last position */
            for (int l = 0; l < 3; l++) {
                lo[l] = 0;
                hi[l] = N_CELLS - 1;
            }
            check_lanes(fn, &c, &r, 3, lo, hi, scratch, "decode");
            free(c.k);
            free(c.v);
        }
        free(scratch);
    }
    ponder_tensor_force_isa(NULL, NULL);
    if (!any) {
        print_message("SKIP: no kernel path with a lanes attention kernel on this CPU (the avx512 path needs "
                      "AVX-512 F/BW/VL/VNNI)\n");
        skip();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attn_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
