/*
 * grammar.c — what grammar-constrained decoding costs per generated token.
 *
 *   bench_grammar -m MODEL.gguf --schema FILE.json [-n 256] [-r 5] [-t 2] [-p TEXT]
 *   bench_grammar -m MODEL.gguf --schema FILE.json --walk [-n 2000]
 *
 * Model mode: R rounds, each decoding n tokens greedily without a grammar (end of
 * generation ignored) and then with the schema's grammar (until it completes or n),
 * interleaved so a busy machine slows both alike; prints tg tokens/s of each. The
 * grammar's own cost per token is then measured by replaying each constrained run's
 * tokens through a fresh matcher (cold caches, as in the run): mask + accept per token,
 * mean and p99, plus what masking the logits in the sampler adds.
 * Walk mode: no model; random walks through the masks (tokens drawn uniformly from each
 * mask), timing every mask and accept — the worst case, as every state is new.
 */
#include "ponder/gen.h"
#include "ponder/gguf.h"
#include "ponder/grammar.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/sample.h"
#include "ponder/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* This thread's CPU time: the grammar's cost without the time other processes on a busy
 * machine take from it (wall-clock outliers here are preemptions, not work). */
static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *us, int n)
{
    if (n == 0)
        return;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += us[i];
    qsort(us, (size_t)n, sizeof *us, cmp_d);
    const int i99 = (int)(0.99 * (n - 1) + 0.5);
    printf("%-34s tokens %6d  mean %8.2f us  p50 %8.2f us  p99 %9.2f us  max %9.2f us\n", what, n, sum / n,
           us[n / 2], us[i99], us[n - 1]);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[n] = '\0';
        *len = (size_t)n;
    }
    return s;
}

/* Replays tokens through a fresh matcher as gen drew them (masks within the budget of
 * max_tokens): per-token mask + accept CPU times into us[]. */
static int replay(const ponder_grammar *g, const ponder_grammar_vocab *v, const ponder_token *t, int n,
                  int32_t max_tokens, double *us)
{
    ponder_grammar_matcher *m = NULL;
    ponder_error err;
    if (ponder_grammar_matcher_create(g, v, &m, &err) != PONDER_OK)
        return 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        const double t0 = cpu_us();
        const uint32_t *mask = ponder_grammar_matcher_mask_within(m, max_tokens - i, &err);
        const bool ok = mask && ponder_grammar_matcher_accept(m, t[i]);
        us[k++] = cpu_us() - t0;
        if (!ok)
            break;
    }
    ponder_grammar_matcher_free(m);
    return k;
}

static int walk(const ponder_grammar *g, const ponder_grammar_vocab *v, const ponder_tokenizer *tok, int n_max,
                double *us)
{
    ponder_grammar_matcher *m = NULL;
    ponder_error err;
    if (ponder_grammar_matcher_create(g, v, &m, &err) != PONDER_OK)
        return 0;
    const int32_t nv = ponder_tokenizer_n_vocab(tok);
    int32_t *allowed = malloc((size_t)nv * sizeof *allowed);
    uint64_t rng = 88172645463325252ULL;
    int k = 0;
    while (k < n_max) {
        const double t0 = cpu_us();
        const uint32_t *mask = ponder_grammar_matcher_mask(m, &err);
        const double t1 = cpu_us();
        int32_t na = 0;
        for (int32_t t = 0; t < nv; t++)
            if (mask[t >> 5] >> (t & 31) & 1u)
                allowed[na++] = t;
        if (na == 0)
            break;
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        const int32_t t = allowed[rng % (uint64_t)na];
        const double t2 = cpu_us();
        if (ponder_tokenizer_is_eog(tok, t)) {
            ponder_grammar_matcher_free(m);
            m = NULL;
            if (ponder_grammar_matcher_create(g, v, &m, &err) != PONDER_OK)
                break;
            continue;
        }
        ponder_grammar_matcher_accept(m, t);
        us[k++] = (t1 - t0) + (cpu_us() - t2);
    }
    ponder_grammar_matcher_free(m);
    free(allowed);
    return k;
}

typedef struct timing {
    double t_first, t_last;
} timing;

static void on_event(const ponder_gen_event *ev, void *user)
{
    timing *t = user;
    (void)ev;
    const double now = now_us();
    if (t->t_first == 0.0)
        t->t_first = now;
    t->t_last = now;
}

/* One greedy request of up to n tokens; tg tokens/s over the tokens after the first (the
 * first comes with the prompt), as ponder run reports generation. */
static double decode(ponder_gen *g, const ponder_token *prompt, int32_t n_prompt, int32_t n,
                     const ponder_grammar *gr, ponder_token **tokens, int32_t *n_tokens, ponder_finish *finish)
{
    timing t = { 0 };
    ponder_gen_request q = { 0 };
    q.prompt = prompt;
    q.n_prompt = n_prompt;
    q.n_choices = 1;
    q.max_tokens = n;
    q.sampling = ponder_sampler_params_default();
    q.sampling.temp = 0.0f;
    q.ignore_eos = gr == NULL; /* unconstrained: exactly n tokens */
    q.grammar = gr;
    q.on_event = on_event;
    q.user = &t;
    ponder_error err;
    int32_t id = 0;
    if (ponder_gen_run(g, &q, &id, &err) != PONDER_OK) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        exit(1);
    }
    ponder_gen_choice_result res;
    ponder_gen_result(g, id, 0, &res, &err);
    *n_tokens = res.n_tokens;
    *finish = res.finish;
    if (tokens) {
        *tokens = malloc((size_t)res.n_tokens * sizeof **tokens + 1);
        memcpy(*tokens, res.tokens, (size_t)res.n_tokens * sizeof **tokens);
    }
    ponder_gen_release(g, id);
    return res.n_tokens > 1 ? (res.n_tokens - 1) * 1e6 / (t.t_last - t.t_first) : 0.0;
}

