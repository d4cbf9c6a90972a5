/* test_blocks.c — hand-made blocks with known bytes and hand-computed values: pins the bit
 * layout of each block type (nibble order, high-bit planes, packed 6-bit scales), and the
 * exact rounding of the activation quantizers llama.cpp applies (Q8_0, Q8_1, Q8_K). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"
#include "tensor/quants.h"

#include <math.h>
#include <string.h>

/* f16 bit patterns used below */
#define H_0_25 0x3400
#define H_0_5 0x3800
#define H_1 0x3c00
#define H_2 0x4000

static void dequant(int t, const void *blk, float *out, int64_t n)
{
    assert_int_equal(ponder_dequantize_row(t, blk, out, n, NULL), PONDER_OK);
}

static void expect_eq(const char *what, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s: element %d is %g, expected %g", what, i, (double)got[i], (double)want[i]);
}

static void test_q4_0_block(void **state)
{
    (void)state;
    ponder_block_q4_0 b = {.d = H_0_5};
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    dequant(PONDER_TYPE_Q4_0, &b, y, 32);
    /* low nibbles are elements 0..15, high nibbles 16..31; value (q - 8) * 0.5 */
    const float want[32] = {-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5,
                            3.5, 3, 2.5, 2, 1.5, 1, 0.5, 0, -0.5, -1, -1.5, -2, -2.5, -3, -3.5, -4};
    expect_eq("Q4_0", y, want, 32);
}

static void test_q4_1_block(void **state)
{
    (void)state;
    ponder_block_q4_1 b = {.d = H_0_5, .m = 0xc000 /* -2 */};
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    dequant(PONDER_TYPE_Q4_1, &b, y, 32);
    assert_true(y[0] == -2.0f);
    assert_true(y[15] == 5.5f);
    assert_true(y[16] == 5.5f);
    assert_true(y[31] == -2.0f);
    assert_true(y[5] == 0.5f);
}

static void test_q5_blocks(void **state)
{
    (void)state;
    ponder_block_q5_0 b0 = {.d = H_1, .qh = {0x01, 0x00, 0x00, 0x80}}; /* bits 0 and 31 */
    for (int j = 0; j < 16; j++)
        b0.qs[j] = (uint8_t)(j | (j << 4));
    float y[32];
    dequant(PONDER_TYPE_Q5_0, &b0, y, 32);
    assert_true(y[0] == 0.0f);    /* (0 | 16) - 16 */
    assert_true(y[1] == -15.0f);  /* 1 - 16 */
    assert_true(y[16] == -16.0f); /* high nibble of qs[0] = 0, no high bit */
    assert_true(y[30] == -2.0f);  /* 14 - 16 */
    assert_true(y[31] == 15.0f);  /* (15 | 16) - 16 */

    ponder_block_q5_1 b1 = {.d = H_0_5, .m = 0xbc00 /* -1 */, .qh = {0x02, 0x00, 0x01, 0x00}};
    memcpy(b1.qs, b0.qs, sizeof b1.qs);
    dequant(PONDER_TYPE_Q5_1, &b1, y, 32);
    assert_true(y[0] == -1.0f);
    assert_true(y[1] == 7.5f);  /* (1 | 16) * 0.5 - 1: bit 1 */
    assert_true(y[16] == 7.0f); /* (0 | 16) * 0.5 - 1: bit 16 */
    assert_true(y[17] == -0.5f);
}

static void test_q8_0_block(void **state)
{
    (void)state;
    ponder_block_q8_0 b = {.d = H_0_25};
    for (int j = 0; j < 32; j++)
        b.qs[j] = (int8_t)(j * 8 - 128);
    float y[32];
    dequant(PONDER_TYPE_Q8_0, &b, y, 32);
    assert_true(y[0] == -32.0f);
    assert_true(y[1] == -30.0f);
    assert_true(y[31] == 30.0f); /* 120 * 0.25 */
}

static void test_iq4_nl_block(void **state)
{
    (void)state;
    ponder_block_iq4_nl b = {.d = H_2};
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    dequant(PONDER_TYPE_IQ4_NL, &b, y, 32);
    static const float levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 2 * levels[j]);
        assert_true(y[j + 16] == 2 * levels[15 - j]);
    }
}

