/*
 * kernels.c — micro-benchmark of the tensor kernels (bench_kernels; not a test).
 *
 *   bench_kernels [--dot] [--matmul] [--model] [--isa NAME] [--quick] [--only MODEL] [--pp] [--tokens LIST]
 *   (--only F16|Q8_0|Q4_K_M limits --matmul and --model to one model file; --pp to the 512-token
 *   products; --tokens 1,8 sets the token counts of --matmul and --model, default 1,512)
 *
 * --dot: vec_dot of every supported type on every kernel path this CPU runs, in GB/s of
 *   weights and GFLOP/s (2 per multiply-add), once with the weights in L2 (256 KiB,
 *   reused) and once streamed from memory (a 256 MiB ring, as token generation reads a
 *   model). --matmul: ponder_matmul on the SmolLM2-135M shapes (n_cols x n_rows:
 *   576x576 Q/O, 576x192 K/V, 576x1536 gate/up, 1536x576 down, 576x49152 output) in the
 *   types of the F16, Q8_0 and Q4_K_M files, for 1 and 512 tokens and 1 and 2 threads,
 *   on the best path (or --isa). Single-token products cycle through enough copies of
 *   the matrix to defeat the caches. --model: every matrix product of one forward pass
 *   of SmolLM2-135M (30 layers with their own weights, Q/K/V and gate/up batched through
 *   ponder_matmul_multi as the forward pass does, output projection for the last token
 *   only, as llama-bench's pp) for 1 token (tg) and 512 tokens (pp), 1 and 2 threads:
 *   the matmul share of a token's time, attention and norms excluded. Batches of at most
 *   64 tokens are decode steps (8 chains, a speculative verify): the output projection
 *   runs for every token. Default: all.
 *   Each number is the best of 3 runs.
 */
#include "ponder/pool.h"
#include "ponder/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING_BYTES ((size_t)256 << 20)
#define L2_BYTES ((size_t)256 << 10)
#define MIN_SECONDS 0.15

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* n_rows quantized rows of n_cols random values, row after row. */
static uint8_t *random_rows(int t, int64_t n_cols, int64_t n_rows, size_t *row_bytes)
{
    ponder_type_row_bytes(t, n_cols, row_bytes, NULL);
    uint8_t *q = malloc(*row_bytes * (size_t)n_rows);
    float *f = malloc((size_t)n_cols * sizeof *f);
    if (!q || !f) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t r = 0; r < n_rows; r++) {
        /* quantizing is slow for big rings: make 64 distinct rows, then copy */
        if (r < 64) {
            for (int64_t i = 0; i < n_cols; i++)
                f[i] = 0.05f * frand();
            ponder_quantize_row(t, f, q + (size_t)r * *row_bytes, n_cols, NULL);
        } else {
            memcpy(q + (size_t)r * *row_bytes, q + (size_t)(r % 64) * *row_bytes, *row_bytes);
        }
    }
    free(f);
    return q;
}

/* ---- vec_dot ---- */

static void bench_dot(int t, int64_t n, size_t bytes_total, double *gbs, double *gflops)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    size_t rb;
    ponder_type_row_bytes(t, n, &rb, NULL);
    int64_t n_rows = (int64_t)(bytes_total / rb);
    if (n_rows < 1)
        n_rows = 1;
    uint8_t *w = random_rows(t, n, n_rows, &rb);
    size_t ab;
    ponder_type_row_bytes(tr->vec_dot_type, n, &ab, NULL);
    void *a = malloc(ab);
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = frand();
    ponder_quantize_row(tr->vec_dot_type, x, a, n, NULL);
    /* through ponder_matmul with one token and no pool: the dispatched vec_dot per row */
    const ponder_matrix m = {.type = (ponder_type)t, .n_cols = n, .n_rows = n_rows, .row_bytes = rb, .data = w};
    void *work = malloc(ponder_matmul_work_bytes(&m, 1));
    float *y = malloc((size_t)n_rows * sizeof *y);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int64_t calls = 0;
        const double t0 = now_s();
        double t1;
        do {
            ponder_matmul(&m, 1, x, y, work, false, NULL);
            calls++;
        } while ((t1 = now_s()) - t0 < MIN_SECONDS);
        const double per = (t1 - t0) / (double)calls;
        if (per < best)
            best = per;
    }
    *gbs = (double)rb * (double)n_rows / best * 1e-9;
    *gflops = 2.0 * (double)n * (double)n_rows / best * 1e-9;
    free(w);
    free(a);
    free(x);
    free(work);
    free(y);
}