static int model_mode(const char *path, const ponder_grammar *gr, const ponder_grammar_vocab *v, int n, int rounds,
                      int threads, const char *prompt, double *us)
{
    ponder_error err;
    ponder_model *m = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_pool *pool = NULL;
    ponder_gen *g = NULL;
    if (ponder_model_load(path, NULL, &m, &err) != PONDER_OK ||
        ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK ||
        ponder_pool_create(threads, &pool, &err) != PONDER_OK) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    ponder_gen_params gp = ponder_gen_params_default();
    gp.context.n_ctx = n + 64;
    gp.context.pool = pool;
    if (ponder_gen_create(m, tok, &gp, &g, &err) != PONDER_OK) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    ponder_tokenizer_encode(tok, prompt, strlen(prompt), true, false, &ids, &n_ids, &err);
    int32_t nt;
    ponder_finish fin;
    decode(g, ids, (int32_t)n_ids, 16, NULL, NULL, &nt, &fin); /* warm-up */
    double tg_plain = 0, tg_gram = 0;
    int k = 0, n_gram = 0;
    printf("%-6s %14s %14s %10s %8s\n", "round", "tg plain t/s", "tg grammar t/s", "tokens", "finish");
    for (int r = 0; r < rounds; r++) {
        ponder_token *toks = NULL;
        const double a = decode(g, ids, (int32_t)n_ids, n, NULL, NULL, &nt, &fin);
        const double b = decode(g, ids, (int32_t)n_ids, n, gr, &toks, &n_gram, &fin);
        printf("%-6d %14.1f %14.1f %10d %8s\n", r + 1, a, b, n_gram, ponder_finish_name(fin));
        tg_plain += a;
        tg_gram += b;
        k += replay(gr, v, toks, n_gram - (fin == PONDER_FINISH_STOP && n_gram > 0 &&
                                                ponder_tokenizer_is_eog(tok, toks[n_gram - 1])),
                    n, us + k);
        free(toks);
    }
    printf("mean   %14.1f %14.1f   (grammar %.1f%% of plain)\n", tg_plain / rounds, tg_gram / rounds,
           100.0 * (tg_gram / rounds) / (tg_plain / rounds));
    report("grammar mask + accept (replayed)", us, k);
    free(ids);
    ponder_gen_free(g);
    ponder_pool_free(pool);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *schema_path = NULL, *prompt = "The answer, as JSON:";
    int n = 256, rounds = 5, threads = 2;
    bool walk_mode = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--schema") && i + 1 < argc)
            schema_path = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            prompt = argv[++i];
        else if (!strcmp(argv[i], "--walk"))
            walk_mode = true;
        else {
            fprintf(stderr, "usage: %s -m MODEL --schema FILE [-n N] [-r R] [-t T] [-p TEXT] [--walk]\n", argv[0]);
            return 2;
        }
    }
    if (!model || !schema_path || n <= 0 || rounds <= 0) {
        fprintf(stderr, "bench_grammar: -m MODEL and --schema FILE are required\n");
        return 2;
    }
    ponder_error err;
    size_t slen;
    char *schema = read_file(schema_path, &slen);
    ponder_grammar *g = NULL;
    if (!schema || ponder_grammar_from_json_schema(schema, slen, &g, &err) != PONDER_OK) {
        fprintf(stderr, "bench_grammar: %s: %s\n", schema_path, schema ? err.msg : "cannot read");
        return 1;
    }
    ponder_gguf *gg = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_grammar_vocab *v = NULL;
    if (ponder_gguf_open(model, &gg, &err) != PONDER_OK || ponder_tokenizer_create(gg, &tok, &err) != PONDER_OK) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    double t0 = now_us();
    if (ponder_grammar_vocab_from_tokenizer(tok, &v, &err) != PONDER_OK) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    printf("vocabulary: %d tokens, prepared in %.1f ms (once per model)\n", ponder_tokenizer_n_vocab(tok),
           (now_us() - t0) / 1e3);
    double *us = malloc((size_t)(n > 4096 ? n : 4096) * (size_t)rounds * sizeof *us);
    if (walk_mode) {
        int k = 0;
        for (int r = 0; r < rounds; r++)
            k += walk(g, v, tok, n, us + k);
        report("random walk: mask + accept", us, k);
    } else if (model_mode(model, g, v, n, rounds, threads, prompt, us) != 0) {
        return 1;
    }
    free(us);
    ponder_grammar_vocab_free(v);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(gg);
    ponder_grammar_free(g);
    free(schema);
    return 0;
}
