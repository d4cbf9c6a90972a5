/*
 * gemm_avx512.c — the trainer's F32 matrix product on AVX-512F (this file only is built
 * with -mavx512f; ops.c calls it after checking the CPU path).
 *
 * C (M, N) [+]= A . B as tr_gemm_args describes. Work goes by panels of 32 columns: the
 * panel's rows of B are packed, KC at a time, into a contiguous zero-padded buffer
 * (KC x 32 floats = 32 KB, inside L1), so the hot loop reads B without the cache-set
 * conflicts a power-of-two row stride causes, and every row tile of A streams past it.
 * Register tile: 8 rows x 32 columns = 16 zmm accumulators (FMA latency 4 x 2 ports x 2),
 * 2 B loads and 8 A broadcasts per 16 FMAs. Edges use masks, so any N and M run here.
 * Each element of C is summed in the same order whatever panel order or thread runs it:
 * results do not depend on the thread count.
 */
#include "train/train_internal.h"

#include <immintrin.h>
#include <time.h>

#define KC 256 /* rows of B per packed block */

static inline __attribute__((always_inline)) void tile(int R, float *C, size_t ldc, const float *A, size_t sam,
                                                       size_t sak, const float *Bp, int kc, bool load_c,
                                                       __mmask16 m0, __mmask16 m1)
{
    __m512 c[8][2];
    for (int r = 0; r < R; r++) {
        c[r][0] = load_c ? _mm512_maskz_loadu_ps(m0, C + r * ldc) : _mm512_setzero_ps();
        c[r][1] = load_c ? _mm512_maskz_loadu_ps(m1, C + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(Bp + (size_t)k * 32), b1 = _mm512_load_ps(Bp + (size_t)k * 32 + 16);
        const float *a = A + (size_t)k * sak;
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(a[r * sam]);
            c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(C + r * ldc, m0, c[r][0]);
        _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c[r][1]);
    }
}

#define TILE_FN(R)                                                                                                  \
    static void tile_##R(float *C, size_t ldc, const float *A, size_t sam, size_t sak, const float *Bp, int kc,    \
                         bool load_c, __mmask16 m0, __mmask16 m1)                                                   \
    {                                                                                                               \
        tile(R, C, ldc, A, sam, sak, Bp, kc, load_c, m0, m1);                                                       \
    }
TILE_FN(1)
TILE_FN(2)
TILE_FN(3)
TILE_FN(4)
TILE_FN(5)
TILE_FN(6)
TILE_FN(7)
TILE_FN(8)

typedef void (*tile_fn)(float *, size_t, const float *, size_t, size_t, const float *, int, bool, __mmask16,
                        __mmask16);
static const tile_fn TILES[9] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6, tile_7, tile_8};

/* B rows [k0, k0+kc) of columns [n, n+w) into Bp (kc x 32), zero beyond w. */
static void pack_b(float *Bp, const float *B, size_t ldb, int k0, int kc, int n, int w)
{
    const __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
    const __mmask16 m1 = w >= 32 ? 0xFFFF : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1);
    for (int k = 0; k < kc; k++) {
        const float *src = B + (size_t)(k0 + k) * ldb + n;
        _mm512_store_ps(Bp + (size_t)k * 32, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(Bp + (size_t)k * 32 + 16, _mm512_maskz_loadu_ps(m1, src + 16));
    }
}

void tr_gemm_avx512_panel(const tr_gemm_args *g, int panel)
{
    _Alignas(64) float Bp[KC * 32];
    const size_t ldc = (size_t)g->ldc, sam = (size_t)g->sam, sak = (size_t)g->sak;
    const int n = panel * 32, w = g->N - n < 32 ? g->N - n : 32;
    const __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
    const __mmask16 m1 = w >= 32 ? 0xFFFF : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1);
    if (g->K == 0 && !g->accumulate) { /* an empty sum: zeros */
        for (int m = 0; m < g->M; m++) {
            _mm512_mask_storeu_ps(g->C + (size_t)m * ldc + n, m0, _mm512_setzero_ps());
            _mm512_mask_storeu_ps(g->C + (size_t)m * ldc + n + 16, m1, _mm512_setzero_ps());
        }
        return;
    }
    for (int k0 = 0; k0 < g->K; k0 += KC) {
        const int kc = g->K - k0 < KC ? g->K - k0 : KC;
        pack_b(Bp, g->B, (size_t)g->ldb, k0, kc, n, w);
        const bool load_c = g->accumulate || k0 > 0;
        const float *A = g->A + (size_t)k0 * sak;
        for (int m = 0; m < g->M; m += 8) {
            const int r = g->M - m < 8 ? g->M - m : 8;
            TILES[r](g->C + (size_t)m * ldc + n, ldc, A + (size_t)m * sam, sam, sak, Bp, kc, load_c, m0, m1);
        }
    }
}

/* The same register-only loop as peak_avx2.c, on 16 lanes. */
double tr_peak_flops_avx512(void)
{
    volatile float seed = 0.999999f;
    const __m512 a = _mm512_set1_ps(seed), b = _mm512_set1_ps(1e-7f * seed);
    __m512 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_mul_ps(b, _mm512_set1_ps((float)(i + 1)));
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) { /* best of three, in thread CPU time: the machine is shared */
        struct timespec t0, t1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        for (long it = 0; it < 1000000L; it++)
            for (int i = 0; i < 12; i++)
                acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        const double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        const double f = 1e6 * 12 * 16 * 2 / (dt > 0 ? dt : 1e-9);
        best = f > best ? f : best;
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, acc[i]);
    seed = _mm512_reduce_add_ps(s); /* keeps the loop alive */
    return best;
}
