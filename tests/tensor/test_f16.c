/* test_f16.c — f16 and bf16 conversions: exhaustive round trips, known values, rounding
 * ties, and (where the CPU has F16C) bit-for-bit agreement with the hardware conversion
 * llama.cpp uses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor/kernels.h"
#include "tensor_test.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static bool f16_is_nan(ponder_f16 h)
{
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

/* Every f16 survives f16 -> f32 -> f16; NaNs come back quiet with their payload. */
static void test_f16_round_trip_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = ponder_f16_to_f32((ponder_f16)h);
        const ponder_f16 back = ponder_f32_to_f16(f);
        if (f16_is_nan((ponder_f16)h)) {
            assert_true(isnan(f));
            assert_int_equal(back, h | 0x200);
        } else {
            assert_int_equal(back, h);
        }
    }
}

static void test_f16_known_values(void **state)
{
    (void)state;
    const struct {
        float f;
        ponder_f16 h;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.5f, 0x3800},
        {0.1f, 0x2e66},
        {65504.0f, 0x7bff},      /* largest finite */
        {65519.996f, 0x7bff},    /* just under the halfway point to inf */
        {65520.0f, 0x7c00},      /* halfway: ties to even (inf) */
        {1e10f, 0x7c00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {0x1p-14f, 0x0400},      /* smallest normal */
        {0x1p-24f, 0x0001},      /* smallest subnormal */
        {0x1.ff8p-15f, 0x03ff},  /* largest subnormal, 1023 * 2^-24 */
        {0x1p-25f, 0x0000},      /* half the smallest subnormal: tie to even (0) */
        {0x1.000002p-25f, 0x0001}, /* just above that half */
        {0x1.8p-24f, 0x0002},    /* 1.5 * 2^-24: tie to even (2) */
        {0x1.4p-23f, 0x0002},    /* 2.5 * 2^-24: tie to even (2) */
        {1e-8f, 0x0000},
        {1.0f + 0x1p-11f, 0x3c00},      /* halfway between 1 and the next f16: to even */
        {1.0f + 0x1.8p-10f, 0x3c02},    /* 1.5 ulp: tie to even (2) */
        {1.0f + 0x1p-11f + 0x1p-23f, 0x3c01}, /* just above halfway */
        {-(1.0f + 0x1.8p-10f), 0xbc02},
        {2049.0f, 0x6800},       /* 2048 + 1, halfway, f16 ulp 2 at 2048: to even 2048 */
        {2051.0f, 0x6802},       /* halfway between 2050 and 2052: to even 2052 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ponder_f16 h = ponder_f32_to_f16(cases[i].f);
        if (h != cases[i].h)
            fail_msg("f32_to_f16(%a) = 0x%04x, expected 0x%04x", (double)cases[i].f, h, cases[i].h);
    }
    assert_int_equal(ponder_f32_to_f16(NAN) & 0x7e00, 0x7e00);
    assert_int_equal(ponder_f32_to_f16(from_bits(0x7f800001)), 0x7e00);    /* sNaN made quiet */
    assert_int_equal(ponder_f32_to_f16(from_bits(0xffc02000)), 0xfe01);    /* payload kept */

    assert_true(ponder_f16_to_f32(0x3555) == 0x1.554p-2f); /* 0.333251953125 */
    assert_true(ponder_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(ponder_f16_to_f32(0x03ff) == 0x1.ff8p-15f);
    assert_true(ponder_f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(ponder_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(ponder_f16_to_f32(0xfc00) == -INFINITY);
    assert_int_equal(to_bits(ponder_f16_to_f32(0x8000)), 0x80000000u);
    assert_int_equal(to_bits(ponder_f16_to_f32(0x7c01)), 0x7fc02000u); /* quieted, payload kept */
}

/* Values strictly inside (h, next) round to the nearer one: checks every f16 interval. */
static void test_f16_rounds_to_nearest(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        const float lo = ponder_f16_to_f32((ponder_f16)h);
        const float hi = ponder_f16_to_f32((ponder_f16)(h + 1));
        const float mid = (float)(((double)lo + (double)hi) / 2); /* exact in float */
        assert_int_equal(ponder_f32_to_f16(nextafterf(mid, 0.0f)), h);
        assert_int_equal(ponder_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
        assert_int_equal(ponder_f32_to_f16(mid), (h & 1) ? h + 1 : h);
        assert_int_equal(ponder_f32_to_f16(-mid), 0x8000 | ((h & 1) ? h + 1 : h));
    }
}

#ifdef HAVE_X86
__attribute__((target("f16c"))) static ponder_f16 hw_f32_to_f16(float f)
{
    return (ponder_f16)_cvtss_sh(f, 0);
}

__attribute__((target("f16c"))) static float hw_f16_to_f32(ponder_f16 h)
{
    return _cvtsh_ss(h);
}
#endif

/* Our software conversion is bit-identical to F16C (what llama.cpp runs on x86). */
static void test_f16_matches_f16c(void **state)
{
    (void)state;
#ifdef HAVE_X86
    /* clang 14's __builtin_cpu_supports does not know "f16c": ask CPUID (leaf 1, ECX bit 29) */
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 29)))
        skip();
    for (uint32_t h = 0; h < 65536; h++) {
        const uint32_t a = to_bits(ponder_f16_to_f32((ponder_f16)h));
        const uint32_t b = to_bits(hw_f16_to_f32((ponder_f16)h));
        if (a != b)
            fail_msg("f16 0x%04x: ours 0x%08x, F16C 0x%08x", h, a, b);
    }
    /* all f32 patterns around every f16 value and halfway point, plus random bits */
    tt_rng rng = {42};
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const float base = ponder_f16_to_f32((ponder_f16)h);
        const float next = h < 0x7bff ? ponder_f16_to_f32((ponder_f16)(h + 1)) : 65536.0f;
        const float mid = (float)(((double)base + (double)next) / 2);
        const float probes[] = {base, nextafterf(base, 0.0f), nextafterf(base, INFINITY), mid,
                                nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            for (int sgn = 0; sgn < 2; sgn++) {
                const float f = sgn ? -probes[i] : probes[i];
                if (ponder_f32_to_f16(f) != hw_f32_to_f16(f))
                    fail_msg("f32 %a: ours 0x%04x, F16C 0x%04x", (double)f, ponder_f32_to_f16(f),
                             hw_f32_to_f16(f));
            }
        }
    }
    for (int i = 0; i < (1 << 20); i++) {
        const float f = from_bits((uint32_t)tt_next(&rng));
        if (ponder_f32_to_f16(f) != hw_f32_to_f16(f))
            fail_msg("f32 0x%08x: ours 0x%04x, F16C 0x%04x", to_bits(f), ponder_f32_to_f16(f),
                     hw_f32_to_f16(f));
    }
#else
    skip();
#endif
}

