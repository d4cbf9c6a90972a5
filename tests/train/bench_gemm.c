/*
 * bench_gemm.c — the trainer's F32 matrix product alone, at the System 2 shapes: GFLOP/s and
 * the share of the measured 1-core FMA peak of the path it takes. Timed in thread CPU time
 * (best of 5 × 50 calls, hot caches, one thread), so a busy machine changes little.
 * Not a test: `build/release/tests/train/bench_train_gemm [auto|avx2|scalar]`.
 */
#include "train/train_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ponder/tensor.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    ponder_error err;
    if (ponder_tensor_force_isa(argc > 1 ? argv[1] : "auto", &err) != PONDER_OK) {
        fprintf(stderr, "bench_train_gemm: %s\n", err.msg);
        return 1;
    }
    /* M, N, K, A transposed (the dW product): the products of a 108-token sequence */
    static const int shapes[][4] = {{108, 704, 256, 0}, {108, 256, 704, 0}, {108, 256, 256, 0},
                                    {108, 512, 256, 0}, {256, 256, 108, 1}, {704, 256, 108, 1}};
    const int path = tr_gemm_path();
    const double peak = path == 2 ? tr_peak_flops_avx512() : path == 1 ? tr_peak_flops_avx2() : 0.0;
    printf("path %s, 1-core FMA peak %.1f GFLOP/s\n", tr_gemm_path_name(), peak / 1e9);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        const bool tr = shapes[s][3];
        float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)K * N);
        float *C = malloc(sizeof(float) * (size_t)M * N);
        if (!A || !B || !C)
            return 1;
        for (int i = 0; i < M * K; i++)
            A[i] = (float)(i % 7) * 0.1f;
        for (int i = 0; i < K * N; i++)
            B[i] = (float)(i % 5) * 0.1f;
        for (int i = 0; i < M * N; i++)
            C[i] = 0.0f;
        const tr_gemm_args g = {.C = C, .A = A, .B = B, .M = M, .N = N, .K = K, .ldc = N, .ldb = N,
                                .sam = tr ? 1 : K, .sak = tr ? M : 1, .accumulate = tr};
        double best = 1e30;
        for (int r = 0; r < 5; r++) {
            const double t0 = cpu_s();
            for (int i = 0; i < 50; i++)
                tr_gemm(&g, NULL);
            const double dt = (cpu_s() - t0) / 50;
            best = dt < best ? dt : best;
        }
        const double f = 2.0 * M * N * K / best;
        printf("M %4d N %4d K %4d%s: %6.1f GFLOP/s", M, N, K, tr ? " (dW: A transposed)" : "", f / 1e9);
        if (peak > 0)
            printf(" = %.0f %% of peak", 100.0 * f / peak);
        printf("\n");
        free(A), free(B), free(C);
    }
    return 0;
}