/* Q2_K: scales[i] = sc | m << 4 for 16-element sub-block i; element e sits in byte
 * 32*(e/128) + e%32 at bit pair (e%128)/32. */
static void test_q2_K_block(void **state)
{
    (void)state;
    ponder_block_q2_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_5;
    b.dmin = H_0_25;
    memset(b.scales, 0x11, sizeof b.scales);
    b.scales[0] = 0x31; /* sc 1, m 3 */
    b.scales[1] = 0x0f; /* sc 15, m 0 */
    b.scales[2] = 0x52; /* sc 2, m 5 */
    b.scales[4] = 0x0a; /* sc 10, m 0 */
    b.scales[6] = 0xf7; /* sc 7, m 15 */
    b.qs[0] = 0xe4;     /* levels 0, 1, 2, 3 for elements 0, 32, 64, 96 */
    b.qs[16] = 0x03;    /* level 3 for element 16 */
    float y[256];
    dequant(PONDER_TYPE_Q2_K, &b, y, 256);
    assert_true(y[0] == -0.75f);  /* 0.5*1*0 - 0.25*3 */
    assert_true(y[1] == -0.75f);
    assert_true(y[16] == 22.5f);  /* 0.5*15*3 */
    assert_true(y[17] == 0.0f);
    assert_true(y[32] == -0.25f); /* 0.5*2*1 - 0.25*5 */
    assert_true(y[33] == -1.25f);
    assert_true(y[64] == 10.0f);  /* 0.5*10*2 */
    assert_true(y[96] == 6.75f);  /* 0.5*7*3 - 0.25*15 */
    assert_true(y[97] == -3.75f);
    assert_true(y[255] == -0.25f); /* sub-block 15: sc 1, m 1, level 0 */
}

/* Q3_K: 16 6-bit scales biased by 32 (low nibbles in bytes 0-7, high bit pairs in bytes
 * 8-11), 2-bit levels like Q2_K, and an hmask bit per element (clear = subtract 4). */
static void test_q3_K_block(void **state)
{
    (void)state;
    ponder_block_q3_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_5;
    memset(b.hmask, 0xff, sizeof b.hmask);
    b.hmask[0] = 0xfe; /* element 0 loses its high bit */
    b.qs[0] = 0xe7;    /* elements 0, 32, 64, 96: levels 3, 1, 2, 3 */
    b.qs[48] = 0x30;   /* element 208 (second half, bit pair 2 of byte 32+16): level 3 */
    /* scale 0 = 5, scale 2 = -3, scale 4 = 12, scale 6 = -32, scale 13 = 31, others 0 */
    const uint8_t scales[12] = {0x05, 0x00, 0x0d, 0x00, 0x0c, 0xf0, 0x00, 0x00, 0xaa, 0xea, 0xa1, 0xaa};
    memcpy(b.scales, scales, sizeof scales);
    float y[256];
    dequant(PONDER_TYPE_Q3_K, &b, y, 256);
    float want[256] = {0};
    want[0] = -2.5f;  /* 0.5 * 5 * (3 - 4) */
    want[32] = -1.5f; /* 0.5 * -3 * 1 */
    want[64] = 12.0f; /* 0.5 * 12 * 2 */
    want[96] = -48.0f; /* 0.5 * -32 * 3 */
    want[208] = 46.5f; /* 0.5 * 31 * 3 */
    expect_eq("Q3_K", y, want, 256);
}

/* Q4_K: 8 sub-blocks of 32 with 6-bit scale and min packed in 12 bytes. */
static const uint8_t K4_SCALES[12] = {0x41, 0x82, 0xc3, 0xc4, 0x40, 0x81, 0xc2, 0x03, 0x01, 0x01, 0x01, 0x5f};
static const int K4_SC[8] = {1, 2, 3, 4, 17, 33, 49, 63};
static const int K4_M[8] = {0, 1, 2, 3, 16, 32, 48, 5};