static void run_dots(const char *only_isa, bool quick)
{
    const char *paths[] = {"scalar", "avx2", "avx512"};
    printf("## vec_dot (n = 3072 per row; GB/s of weights, GFLOP/s)\n\n");
    printf("| type | path | L2 GB/s | L2 GFLOP/s | memory GB/s | memory GFLOP/s |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        if (!ponder_type_is_supported(t))
            continue;
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            if (only_isa && strcmp(only_isa, paths[p]) != 0)
                continue;
            if (ponder_tensor_force_isa(paths[p], NULL) != PONDER_OK)
                continue;
            double g1, f1, g2 = 0, f2 = 0;
            bench_dot(t, 3072, L2_BYTES, &g1, &f1);
            if (!quick)
                bench_dot(t, 3072, RING_BYTES / 2, &g2, &f2);
            printf("| %s | %s | %.1f | %.1f | %.1f | %.1f |\n", ponder_type_name(t), paths[p], g1, f1, g2, f2);
            fflush(stdout);
        }
    }
    ponder_tensor_force_isa(NULL, NULL);
    printf("\n");
}

/* ---- matmul on the SmolLM2-135M shapes ---- */

typedef struct {
    const char *what;
    int64_t n_cols, n_rows;
} shape;

static const shape SHAPES[] = {
    {"attn_q/o", 576, 576}, {"attn_k/v", 576, 192}, {"ffn_gate/up", 576, 1536},
    {"ffn_down", 1536, 576}, {"output", 576, 49152},
};

/* The weight type of a shape in each model file (synth_gguf.py; Q4_K_M falls back to
 * Q5_0 where 576 columns are not a multiple of 256, and keeps the output in Q8_0). */
static int model_type(const char *model, const shape *s)
{
    if (strcmp(model, "F16") == 0)
        return PONDER_TYPE_F16;
    if (strcmp(model, "Q8_0") == 0)
        return PONDER_TYPE_Q8_0;
    if (s->n_rows == 49152)
        return PONDER_TYPE_Q8_0;
    return s->n_cols % 256 == 0 ? PONDER_TYPE_Q4_K : PONDER_TYPE_Q5_0;
}

/* A matrix over data, repacked as a model load does (where the path has a layout). */
static ponder_matrix bench_matrix(int t, int64_t n_cols, int64_t n_rows, size_t row_bytes, const void *data)
{
    ponder_matrix m = {.type = (ponder_type)t, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = row_bytes, .data = data};
    if (ponder_matrix_pack(&m, false, NULL) != PONDER_OK) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return m;
}