static void test_bf16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = ponder_bf16_to_f32((ponder_bf16)h);
        assert_int_equal(to_bits(f), h << 16);
        const bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        assert_int_equal(ponder_f32_to_bf16(f), nan ? (h | 0x40) : h);
    }
    const struct {
        uint32_t f;
        ponder_bf16 h;
    } cases[] = {
        {0x3f800000, 0x3f80}, /* 1.0 */
        {0x3f808000, 0x3f80}, /* halfway, even below: down */
        {0x3f818000, 0x3f82}, /* halfway, odd below: up */
        {0x3f808001, 0x3f81}, /* above halfway */
        {0x3f807fff, 0x3f80},
        {0xbf818000, 0xbf82},
        {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds to inf */
        {0x7f800000, 0x7f80},
        {0x00000001, 0x0000}, /* subnormals round (not flushed) */
        {0x00018000, 0x0002},
        {0x7fc00001, 0x7fc0},
        {0x7f800001, 0x7fc0}, /* sNaN made quiet */
        {0xff810000, 0xffc1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ponder_bf16 h = ponder_f32_to_bf16(from_bits(cases[i].f));
        if (h != cases[i].h)
            fail_msg("f32_to_bf16(0x%08x) = 0x%04x, expected 0x%04x", cases[i].f, h, cases[i].h);
    }
}

/* The row helpers and the f16 dot the model uses for its KV cache. */
static void test_f16_rows_and_dot(void **state)
{
    (void)state;
    enum { N = 1000 };
    float x[N], y[N], back[N];
    ponder_f16 hx[N], hy[N];
    tt_rng rng = {7};
    tt_fill_gauss(&rng, x, N, 1.0);
    tt_fill_gauss(&rng, y, N, 3.0);
    ponder_f32_to_f16_row(x, hx, N);
    ponder_f32_to_f16_row(y, hy, N);
    ponder_f16_to_f32_row(hx, back, N);
    double ref = 0.0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(hx[i], ponder_f32_to_f16(x[i]));
        assert_true(back[i] == ponder_f16_to_f32(hx[i]));
        ref += (double)ponder_f16_to_f32(hx[i]) * (double)ponder_f16_to_f32(hy[i]);
    }
    float got;
    ponder_vec_dot_f16_ref(N, &got, hx, hy);
    /* the oracle: products of f16 values are exact and summed in double, only the last
     * rounding is lost */
    assert_true(got == (float)ref);
    /* and the traits-table F16 dot is the same function */
    float got2;
    ponder_type_get_traits(PONDER_TYPE_F16)->vec_dot(N, &got2, hx, hy);
    assert_true(got2 == got);
    /* the dispatched one (float accumulation on vector paths) within summation order */
    float got3;
    ponder_vec_dot_f16(N, &got3, hx, hy);
    double abs_sum = 0.0;
    for (int i = 0; i < N; i++)
        abs_sum += fabs((double)ponder_f16_to_f32(hx[i]) * (double)ponder_f16_to_f32(hy[i]));
    assert_true(fabs((double)got3 - ref) <= 2e-6 * abs_sum);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_round_trip_exhaustive),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_rounds_to_nearest),
        cmocka_unit_test(test_f16_matches_f16c),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_f16_rows_and_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