static void test_q4_K_block(void **state)
{
    (void)state;
    ponder_block_q4_K b;
    memset(&b, 0, sizeof b);
    b.d = H_1;
    b.dmin = H_0_5;
    memcpy(b.scales, K4_SCALES, sizeof K4_SCALES);
    for (int k = 0; k < 128; k++)
        b.qs[k] = (uint8_t)((k % 16) | ((15 - k % 16) << 4));
    float y[256];
    dequant(PONDER_TYPE_Q4_K, &b, y, 256);
    /* bytes 32g..32g+31 hold sub-block 2g in their low nibbles, 2g+1 in the high ones */
    for (int j = 0; j < 8; j++) {
        for (int l = 0; l < 32; l++) {
            const int q = (j % 2 == 0) ? l % 16 : 15 - l % 16;
            const float want = (float)(K4_SC[j] * q) - 0.5f * (float)K4_M[j];
            if (y[32 * j + l] != want)
                fail_msg("Q4_K element %d: %g, expected %g", 32 * j + l, (double)y[32 * j + l], (double)want);
        }
    }
}

static void test_q5_K_block(void **state)
{
    (void)state;
    ponder_block_q5_K b;
    memset(&b, 0, sizeof b);
    b.d = H_1;
    b.dmin = H_0_5;
    memcpy(b.scales, K4_SCALES, sizeof K4_SCALES);
    b.qs[3] = 0x21;  /* element 3 low nibble 1, element 35 high nibble 2 */
    b.qh[3] = 0x05;  /* bit 0: element 3 (+16), bit 2: element 67 (+16) */
    float y[256];
    dequant(PONDER_TYPE_Q5_K, &b, y, 256);
    assert_true(y[3] == 17.0f);  /* 1 * 1 * 17 - 0.5 * 0 */
    assert_true(y[35] == 3.5f);  /* 2 * 2 - 0.5 * 1 */
    assert_true(y[67] == 47.0f); /* 3 * 16 - 0.5 * 2 */
    assert_true(y[0] == 0.0f);
    assert_true(y[36] == -0.5f);
    assert_true(y[255] == -2.5f); /* sub-block 7: -0.5 * 5 */
}

/* Q6_K: per 128-element half, ql holds low nibbles (elements l and l+64 share byte l,
 * l+32 and l+96 share byte l+32), qh the high bit pairs (byte l%32, pair l/32). */
static void test_q6_K_block(void **state)
{
    (void)state;
    ponder_block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = H_0_25;
    for (int i = 0; i < 16; i++)
        b.scales[i] = (int8_t)(i - 8);
    b.scales[0] = 3;
    b.scales[2] = 5;
    b.scales[4] = -7;
    b.scales[6] = 9;
    b.scales[8] = 2;
    b.ql[0] = 0x21;
    b.ql[32] = 0x43;
    b.qh[0] = 0xe4;
    b.ql[64 + 5] = 0x0f; /* second half, element 128 + 5 */
    b.qh[32 + 5] = 0x03;
    float y[256];
    dequant(PONDER_TYPE_Q6_K, &b, y, 256);
    assert_true(y[0] == -23.25f);  /* 0.25 * 3 * ((1 | 0 << 4) - 32) */
    assert_true(y[32] == -16.25f); /* 0.25 * 5 * ((3 | 1 << 4) - 32) */
    assert_true(y[64] == -3.5f);   /* 0.25 * -7 * ((2 | 2 << 4) - 32) */
    assert_true(y[96] == 45.0f);   /* 0.25 * 9 * ((4 | 3 << 4) - 32) */
    assert_true(y[1] == -24.0f);   /* 0.25 * 3 * -32 */
    assert_true(y[133] == 15.5f);  /* 0.25 * 2 * ((15 | 3 << 4) - 32) */
    assert_true(y[144] == -8.0f);  /* 0.25 * (9 - 8) * -32 */
    assert_true(y[255] == -56.0f); /* 0.25 * (15 - 8) * -32 */
}