static void bench_matmul(int t, const shape *s, int64_t n_tokens, ponder_pool *pool, double *ms, double *gbs,
                         double *gflops)
{
    size_t rb;
    ponder_type_row_bytes(t, s->n_cols, &rb, NULL);
    const size_t mat_bytes = rb * (size_t)s->n_rows;
    /* a decode step (up to 64 tokens): a ring of copies larger than the caches; a prompt:
     * compute-bound */
    int n_copies = n_tokens <= 64 ? (int)(RING_BYTES / mat_bytes) : 1;
    if (n_copies < 2 && n_tokens <= 64)
        n_copies = 2;
    uint8_t *w = random_rows(t, s->n_cols, s->n_rows * n_copies, &rb);
    float *x = malloc((size_t)(n_tokens * s->n_cols) * sizeof *x);
    float *y = malloc((size_t)(n_tokens * s->n_rows) * sizeof *y);
    for (int64_t i = 0; i < n_tokens * s->n_cols; i++)
        x[i] = frand();
    ponder_matrix *mats = malloc(sizeof *mats * (size_t)n_copies);
    for (int c = 0; c < n_copies; c++)
        mats[c] = bench_matrix(t, s->n_cols, s->n_rows, rb, w + (size_t)c * mat_bytes);
    void *work = malloc(ponder_matmul_work_bytes(&mats[0], n_tokens));
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        int64_t calls = 0;
        const double t0 = now_s();
        double t1;
        do {
            ponder_matmul(&mats[calls % n_copies], n_tokens, x, y, work, false, pool);
            calls++;
        } while ((t1 = now_s()) - t0 < MIN_SECONDS);
        const double per = (t1 - t0) / (double)calls;
        if (per < best)
            best = per;
    }
    *ms = best * 1e3;
    *gbs = (double)mat_bytes / best * 1e-9;
    *gflops = 2.0 * (double)s->n_cols * (double)s->n_rows * (double)n_tokens / best * 1e-9;
    for (int c = 0; c < n_copies; c++)
        ponder_matrix_unpack(&mats[c]);
    free(mats);
    free(w);
    free(x);
    free(y);
    free(work);
}

static const char *g_only; /* --only: one model file */
static bool g_pp;          /* --pp: prompt-sized products only */
#define MAX_TOKEN_COUNTS 8
static int64_t g_tokens[MAX_TOKEN_COUNTS] = {1, 512}; /* --tokens */
static int g_n_tokens = 2;

static void run_matmuls(const char *isa, bool quick)
{
    if (isa && ponder_tensor_force_isa(isa, NULL) != PONDER_OK) {
        fprintf(stderr, "path %s is not available here\n", isa);
        return;
    }
    printf("## matmul, SmolLM2-135M shapes, path %s\n\n", ponder_cpu_isa());
    printf("| model | matrix (cols x rows) | type | tokens | threads | ms | GB/s | GFLOP/s |\n");
    printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    const char *models[] = {"F16", "Q8_0", "Q4_K_M"};
    const int64_t *tokens = g_tokens;
    ponder_pool *pools[2] = {NULL, NULL};
    if (ponder_pool_create(1, &pools[0], NULL) != PONDER_OK || ponder_pool_create(2, &pools[1], NULL) != PONDER_OK) {
        fprintf(stderr, "cannot create thread pools\n");
        exit(1);
    }
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        if (g_only && strcmp(g_only, models[mi]) != 0)
            continue;
        for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
            const shape *s = &SHAPES[si];
            const int t = model_type(models[mi], s);
            for (int ti = 0; ti < g_n_tokens; ti++) {
                if ((quick && tokens[ti] > 1 && s->n_rows > 2000) || (g_pp && tokens[ti] == 1))
                    continue;
                for (int th = 0; th < 2; th++) {
                    double ms, gbs, gf;
                    bench_matmul(t, s, tokens[ti], pools[th], &ms, &gbs, &gf);
                    printf("| %s | %s %lldx%lld | %s | %lld | %d | %.3f | %.1f | %.1f |\n", models[mi], s->what,
                           (long long)s->n_cols, (long long)s->n_rows, ponder_type_name(t), (long long)tokens[ti],
                           th + 1, ms, gbs, gf);
                    fflush(stdout);
                }
            }
        }
    }
    ponder_pool_free(pools[0]);
    ponder_pool_free(pools[1]);
    ponder_tensor_force_isa(NULL, NULL);
    printf("\n");
}

/* ---- one forward pass worth of products ---- */

typedef struct {
    uint8_t *wq, *wk, *wv, *wo, *wg, *wu, *wd;
    ponder_matrix mq, mk, mv, mo, mg, mu, md; /* repacked as a model load does */
} layer_mats;


