/*
 * gemm_avx2.c — the trainer's F32 matrix product on AVX2+FMA (this file only is built
 * with -mavx2 -mfma; ops.c calls it after checking the CPU path).
 *
 * C (M, N) [+]= A . B with B row-major (K, N) and A read through strides, so the three
 * products of a linear layer need no packing: forward Y = X . W^T reads the cached W^T,
 * dX = dY . W reads W, dW += dY^T . X reads dY transposed through its strides.
 * Register tile: 4 rows x 16 columns (8 accumulators, the FMA latency x 2 ports); the
 * B panel (K x 16) stays in L1/L2 while the rows of A stream past it.
 */
#include "train/train_internal.h"

#include <immintrin.h>

static inline __attribute__((always_inline)) void tile(int R, int NV, float *C, size_t ldc, const float *A,
                                                       size_t sam, size_t sak, const float *B, size_t ldb, int K,
                                                       bool acc)
{
    __m256 c[4][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            c[r][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b[2];
        for (int v = 0; v < NV; v++)
            b[v] = _mm256_loadu_ps(B + (size_t)k * ldb + 8 * v);
        for (int r = 0; r < R; r++) {
            const __m256 a = _mm256_broadcast_ss(A + r * sam + (size_t)k * sak);
            for (int v = 0; v < NV; v++)
                c[r][v] = _mm256_fmadd_ps(a, b[v], c[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            float *dst = C + r * ldc + 8 * v;
            _mm256_storeu_ps(dst, acc ? _mm256_add_ps(_mm256_loadu_ps(dst), c[r][v]) : c[r][v]);
        }
}

static void tile_4x16(float *C, size_t ldc, const float *A, size_t sam, size_t sak, const float *B, size_t ldb,
                      int K, bool acc)
{
    tile(4, 2, C, ldc, A, sam, sak, B, ldb, K, acc);
}
static void tile_1x16(float *C, size_t ldc, const float *A, size_t sam, size_t sak, const float *B, size_t ldb,
                      int K, bool acc)
{
    tile(1, 2, C, ldc, A, sam, sak, B, ldb, K, acc);
}
static void tile_4x8(float *C, size_t ldc, const float *A, size_t sam, size_t sak, const float *B, size_t ldb,
                     int K, bool acc)
{
    tile(4, 1, C, ldc, A, sam, sak, B, ldb, K, acc);
}
static void tile_1x8(float *C, size_t ldc, const float *A, size_t sam, size_t sak, const float *B, size_t ldb,
                     int K, bool acc)
{
    tile(1, 1, C, ldc, A, sam, sak, B, ldb, K, acc);
}

void tr_gemm_avx2(const tr_gemm_args *g, int n0, int n1)
{
    const size_t ldc = (size_t)g->ldc, ldb = (size_t)g->ldb, sam = (size_t)g->sam, sak = (size_t)g->sak;
    int n = n0;
    for (; n + 16 <= n1 || n + 8 <= n1; n += n + 16 <= n1 ? 16 : 8) {
        const bool wide = n + 16 <= n1;
        int m = 0;
        for (; m + 4 <= g->M; m += 4)
            (wide ? tile_4x16 : tile_4x8)(g->C + (size_t)m * ldc + n, ldc, g->A + (size_t)m * sam, sam, sak,
                                          g->B + n, ldb, g->K, g->accumulate);
        for (; m < g->M; m++)
            (wide ? tile_1x16 : tile_1x8)(g->C + (size_t)m * ldc + n, ldc, g->A + (size_t)m * sam, sam, sak,
                                          g->B + n, ldb, g->K, g->accumulate);
    }
    if (n < n1)
        tr_gemm_ref(g, n, n1);
}
