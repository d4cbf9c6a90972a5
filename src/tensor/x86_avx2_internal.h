/*
 * x86_avx2_internal.h — the small vector helpers that x86_avx2.c's kernel files share
 * (horizontal sums, F16 conversions, nibble and bit spreading, the 8-bit dot step), kept
 * in one place so the float, Q8_0-family and K-quant files do not each carry a copy.
 *
 * Not a module header: only the x86_avx2.c translation unit includes it (through its
 * .inc files), compiled with the AVX2 flags of CMakeLists.txt. Everything here is static
 * inline, and dot_u8 follows PONDER_X86_VNNI, which x86_avxvnni.c and x86_avx512vnni.c
 * set before including x86_avx2.c: each of the three builds gets its own 8-bit dot step.
 */
#ifndef PONDER_TENSOR_X86_AVX2_INTERNAL_H
#define PONDER_TENSOR_X86_AVX2_INTERNAL_H

#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <immintrin.h>
#include <string.h>


#ifndef PONDER_X86_VNNI
#define PONDER_X86_VNNI 0
#endif

#define QK PONDER_QK
#define QK_K PONDER_QK_K
#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* How far ahead the single-row dots prefetch their weights. A token's weights stream
 * from memory once; the hardware prefetchers alone left ~30% of the bandwidth unused
 * (Q8_0 rows: 8.5 -> 12.5 GB/s on one Zen 3 core with this). */
#define PREFETCH_BYTES 1024

/* ---- helpers ---- */

/* Prefetches the cache lines PREFETCH_BYTES past [p, p + bytes). Prefetches never fault,
 * so running past the end of a row is harmless. */
ALWAYS_INLINE void prefetch_ahead(const void *p, size_t bytes)
{
    for (size_t off = 0; off < bytes; off += 64)
        _mm_prefetch((const char *)p + PREFETCH_BYTES + off, _MM_HINT_T0);
}

ALWAYS_INLINE float hsum_ps128(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE float hsum_ps(__m256 v)
{
    return hsum_ps128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

ALWAYS_INLINE int hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

ALWAYS_INLINE float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

ALWAYS_INLINE float f16s(ponder_f16 h)
{
    return _cvtsh_ss(h);
}

ALWAYS_INLINE ponder_f16 f16_of(float f)
{
    return (ponder_f16)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

ALWAYS_INLINE ponder_f16 load_f16(const uint8_t *p)
{
    ponder_f16 h;
    memcpy(&h, p, sizeof h);
    return h;
}

/* 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0..15), then the high ones. */
ALWAYS_INLINE __m256i nibbles32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/* Byte j = 0xff if bit j of the little-endian u32 at qh is set, else 0. */
ALWAYS_INLINE __m256i bits32(const uint8_t *qh)
{
    uint32_t u;
    memcpy(&u, qh, sizeof u);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)u),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    /* all bits set except bit j%8 of byte j: the OR is all-ones exactly when bit j is set */
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
}

/* Unsigned u (<= 128) times signed y (|y| <= 127), 4 adjacent products summed, as 8 int32. */
ALWAYS_INLINE __m256i dot_u8(__m256i u, __m256i y)
{
#if PONDER_X86_VNNI == 1
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, y);
#elif PONDER_X86_VNNI == 2
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
#endif
}

/* Sums of 4 adjacent products of signed x and signed y (y never -128: activations are
 * clamped to +-127), as 8 int32. The 8-bit products need an unsigned operand: |x| and
 * sign(x)*y. */
ALWAYS_INLINE __m256i dot_i8(__m256i x, __m256i y)
{
    return dot_u8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* Same, with x already split into |x| (ax) and kept for the sign. */
ALWAYS_INLINE __m256i dot_i8_abs(__m256i ax, __m256i x, __m256i y)
{
    return dot_u8(ax, _mm256_sign_epi8(y, x));
}

/* [sum p0, sum p1, sum p2, sum p3] within each 128-bit half */
ALWAYS_INLINE __m256i fold4(__m256i p0, __m256i p1, __m256i p2, __m256i p3)
{
    const __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    const __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

/* f16 scales of 4 blocks at p, p + stride, ... as floats */
ALWAYS_INLINE __m128 scales4(const uint8_t *p, size_t stride)
{
    __m128i h = _mm_cvtsi32_si128(load_f16(p));
    h = _mm_insert_epi16(h, load_f16(p + stride), 1);
    h = _mm_insert_epi16(h, load_f16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, load_f16(p + 3 * stride), 3);
    return _mm_cvtph_ps(h);
}

#endif /* PONDER_TENSOR_X86_AVX2_INTERNAL_H */