static void run_model(const char *isa)
{
    if (isa && ponder_tensor_force_isa(isa, NULL) != PONDER_OK) {
        fprintf(stderr, "path %s is not available here\n", isa);
        return;
    }
    enum { N_LAYER = 30, DIM = 576, KV = 192, FF = 1536, VOCAB = 49152 };
    printf("## SmolLM2-135M matrix products per forward pass, path %s\n\n", ponder_cpu_isa());
    printf("| model | tokens | threads | ms per pass | tokens/s (matmul only) |\n| --- | ---: | ---: | ---: | ---: |\n");
    const char *models[] = {"F16", "Q8_0", "Q4_K_M"};
    ponder_pool *pools[2] = {NULL, NULL};
    if (ponder_pool_create(1, &pools[0], NULL) != PONDER_OK || ponder_pool_create(2, &pools[1], NULL) != PONDER_OK)
        exit(1);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        const shape sq = {"q", DIM, DIM}, sk = {"k", DIM, KV}, sg = {"g", DIM, FF}, sd = {"d", FF, DIM},
                    so = {"o", DIM, VOCAB};
        const int tq = model_type(models[mi], &sq), tk = model_type(models[mi], &sk), tg = model_type(models[mi], &sg),
                  td = model_type(models[mi], &sd), to = model_type(models[mi], &so);
        size_t rq, rk, rg, rd, ro;
        layer_mats L[N_LAYER];
        for (int il = 0; il < N_LAYER; il++) {
            L[il].wq = random_rows(tq, DIM, DIM, &rq);
            L[il].wk = random_rows(tk, DIM, KV, &rk);
            L[il].wv = random_rows(tk, DIM, KV, &rk);
            L[il].wo = random_rows(tq, DIM, DIM, &rq);
            L[il].wg = random_rows(tg, DIM, FF, &rg);
            L[il].wu = random_rows(tg, DIM, FF, &rg);
            L[il].wd = random_rows(td, FF, DIM, &rd);
        }
        uint8_t *wo = random_rows(to, DIM, VOCAB, &ro);
        for (int il = 0; il < N_LAYER; il++) {
            L[il].mq = bench_matrix(tq, DIM, DIM, rq, L[il].wq);
            L[il].mk = bench_matrix(tk, DIM, KV, rk, L[il].wk);
            L[il].mv = bench_matrix(tk, DIM, KV, rk, L[il].wv);
            L[il].mo = bench_matrix(tq, DIM, DIM, rq, L[il].wo);
            L[il].mg = bench_matrix(tg, DIM, FF, rg, L[il].wg);
            L[il].mu = bench_matrix(tg, DIM, FF, rg, L[il].wu);
            L[il].md = bench_matrix(td, FF, DIM, rd, L[il].wd);
        }
        ponder_matrix mout = bench_matrix(to, DIM, VOCAB, ro, wo);
        for (int ti = 0; ti < g_n_tokens; ti++) {
            const int64_t nt = g_tokens[ti];
            if (g_only && strcmp(g_only, models[mi]) != 0)
                continue;
            const int64_t n_out = nt <= 64 ? nt : 1; /* a decode step: every token's logits */
            float *x = malloc((size_t)(nt * FF) * sizeof *x);
            float *y1 = malloc((size_t)(nt * FF) * sizeof *y1), *y2 = malloc((size_t)(nt * FF) * sizeof *y2);
            float *y3 = malloc((size_t)(nt * DIM) * sizeof *y3);
            float *logits = malloc((size_t)(n_out * VOCAB) * sizeof *logits);
            for (int64_t i = 0; i < nt * FF; i++)
                x[i] = frand();
            size_t work_bytes = 0;
            const ponder_matrix *probe[] = {&L[0].mq, &L[0].mg, &L[0].md, &mout};
            for (int k = 0; k < 4; k++) {
                const size_t b = ponder_matmul_work_bytes(probe[k], nt);
                work_bytes = b > work_bytes ? b : work_bytes;
            }
            work_bytes = 2 * work_bytes + 4096; /* two activation types at most per batch */
            void *work = malloc(work_bytes);
            for (int th = 0; th < 2; th++) {
                double best = 1e30;
                const int reps = nt <= 64 ? 20 : 1;
                for (int rep = 0; rep < 3; rep++) {
                    const double t0 = now_s();
                    for (int it = 0; it < reps; it++) {
                        for (int il = 0; il < N_LAYER; il++) {
                            const layer_mats *l = &L[il];
                            const ponder_matmul_job qkv[3] = {{&l->mq, y1}, {&l->mk, y2}, {&l->mv, y3}};
                            ponder_matmul_multi(qkv, 3, nt, x, work, false, pools[th]);
                            ponder_matmul(&l->mo, nt, x, y1, work, false, pools[th]);
                            const ponder_matmul_job gu[2] = {{&l->mg, y1}, {&l->mu, y2}};
                            ponder_matmul_multi(gu, 2, nt, x, work, false, pools[th]);
                            ponder_matmul(&l->md, nt, x, y3, work, false, pools[th]);
                        }
                        ponder_matmul(&mout, n_out, x, logits, work, false, pools[th]);
                    }
                    const double per = (now_s() - t0) / reps;
                    if (per < best)
                        best = per;
                }
                printf("| %s | %lld | %d | %.2f | %.1f |\n", models[mi], (long long)nt, th + 1, best * 1e3,
                       (double)nt / best);
                fflush(stdout);
            }
            free(work);
            free(x);
            free(y1);
            free(y2);
            free(y3);
            free(logits);
        }
        ponder_matrix_unpack(&mout);
        for (int il = 0; il < N_LAYER; il++) {
            ponder_matrix *ms[] = {&L[il].mq, &L[il].mk, &L[il].mv, &L[il].mo, &L[il].mg, &L[il].mu, &L[il].md};
            for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++)
                ponder_matrix_unpack(ms[k]);
            free(L[il].wq);
            free(L[il].wk);
            free(L[il].wv);
            free(L[il].wo);
            free(L[il].wg);
            free(L[il].wu);
            free(L[il].wd);
        }
        free(wo);
    }
    ponder_pool_free(pools[0]);
    ponder_pool_free(pools[1]);
    ponder_tensor_force_isa(NULL, NULL);
    printf("\n");
}

