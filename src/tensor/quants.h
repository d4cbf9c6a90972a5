/*
 * quants.h — block layouts and the scalar reference kernels of each tensor type.
 *
 * Every block struct is byte-for-byte ggml's (ggml-common.h), since GGUF files store
 * these blocks as they are; the static_asserts pin the sizes that types.c also lists.
 * Multi-byte fields are little-endian, as in GGUF: like ggml we read them in host order,
 * so a big-endian host would need byte swaps here.
 *
 * Kernel naming: ponder_<type>_to_float (dequantize), ponder_<type>_from_float (reference
 * quantizer), ponder_vec_dot_<weight>_<activation>. All take a block-aligned n.
 */
#ifndef PONDER_TENSOR_QUANTS_H
#define PONDER_TENSOR_QUANTS_H

#include "ponder/tensor.h"

#include <assert.h>

#define PONDER_QK 32     /* elements per block of the 32-wide types (QK4_0 ... QK8_1, QK4_NL) */
#define PONDER_QK_K 256  /* elements per K-quant super-block (QK_K) */
#define PONDER_GROUP_MAX_EPS 1e-15f /* ggml-quants.c GROUP_MAX_EPS: a group this small is all zero */

/* The block scales' f16 → f32 in the scalar kernels (one definition for quants.c and
 * quants_k.c; the x86 files use the F16C instruction instead). */
static inline float f16(ponder_f16 h)
{
    return ponder_f16_to_f32(h);
}

/* ---- 32-element blocks ---- */
typedef struct {
    ponder_f16 d;           /* scale */
    uint8_t qs[PONDER_QK / 2]; /* nibbles: element j in low half of qs[j], j+16 in the high half */
} ponder_block_q4_0;
static_assert(sizeof(ponder_block_q4_0) == 18, "wrong q4_0 block size");

typedef struct {
    ponder_f16 d, m;        /* x = d*q + m */
    uint8_t qs[PONDER_QK / 2];
} ponder_block_q4_1;
static_assert(sizeof(ponder_block_q4_1) == 20, "wrong q4_1 block size");

typedef struct {
    ponder_f16 d;
    uint8_t qh[4];          /* 5th bit of element j is bit j of this u32 */
    uint8_t qs[PONDER_QK / 2];
} ponder_block_q5_0;
static_assert(sizeof(ponder_block_q5_0) == 22, "wrong q5_0 block size");

typedef struct {
    ponder_f16 d, m;
    uint8_t qh[4];
    uint8_t qs[PONDER_QK / 2];
} ponder_block_q5_1;
static_assert(sizeof(ponder_block_q5_1) == 24, "wrong q5_1 block size");

typedef struct {
    ponder_f16 d;
    int8_t qs[PONDER_QK];
} ponder_block_q8_0;
static_assert(sizeof(ponder_block_q8_0) == 34, "wrong q8_0 block size");

typedef struct {
    ponder_f16 d;
    ponder_f16 s;           /* d * sum(qs), so Q4_1/Q5_1 dots can fold in their min */
    int8_t qs[PONDER_QK];
} ponder_block_q8_1;
static_assert(sizeof(ponder_block_q8_1) == 36, "wrong q8_1 block size");

typedef struct {
    ponder_f16 d;
    uint8_t qs[PONDER_QK / 2]; /* indices into ponder_kvalues_iq4nl */
} ponder_block_iq4_nl;
static_assert(sizeof(ponder_block_iq4_nl) == 18, "wrong iq4_nl block size");

/* ---- 256-element K-quant super-blocks ---- */
typedef struct {
    uint8_t scales[PONDER_QK_K / 16]; /* per 16: low nibble scale, high nibble min */
    uint8_t qs[PONDER_QK_K / 4];      /* 2-bit quants */
    ponder_f16 d, dmin;
} ponder_block_q2_K;
static_assert(sizeof(ponder_block_q2_K) == 84, "wrong q2_K block size");

typedef struct {
    uint8_t hmask[PONDER_QK_K / 8];   /* high bit: set means +0, clear means -4 */
    uint8_t qs[PONDER_QK_K / 4];      /* low 2 bits */
    uint8_t scales[12];               /* 16 6-bit scales, biased by 32 */
    ponder_f16 d;
} ponder_block_q3_K;
static_assert(sizeof(ponder_block_q3_K) == 110, "wrong q3_K block size");

typedef struct {
    ponder_f16 d, dmin;
    uint8_t scales[12];               /* 8 6-bit scales and 8 6-bit mins (get_scale_min_k4) */
    uint8_t qs[PONDER_QK_K / 2];
} ponder_block_q4_K;
static_assert(sizeof(ponder_block_q4_K) == 144, "wrong q4_K block size");

