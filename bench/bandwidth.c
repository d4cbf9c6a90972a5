/*
 * bandwidth.c — memory-bandwidth probe (STREAM-style copy, triad and read), 1..N threads.
 *
 * Token generation of a memory-bound model cannot beat bytes-of-weights ÷ read bandwidth,
 * so `ponder bench` results are stated as a fraction of what this probe measures.
 * Method (the same as shared/reference/BASELINE.md's probe): three arrays of 256 MiB of
 * doubles, each thread works on a contiguous 1/T slice, every test runs 10 times and the
 * best of the last 9 counts; bytes are counted without write-allocate traffic.
 *
 *   bandwidth [-t 1,2] [--mib 256] [--json]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TEST_COPY, TEST_TRIAD, TEST_READ, TEST_COUNT };
static const char *TEST_NAMES[TEST_COUNT] = {"copy", "triad", "read"};
static const double TEST_ARRAYS[TEST_COUNT] = {2, 3, 1}; /* arrays touched, STREAM counting */

typedef struct job {
    double *a, *b, *c;
    size_t begin, end;
    int test;
    double sink;
    pthread_barrier_t *start;
} job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *run_slice(void *p)
{
    job *j = p;
    pthread_barrier_wait(j->start);
    size_t n = j->end - j->begin;
    double *a = j->a + j->begin, *b = j->b + j->begin, *c = j->c + j->begin;
    switch (j->test) {
    case TEST_COPY:
        memcpy(a, b, n * sizeof(double));
        break;
    case TEST_TRIAD:
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + 3.0 * c[i];
        break;
    case TEST_READ: {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            s0 += b[i];
            s1 += b[i + 1];
            s2 += b[i + 2];
            s3 += b[i + 3];
        }
        for (; i < n; i++)
            s0 += b[i];
        j->sink = s0 + s1 + s2 + s3;
        break;
    }
    }
    return NULL;
}

/* GB/s of one test at nth threads: best of runs 2..10 */
static double measure(double *a, double *b, double *c, size_t n, int test, int nth)
{
    double best = 0;
    for (int rep = 0; rep < 10; rep++) {
        pthread_t th[64];
        job jobs[64];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)nth + 1);
        for (int t = 0; t < nth; t++) {
            jobs[t] = (job){a, b, c, n * (size_t)t / (size_t)nth, n * (size_t)(t + 1) / (size_t)nth, test, 0, &start};
            pthread_create(&th[t], NULL, run_slice, &jobs[t]);
        }
        double t0 = now_s();
        pthread_barrier_wait(&start);
        for (int t = 0; t < nth; t++)
            pthread_join(th[t], NULL);
        double dt = now_s() - t0;
        pthread_barrier_destroy(&start);
        double gbs = TEST_ARRAYS[test] * (double)n * sizeof(double) / dt / 1e9;
        if (rep > 0 && gbs > best)
            best = gbs;
    }
    return best;
}

int main(int argc, char **argv)
{
    int threads[16] = {1, 2};
    int n_threads = 2;
    size_t mib = 256;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            n_threads = 0;
            for (char *s = strtok(argv[++i], ","); s && n_threads < 16; s = strtok(NULL, ","))
                threads[n_threads++] = atoi(s);
        } else if (!strcmp(argv[i], "--mib") && i + 1 < argc) {
            mib = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "usage: bandwidth [-t 1,2] [--mib 256] [--json]\n");
            return 2;
        }
    }
    size_t n = mib * 1024 * 1024 / sizeof(double);
    double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double)), *c = malloc(n * sizeof(double));
    if (!a || !b || !c) {
        fprintf(stderr, "bandwidth: cannot allocate 3 x %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = 0;
        b[i] = (double)(i & 1023);
        c[i] = 1.0;
    }
    if (json)
        printf("[");
    for (int k = 0; k < n_threads; k++) {
        int nth = threads[k] < 1 ? 1 : threads[k] > 64 ? 64 : threads[k];
        double r[TEST_COUNT];
        for (int t = 0; t < TEST_COUNT; t++)
            r[t] = measure(a, b, c, n, t, nth);
        if (json)
            printf("%s{\"threads\":%d,\"copy_gbs\":%.2f,\"triad_gbs\":%.2f,\"read_gbs\":%.2f}", k ? "," : "", nth, r[0], r[1],
                   r[2]);
        else
            printf("threads %d: %s %.1f GB/s, %s %.1f GB/s, %s %.1f GB/s\n", nth, TEST_NAMES[0], r[0], TEST_NAMES[1], r[1],
                   TEST_NAMES[2], r[2]);
    }
    if (json)
        printf("]\n");
    free(a);
    free(b);
    free(c);
    return 0;
}