int main(int argc, char **argv)
{
    bool dot = false, mm = false, model = false, quick = false;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dot") == 0)
            dot = true;
        else if (strcmp(argv[i], "--matmul") == 0)
            mm = true;
        else if (strcmp(argv[i], "--model") == 0)
            model = true;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc)
            isa = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            g_only = argv[++i];
        else if (strcmp(argv[i], "--pp") == 0)
            g_pp = true;
        else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) {
            char *p = argv[++i], *end;
            for (g_n_tokens = 0; *p && g_n_tokens < MAX_TOKEN_COUNTS; p = *end == ',' ? end + 1 : end) {
                const long v = strtol(p, &end, 10);
                if (end == p || v < 1 || v > 4096) {
                    fprintf(stderr, "--tokens: a comma-separated list of 1..4096\n");
                    return 2;
                }
                g_tokens[g_n_tokens++] = v;
            }
        } else {
            fprintf(stderr, "usage: %s [--dot] [--matmul] [--model] [--isa NAME] [--quick] [--only MODEL] [--pp] [--tokens LIST]\n", argv[0]);
            return 2;
        }
    }
    if (!dot && !mm && !model)
        dot = mm = model = true;
    printf("# bench_kernels: best path on this CPU: %s\n\n", ponder_cpu_isa());
    if (dot)
        run_dots(isa, quick);
    if (mm)
        run_matmuls(isa, quick);
    if (model)
        run_model(isa);
    return 0;
}
