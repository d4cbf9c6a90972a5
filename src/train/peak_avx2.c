/*
 * peak_avx2.c — the single-core FMA peak the MFU figure is relative to. Built with
 * -mavx2 -mfma (only this file) and called only when the CPU has the AVX2 path.
 * Twelve independent 8-lane accumulators cover the FMA latency (4-5 cycles) times the
 * two FMA ports of current x86 cores, so the loop runs at the core's FMA throughput.
 */
#include "train/train_internal.h"

#include <time.h>

typedef float v8f __attribute__((vector_size(32)));
#define PEAK_ACC 12
#define PEAK_ITERS 2000000L /* 2e6 x 12 x 8 x 2 = 384 MFLOP, ~50 ms at 8 GFLOP/s */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tr_peak_flops_avx2(void)
{
    volatile float seed = 0.999999f;
    const float a0 = seed, b0 = 1e-7f * seed;
    const v8f a = {a0, a0, a0, a0, a0, a0, a0, a0}, b = {b0, b0, b0, b0, b0, b0, b0, b0};
    v8f acc[PEAK_ACC];
    for (int i = 0; i < PEAK_ACC; i++)
        acc[i] = b * (float)(i + 1);
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) { /* best of three, in thread CPU time: the machine is shared */
        const double t0 = now_s();
        for (long it = 0; it < PEAK_ITERS; it++)
            for (int i = 0; i < PEAK_ACC; i++)
                acc[i] = acc[i] * a + b; /* one vfmadd (-ffp-contract=fast) */
        const double dt = now_s() - t0;
        const double f = (double)PEAK_ITERS * PEAK_ACC * 8 * 2 / dt;
        best = f > best ? f : best;
    }
    float sink = 0.0f;
    for (int i = 0; i < PEAK_ACC; i++)
        for (int j = 0; j < 8; j++)
            sink += acc[i][j];
    seed = sink; /* keeps the loop alive */
    return best;
}