typedef struct {
    ponder_f16 d, dmin;
    uint8_t scales[12];
    uint8_t qh[PONDER_QK_K / 8];
    uint8_t qs[PONDER_QK_K / 2];
} ponder_block_q5_K;
static_assert(sizeof(ponder_block_q5_K) == 176, "wrong q5_K block size");

typedef struct {
    uint8_t ql[PONDER_QK_K / 2];      /* low 4 bits */
    uint8_t qh[PONDER_QK_K / 4];      /* high 2 bits */
    int8_t scales[PONDER_QK_K / 16];
    ponder_f16 d;
} ponder_block_q6_K;
static_assert(sizeof(ponder_block_q6_K) == 210, "wrong q6_K block size");

typedef struct {
    float d;                          /* float, not f16: activations only, never stored in files */
    int8_t qs[PONDER_QK_K];
    int16_t bsums[PONDER_QK_K / 16];  /* sum of each 16 qs, for the K-quant min corrections */
} ponder_block_q8_K;
static_assert(sizeof(ponder_block_q8_K) == 292, "wrong q8_K block size");

/* The 16 non-linear levels of IQ4_NL (ggml-common.h kvalues_iq4nl). */
extern const int8_t ponder_kvalues_iq4nl[16];

/* ---- float types (floats.c) ---- */
void ponder_f32_to_float(const void *src, float *dst, int64_t n);
void ponder_f32_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_f32(int64_t n, float *out, const void *x, const void *y);
void ponder_f16_to_float(const void *src, float *dst, int64_t n);
void ponder_f16_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_f16_f16(int64_t n, float *out, const void *x, const void *y);
void ponder_bf16_to_float(const void *src, float *dst, int64_t n);
void ponder_bf16_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_bf16(int64_t n, float *out, const void *x, const void *y);

/* ---- 32-element block types (quants.c) ---- */
void ponder_q4_0_to_float(const void *src, float *dst, int64_t n);
void ponder_q4_0_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q4_0_q8_0(int64_t n, float *out, const void *x, const void *y);
void ponder_q4_1_to_float(const void *src, float *dst, int64_t n);
void ponder_q4_1_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q4_1_q8_1(int64_t n, float *out, const void *x, const void *y);
void ponder_q5_0_to_float(const void *src, float *dst, int64_t n);
void ponder_q5_0_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q5_0_q8_0(int64_t n, float *out, const void *x, const void *y);
void ponder_q5_1_to_float(const void *src, float *dst, int64_t n);
void ponder_q5_1_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q5_1_q8_1(int64_t n, float *out, const void *x, const void *y);
void ponder_q8_0_to_float(const void *src, float *dst, int64_t n);
void ponder_q8_0_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q8_0_q8_0(int64_t n, float *out, const void *x, const void *y);
void ponder_q8_1_to_float(const void *src, float *dst, int64_t n);
void ponder_q8_1_from_float(const float *src, void *dst, int64_t n);
void ponder_iq4_nl_to_float(const void *src, float *dst, int64_t n);
void ponder_iq4_nl_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_iq4_nl_q8_0(int64_t n, float *out, const void *x, const void *y);

/* ---- K-quants (quants_k.c) ---- */
void ponder_q2_K_to_float(const void *src, float *dst, int64_t n);
void ponder_q2_K_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q2_K_q8_K(int64_t n, float *out, const void *x, const void *y);
void ponder_q3_K_to_float(const void *src, float *dst, int64_t n);
void ponder_q3_K_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q3_K_q8_K(int64_t n, float *out, const void *x, const void *y);
void ponder_q4_K_to_float(const void *src, float *dst, int64_t n);
void ponder_q4_K_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q4_K_q8_K(int64_t n, float *out, const void *x, const void *y);
void ponder_q5_K_to_float(const void *src, float *dst, int64_t n);
void ponder_q5_K_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q5_K_q8_K(int64_t n, float *out, const void *x, const void *y);
void ponder_q6_K_to_float(const void *src, float *dst, int64_t n);
void ponder_q6_K_from_float(const float *src, void *dst, int64_t n);
void ponder_vec_dot_q6_K_q8_K(int64_t n, float *out, const void *x, const void *y);
void ponder_q8_K_to_float(const void *src, float *dst, int64_t n);
void ponder_q8_K_from_float(const float *src, void *dst, int64_t n);

/* ggml's nearest_int: round half to even through the float adder. Exact for
 * |f| <= 4194303 (2^22 - 1); larger or non-finite inputs give a wrong but defined int.
 * Shared by the K-quants and IQ4_NL so their choices match ggml bit for bit. */
static inline int ponder_nearest_int(float f)
{
    union { float f; int32_t i; } u;
    u.f = f + 12582912.f; /* 1.5 * 2^23: puts the integer part in the low mantissa bits */
    return (u.i & 0x007fffff) - 0x00400000;
}

#endif /* PONDER_TENSOR_QUANTS_H */