/* Q8_0 / Q8_1 activation rounding: d = amax/127, roundf (ties away from zero). */
static void test_q8_0_q8_1_quantize_exact(void **state)
{
    (void)state;
    float x[64] = {127.0f, -3.5f, 2.5f, 0.49999997f, -0.5f, 1.5f, -127.0f, 0.0f};
    for (int i = 32; i < 64; i++)
        x[i] = (float)(i - 48) * 0.01f; /* second block: amax 0.16 */
    ponder_block_q8_0 q0[2];
    ponder_block_q8_1 q1[2];
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_0, x, q0, 64, NULL), PONDER_OK);
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_1, x, q1, 64, NULL), PONDER_OK);
    const int8_t want[8] = {127, -4, 3, 0, -1, 2, -127, 0};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(q0[0].qs[i], want[i]);
        assert_int_equal(q1[0].qs[i], want[i]);
    }
    assert_int_equal(q0[0].d, H_1);
    assert_int_equal(q1[0].d, H_1);
    assert_int_equal(q1[0].s, ponder_f32_to_f16(0.0f)); /* 127-4+3+0-1+2-127 = 0 */
    /* second block: d = 0.16/127, id = 1/d, q = roundf(x*id) */
    const float d = fabsf(x[32]) / 127; /* amax of the second block */
    const float id = 1.0f / d;
    int sum = 0;
    for (int i = 0; i < 32; i++) {
        const int q = (int)roundf(x[32 + i] * id);
        assert_int_equal(q0[1].qs[i], q);
        assert_int_equal(q1[1].qs[i], q);
        sum += q;
    }
    assert_int_equal(q0[1].d, ponder_f32_to_f16(d));
    assert_int_equal(q1[1].s, ponder_f32_to_f16((float)sum * d));
    assert_int_equal(q0[1].qs[0], -127);
}

/* Q8_K: iscale = -127/max with max the signed extreme, round half to even, d = 1/iscale
 * (negative when the extreme is positive), bsums per 16. */
static void test_q8_K_quantize_exact(void **state)
{
    (void)state;
    float x[512] = {0};
    x[0] = 1.0f;
    x[1] = 3.0f;
    x[2] = -1.0f;
    x[3] = 127.0f;
    x[4] = 5.0f;
    x[5] = -254.0f; /* extreme, negative: iscale = 0.5 */
    x[16] = 7.0f;
    x[256] = 254.0f; /* second block: extreme positive, iscale = -0.5 */
    x[257] = 3.0f;
    x[258] = -5.0f;
    ponder_block_q8_K q[2];
    assert_int_equal(ponder_quantize_row(PONDER_TYPE_Q8_K, x, q, 512, NULL), PONDER_OK);
    const int8_t want0[6] = {0 /* 0.5 -> even 0 */, 2 /* 1.5 */, 0 /* -0.5 */, 64 /* 63.5 */,
                             2 /* 2.5 */, -127};
    for (int i = 0; i < 6; i++)
        assert_int_equal(q[0].qs[i], want0[i]);
    assert_int_equal(q[0].qs[16], 4); /* 3.5 -> 4 */
    assert_true(q[0].d == 2.0f);
    assert_int_equal(q[0].bsums[0], 0 + 2 + 0 + 64 + 2 - 127);
    assert_int_equal(q[0].bsums[1], 4);
    assert_int_equal(q[0].bsums[2], 0);
    assert_int_equal(q[1].qs[0], -127);
    assert_int_equal(q[1].qs[1], -2); /* -1.5 -> -2 */
    assert_int_equal(q[1].qs[2], 2);  /* 2.5 -> 2 */
    assert_true(q[1].d == -2.0f);
    assert_int_equal(q[1].bsums[0], -127);
    float y[512];
    dequant(PONDER_TYPE_Q8_K, q, y, 512);
    assert_true(y[5] == -254.0f);
    assert_true(y[256] == 254.0f);
    assert_true(y[3] == 128.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_0_block),
        cmocka_unit_test(test_q4_1_block),
        cmocka_unit_test(test_q5_blocks),
        cmocka_unit_test(test_q8_0_block),
        cmocka_unit_test(test_iq4_nl_block),
        cmocka_unit_test(test_q2_K_block),
        cmocka_unit_test(test_q3_K_block),
        cmocka_unit_test(test_q4_K_block),
        cmocka_unit_test(test_q5_K_block),
        cmocka_unit_test(test_q6_K_block),
        cmocka_unit_test(test_q8_0_q8_1_quantize_exact),
        cmocka_unit_test(test_q8_K_quantize_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
