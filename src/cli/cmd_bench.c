/*
 * cmd_bench.c — `ponder bench`: prompt-processing and generation speed with llama-bench's
 * conventions, so the numbers sit beside llama.cpp's: pp N is one batch of N prompt
 * tokens into an empty cache, tg N is N tokens decoded one at a time from an empty
 * cache; token ids are random (no tokenizer, no sampler in the timed part); one warm-up
 * run first, then -r repetitions reported as mean ± standard deviation of tokens/s.
 * With -d D (newer llama-bench's depth) the cache already holds D tokens when a test
 * starts: they are decoded once per context (untimed; a deeper -d value extends the last
 * one's) and every run truncates back to them.
 */
#include "cli/cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/quantize.h"
#include "ponder/tokenizer.h"

#define BENCH_MAX_LIST 16

static void usage(void)
{
    printf("usage: ponder bench [-m MODEL]... [options]\n"
           "\n"
           "Measures prompt processing (pp) and token generation (tg) in tokens/s, as\n"
           "llama-bench does: random token ids, an empty F16 KV cache per test, a warm-up\n"
           "run, then -r repetitions (mean +/- standard deviation).\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        GGUF file or name (repeatable; default: stories260K)\n"
           "  -t, --threads LIST       thread counts, comma-separated (default: the CPUs)\n"
           "  -p, --n-prompt LIST      prompt lengths for pp tests (default: 512; 0: none)\n"
           "  -n, --n-gen LIST         generation lengths for tg tests (default: 128; 0: none)\n"
           "  -r, --repetitions N      repetitions per test (default: 5)\n"
           "  -d, --n-depth LIST       tokens already in the cache when a test starts\n"
           "                           (default: 0; filled once, untimed, kept between runs)\n"
           "  -ctk, -ctv T             KV cache types: f16 (default), f32, q8_0, q4_0\n"
           "  -fa, --flash-attn M      attention fused over KV blocks: 1/on, 0/off, auto\n"
           "                           (default auto: on for a quantized V cache)\n"
           "      --json               print a JSON array of results instead of the table\n"
           "\n"
           "speculative decoding:\n"
           "      --draft MODEL        instead of pp/tg: generate -n tokens (the first value)\n"
           "                           from --text with the model alone and with MODEL\n"
           "                           drafting (gen engine, end-of-generation ignored), -r\n"
           "                           times each; reports generation tokens/s of both (tokens\n"
           "                           after the first, over the time after the first), the\n"
           "                           speed-up, the draft's acceptance rate and the tokens\n"
           "                           accepted per verify\n"
           "      --draft-k K          initial proposals per step (default 4; adapts 1..16)\n"
           "      --text TEXT          the prompt (default: \"Once upon a time\")\n"
           "      --temp T             temperature (default 0: greedy; sampling uses seed 1 +\n"
           "                           the repetition, top-k 40, top-p 0.95, min-p 0.05)\n"
           "  -h, --help               this help\n");
}

static int parse_list(const char *cmd, const char *flag, const char *s, int32_t *out, int min)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        if (n == BENCH_MAX_LIST)
            return -cli_usage_error(cmd, "%s: at most %d values", flag, BENCH_MAX_LIST);
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char buf[32];
        int64_t v;
        if (len == 0 || len >= sizeof buf)
            return -cli_usage_error(cmd, "%s: bad list '%s'", flag, s);
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!cli_parse_i64(buf, &v) || v < min || v > 1 << 20)
            return -cli_usage_error(cmd, "%s: bad value '%s'", flag, buf);
        out[n++] = (int32_t)v;
        p += len + (comma ? 1 : 0);
    }
    return n;
}

typedef struct bench_result {
    const char *test_kind; /* "pp" or "tg" */
    int32_t n_tokens, n_threads;
    double mean_ts, sd_ts;
    double samples[64];
    int n_samples;
    int32_t n_depth; /* tokens in the cache before the test (-d) */
    bool flash;      /* attention fused over KV blocks */
} bench_result;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One timed run after `depth` tokens already in the cache; returns milliseconds or a
 * negative value after printing the error. */
static double run_once(ponder_context *ctx, int32_t n_vocab, int32_t depth, bool prompt, int32_t n, uint64_t *rng,
                       int32_t *buf)
{
    ponder_error err = { 0 };
    if (ponder_context_seq_truncate(ctx, 0, depth, &err) != PONDER_OK)
        goto fail;
    for (int32_t i = 0; i < n; i++)
        buf[i] = (int32_t)(rng_next(rng) % (uint64_t)n_vocab);
    const double t0 = ponder_now_ms();
    if (prompt) {
        if (ponder_context_decode(ctx, buf, n, NULL, &err) != PONDER_OK)
            goto fail;
    } else {
        for (int32_t i = 0; i < n; i++)
            if (ponder_context_decode(ctx, &buf[i], 1, NULL, &err) != PONDER_OK)
                goto fail;
    }
    return ponder_now_ms() - t0;
fail:
    cli_runtime_error("%s", err.msg);
    return -1.0;
}

/* The file type's name as llama.cpp gives it (general.file_type, e.g. Q4_K_M), else the
 * weight type holding the most bytes. */
static const char *ftype_name(const ponder_model *m, char *buf, size_t cap)
{
    const ponder_gguf *g = ponder_model_gguf(m);
    uint32_t ftype;
    if (ponder_gguf_get_u32(g, "general.file_type", &ftype, NULL) == PONDER_OK) {
        for (int i = 0; ponder_quantize_preset_at(i); i++) {
            const ponder_quantize_preset *p = ponder_quantize_preset_at(i);
            if (p->ftype == ftype && !p->pure) {
                snprintf(buf, cap, "%s", p->name);
                return buf;
            }
        }
    }
    uint64_t bytes[PONDER_TYPE_COUNT] = { 0 };
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        if (t->ne[1] > 1 && (int)t->type < PONDER_TYPE_COUNT)
            bytes[t->type] += t->n_bytes;
    }
    int best = 0;
    for (int t = 1; t < PONDER_TYPE_COUNT; t++)
        best = bytes[t] > bytes[best] ? t : best;
    snprintf(buf, cap, "%s", ponder_type_name(best));
    return buf;
}

/* ---- --draft: generation speed with and without a draft model ---- */

typedef struct spec_timer {
    double t_first;
} spec_timer;

static void spec_on_event(const ponder_gen_event *ev, void *user)
{
    (void)ev;
    spec_timer *t = user;
    if (t->t_first == 0.0)
        t->t_first = ponder_now_ms();
}

/* One generation of n tokens; tokens/s after the first token, and the usage. */
static int spec_once(ponder_gen *g, const ponder_token *prompt, int32_t n_prompt, int32_t n, float temp, uint64_t seed,
                     double *ts, ponder_gen_usage *use)
{
    ponder_error err = { 0 };
    spec_timer t = { 0 };
    ponder_gen_request r = { 0 };
    r.prompt = prompt;
    r.n_prompt = n_prompt;
    r.n_choices = 1;
    r.max_tokens = n;
    r.sampling = ponder_sampler_params_default();
    r.sampling.temp = temp;
    r.sampling.seed = seed;
    r.ignore_eos = true;
    r.on_event = spec_on_event;
    r.user = &t;
    int32_t id = 0;
    if (ponder_gen_run(g, &r, &id, &err) != PONDER_OK) {
        ponder_gen_release(g, id);
        return cli_runtime_error("%s", err.msg);
    }
    const double t_end = ponder_now_ms();
    ponder_gen_choice_result res;
    if (ponder_gen_result(g, id, 0, &res, &err) != PONDER_OK || ponder_gen_usage_of(g, id, use, &err) != PONDER_OK) {
        ponder_gen_release(g, id);
        return cli_runtime_error("%s", err.msg);
    }
    *ts = t_end > t.t_first && res.n_tokens > 1 ? 1000.0 * (res.n_tokens - 1) / (t_end - t.t_first) : 0.0;
    ponder_gen_release(g, id);
    return CLI_EXIT_OK;
}

typedef struct spec_bench_opts {
    const char *draft, *text;
    int32_t n_gen, reps, draft_k;
    float temp;
    bool json;
    ponder_context_params cp;
} spec_bench_opts;

static int spec_bench(const char *cmd, const spec_bench_opts *o, const char *const *models, int n_models,
                      const int32_t *threads, int n_threads)
{
    char dpath[PATH_MAX];
    int rc = cli_find_model(cmd, o->draft, dpath, sizeof dpath);
    if (rc != 0)
        return rc;
    ponder_error err = { 0 };
    ponder_model *dm = NULL;
    if (ponder_model_load(dpath, NULL, &dm, &err) != PONDER_OK)
        return cli_runtime_error("--draft: %s", err.msg);
    json_t *all = json_array();
    if (!o->json) {
        printf("| %-30s | %-20s | %7s | %8s | %14s | %14s | %8s | %10s | %10s |\n", "model", "draft", "threads", "test",
               "t/s alone", "t/s draft", "speed-up", "acceptance", "acc/verify");
        printf("| %.30s | %.20s | %.7s | %.8s | %.14s | %.14s | %.8s | %.10s | %.10s |\n",
               "------------------------------:", "--------------------", "------:", "-------:", "-------------:",
               "-------------:", "-------:", "---------:", "---------:");
        fflush(stdout);
    }
    for (int mi = 0; mi < n_models && rc == CLI_EXIT_OK; mi++) {
        char path[PATH_MAX];
        if ((rc = cli_find_model(cmd, models[mi], path, sizeof path)) != 0)
            break;
        ponder_model *m = NULL;
        ponder_tokenizer *tok = NULL;
        ponder_token *prompt = NULL;
        size_t n_prompt = 0;
        if (ponder_model_load(path, NULL, &m, &err) != PONDER_OK) {
            rc = cli_runtime_error("%s", err.msg);
            break;
        }
        if (ponder_gen_check_draft(m, dm, &err) != PONDER_OK ||
            ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK ||
            ponder_tokenizer_encode(tok, o->text, strlen(o->text), true, false, &prompt, &n_prompt, &err) != PONDER_OK) {
            rc = cli_runtime_error("%s: %s", path, err.msg);
        } else if (n_prompt == 0) {
            rc = cli_runtime_error("--text gives no tokens with this model");
        }
        char tname[32], desc[96], dtname[32], ddesc[64];
        snprintf(desc, sizeof desc, "%s %s", ponder_model_hparams(m)->arch_name, ftype_name(m, tname, sizeof tname));
        snprintf(ddesc, sizeof ddesc, "%s %s", ponder_model_hparams(dm)->arch_name, ftype_name(dm, dtname, sizeof dtname));
        for (int ti = 0; ti < n_threads && rc == CLI_EXIT_OK; ti++) {
            ponder_pool *pool = NULL;
            ponder_gen *g0 = NULL, *g1 = NULL;
            if (ponder_pool_create(threads[ti], &pool, &err) != PONDER_OK) {
                rc = cli_runtime_error("%s", err.msg);
                break;
            }
            ponder_gen_params gp = ponder_gen_params_default();
            gp.context = o->cp;
            gp.context.pool = pool;
            gp.context.n_ctx = (int32_t)n_prompt + o->n_gen + 1;
            if (ponder_gen_create(m, tok, &gp, &g0, &err) != PONDER_OK) {
                rc = cli_runtime_error("%s", err.msg);
            } else {
                gp.draft = dm;
                gp.draft_k = o->draft_k;
                if (ponder_gen_create(m, tok, &gp, &g1, &err) != PONDER_OK)
                    rc = cli_runtime_error("%s", err.msg);
            }
            double ts0[64], ts1[64], s0 = 0, s1 = 0;
            int64_t proposed = 0, accepted = 0, verifies = 0;
            for (int rep = -1; rep < o->reps && rc == CLI_EXIT_OK; rep++) { /* rep -1: warm-up */
                ponder_gen_usage u0, u1;
                double a, b;
                const uint64_t seed = 1 + (uint64_t)(rep < 0 ? 0 : rep);
                if ((rc = spec_once(g0, prompt, (int32_t)n_prompt, o->n_gen, o->temp, seed, &a, &u0)) != CLI_EXIT_OK ||
                    (rc = spec_once(g1, prompt, (int32_t)n_prompt, o->n_gen, o->temp, seed, &b, &u1)) != CLI_EXIT_OK)
                    break;
                if (rep < 0)
                    continue;
                ts0[rep] = a;
                ts1[rep] = b;
                s0 += a;
                s1 += b;
                proposed += u1.draft_tokens;
                accepted += u1.draft_accepted;
                verifies += u1.verify_steps;
            }
            if (rc == CLI_EXIT_OK) {
                const double m0 = s0 / o->reps, m1 = s1 / o->reps;
                double v0 = 0, v1 = 0;
                for (int r = 0; r < o->reps; r++) {
                    v0 += (ts0[r] - m0) * (ts0[r] - m0);
                    v1 += (ts1[r] - m1) * (ts1[r] - m1);
                }
                const double sd0 = o->reps > 1 ? sqrt(v0 / (o->reps - 1)) : 0, sd1 = o->reps > 1 ? sqrt(v1 / (o->reps - 1)) : 0;
                const double acc = proposed > 0 ? (double)accepted / (double)proposed : 0.0;
                const double per_verify = verifies > 0 ? (double)accepted / (double)verifies : 0.0;
                char test[32];
                snprintf(test, sizeof test, "tg%d", (int)o->n_gen);
                if (o->json) {
                    json_array_append_new(
                        all, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                                       "model_filename", path, "model_type", desc, "draft_filename", dpath,
                                       "draft_type", ddesc, "n_threads", (int)threads[ti], "test", test, "temp",
                                       (double)o->temp, "avg_ts_alone", m0, "stddev_ts_alone", sd0, "avg_ts_draft", m1,
                                       "stddev_ts_draft", sd1, "speedup", m0 > 0 ? m1 / m0 : 0.0, "acceptance_rate",
                                       acc, "accepted_per_verify", per_verify));
                } else {
                    char a[32], b[32], sp[16], ac[16], pv[16];
                    snprintf(a, sizeof a, "%.2f ± %.2f", m0, sd0);
                    snprintf(b, sizeof b, "%.2f ± %.2f", m1, sd1);
                    snprintf(sp, sizeof sp, "%.2fx", m0 > 0 ? m1 / m0 : 0.0);
                    snprintf(ac, sizeof ac, "%.1f%%", 100.0 * acc);
                    snprintf(pv, sizeof pv, "%.2f", per_verify);
                    printf("| %-30s | %-20s | %7d | %8s | %14s | %14s | %8s | %10s | %10s |\n", desc, ddesc,
                           (int)threads[ti], test, a, b, sp, ac, pv);
                    fflush(stdout);
                }
            }
            ponder_gen_free(g1);
            ponder_gen_free(g0);
            ponder_pool_free(pool);
        }
        free(prompt);
        ponder_tokenizer_free(tok);
        ponder_model_free(m);
    }
    if (o->json && rc == CLI_EXIT_OK) {
        char *s = json_dumps(all, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
    }
    json_decref(all);
    ponder_model_free(dm);
    return rc;
}

/* The pp/tg lists, threads and repetitions every model is measured with. */
typedef struct bench_cfg {
    const int32_t *threads, *prompts, *gens, *depths;
    int n_threads, n_prompts, n_gens, n_depths, reps;
    bool json;
    ponder_context_params cp;
} bench_cfg;

/* One test (pp or tg of n tokens): a warm-up, then reps timed runs into res. */
static int measure(ponder_context *ctx, int32_t n_vocab, bool prompt, int32_t n, int reps, uint64_t *rng,
                   int32_t *buf, bench_result *res)
{
    if (run_once(ctx, n_vocab, res->n_depth, prompt, n, rng, buf) < 0) /* warm-up */
        return CLI_EXIT_RUNTIME;
    double sum = 0, sum2 = 0;
    for (int rep = 0; rep < reps; rep++) {
        double ms = run_once(ctx, n_vocab, res->n_depth, prompt, n, rng, buf);
        if (ms < 0)
            return CLI_EXIT_RUNTIME;
        double ts = ms > 0 ? 1000.0 * n / ms : 0;
        res->samples[res->n_samples++] = ts;
        sum += ts;
        sum2 += ts * ts;
    }
    res->mean_ts = sum / reps;
    res->sd_ts = reps > 1 ? sqrt(fmax(0.0, (sum2 - reps * res->mean_ts * res->mean_ts) / (reps - 1))) : 0;
    return CLI_EXIT_OK;
}

/* A model as llama-bench describes it: path, type, size and parameters. */
typedef struct bench_model {
    const char *path;
    const ponder_model *m;
    char desc[96], sbuf[32], pbuf[32];
    uint64_t size;
} bench_model;

/* One result: a JSON object into all, or a table row. */
static void report(const bench_cfg *cfg, const bench_model *bm, const bench_result *res, json_t *all)
{
    char test[48], ts[48];
    const bool pp = strcmp(res->test_kind, "pp") == 0;
    if (res->n_depth > 0) /* llama-bench's name for a test at depth */
        snprintf(test, sizeof test, "%s%d @ d%d", res->test_kind, (int)res->n_tokens, (int)res->n_depth);
    else
        snprintf(test, sizeof test, "%s%d", res->test_kind, (int)res->n_tokens);
    snprintf(ts, sizeof ts, "%.2f ± %.2f", res->mean_ts, res->sd_ts);
    if (cfg->json) {
        json_t *samples = json_array();
        for (int s = 0; s < res->n_samples; s++)
            json_array_append_new(samples, json_real(res->samples[s]));
        json_array_append_new(
            all, json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:b, s:I, s:s, s:f, s:f, s:o}",
                           "model_filename",
                           bm->path, "model_type", bm->desc, "model_size", (json_int_t)bm->size, "model_n_params",
                           (json_int_t)ponder_model_n_params(bm->m), "model_n_params_active",
                           (json_int_t)ponder_model_n_params_active(bm->m), "isa", ponder_cpu_isa(), "n_threads",
                           (int)res->n_threads, "n_prompt", pp ? (int)res->n_tokens : 0, "n_gen",
                           pp ? 0 : (int)res->n_tokens, "n_depth", (int)res->n_depth, "type_k",
                           ponder_type_name(cfg->cp.type_k), "type_v", ponder_type_name(cfg->cp.type_v), "flash_attn",
                           res->flash, "kv_bytes_per_token",
                           (json_int_t)ponder_kv_bytes_per_token(bm->m, cfg->cp.type_k, cfg->cp.type_v), "test", test,
                           "avg_ts", res->mean_ts, "stddev_ts", res->sd_ts,
                           "samples_ts", samples));
    } else {
        printf("| %-30s | %10s | %10s | CPU %-6s | %7d | %10s | %20s |\n", bm->desc, bm->sbuf, bm->pbuf,
               ponder_cpu_isa(), (int)res->n_threads, test, ts);
        fflush(stdout);
    }
}

/* Every thread count, pp and tg test of one model. */
static int bench_one_model(const char *cmd, const char *model_arg, const bench_cfg *cfg, json_t *all)
{
    char path[PATH_MAX];
    int rc = cli_find_model(cmd, model_arg, path, sizeof path);
    if (rc != 0)
        return rc;
    ponder_error err = { 0 };
    ponder_model *m = NULL;
    if (ponder_model_load(path, NULL, &m, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    const ponder_hparams *hp = ponder_model_hparams(m);
    bench_model bm = { .path = path, .m = m };
    const ponder_gguf *g = ponder_model_gguf(m);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++)
        bm.size += ponder_gguf_tensor_at(g, i)->n_bytes;
    char tname[32];
    snprintf(bm.desc, sizeof bm.desc, "%s %s", hp->arch_name, ftype_name(m, tname, sizeof tname));
    snprintf(bm.sbuf, sizeof bm.sbuf, "%.2f MiB", (double)bm.size / 1048576.0);
    snprintf(bm.pbuf, sizeof bm.pbuf, "%.2f M", (double)ponder_model_n_params(m) / 1e6);
    if (!cfg->json && (cfg->cp.type_k != PONDER_TYPE_F16 || cfg->cp.type_v != PONDER_TYPE_F16)) {
        const uint64_t kv = ponder_kv_bytes_per_token(m, cfg->cp.type_k, cfg->cp.type_v);
        const uint64_t kv16 = ponder_kv_bytes_per_token(m, PONDER_TYPE_F16, PONDER_TYPE_F16);
        fprintf(stderr, "bench: KV cache K %s, V %s: %.1f KiB per 1k tokens of context (f16: %.1f KiB)\n",
                ponder_type_name(cfg->cp.type_k), ponder_type_name(cfg->cp.type_v), (double)kv * 1000.0 / 1024.0,
                (double)kv16 * 1000.0 / 1024.0);
    }
    int32_t max_n = 1, max_depth = 0;
    for (int i = 0; i < cfg->n_depths; i++)
        max_depth = cfg->depths[i] > max_depth ? cfg->depths[i] : max_depth;
    for (int i = 0; i < cfg->n_prompts; i++)
        max_n = cfg->prompts[i] > max_n ? cfg->prompts[i] : max_n;
    for (int i = 0; i < cfg->n_gens; i++)
        max_n = cfg->gens[i] > max_n ? cfg->gens[i] : max_n;
    for (int ti = 0; ti < cfg->n_threads && rc == CLI_EXIT_OK; ti++) {
        ponder_pool *pool = NULL;
        ponder_context *ctx = NULL;
        if (ponder_pool_create(cfg->threads[ti], &pool, &err) != PONDER_OK) {
            rc = cli_runtime_error("%s", err.msg);
            break;
        }
        ponder_context_params cp = cfg->cp;
        cp.pool = pool;
        cp.n_ctx = max_depth + max_n;
        int32_t *buf = malloc((size_t)(max_depth > max_n ? max_depth : max_n) * sizeof *buf);
        if (!buf || ponder_context_create(m, &cp, &ctx, &err) != PONDER_OK) {
            rc = cli_runtime_error("%s", buf ? err.msg : "out of memory");
            free(buf);
            ponder_pool_free(pool);
            break;
        }
        uint64_t rng = 0x9E3779B97F4A7C15ull;
        int32_t filled = 0; /* depth tokens in the cache: a deeper test extends them */
        for (int di = 0; di < cfg->n_depths && rc == CLI_EXIT_OK; di++) {
            /* the depth's tokens, decoded once (untimed); every run truncates back to them */
            const int32_t depth = cfg->depths[di];
            if (depth < filled)
                filled = 0;
            if (depth > filled && run_once(ctx, hp->n_vocab, filled, true, depth - filled, &rng, buf) < 0) {
                rc = CLI_EXIT_RUNTIME;
                break;
            }
            filled = depth;
            for (int kind = 0; kind < 2 && rc == CLI_EXIT_OK; kind++) {
                const int n_list = kind == 0 ? cfg->n_prompts : cfg->n_gens;
                for (int li = 0; li < n_list && rc == CLI_EXIT_OK; li++) {
                    const int32_t n = kind == 0 ? cfg->prompts[li] : cfg->gens[li];
                    if (n == 0)
                        continue;
                    bench_result res = { kind == 0 ? "pp" : "tg", n, cfg->threads[ti], 0, 0, { 0 }, 0, depth,
                                         ponder_context_flash_attn(ctx) };
                    if ((rc = measure(ctx, hp->n_vocab, kind == 0, n, cfg->reps, &rng, buf, &res)) == CLI_EXIT_OK)
                        report(cfg, &bm, &res, all);
                }
            }
        }
        ponder_context_free(ctx);
        ponder_pool_free(pool);
        free(buf);
    }
    ponder_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    const char *cmd = "bench";
    const char *models[BENCH_MAX_LIST];
    int n_models = 0;
    const char *threads_s = NULL, *prompt_s = "512", *gen_s = "128", *ctk = NULL, *ctv = NULL, *model = NULL;
    const char *depth_s = "0", *fa = NULL;
    int32_t reps = 5, draft_k = 0;
    bool json = false;
    const char *draft = NULL, *text = "Once upon a time";
    float temp = 0.0f;
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &model, 0, 0, NULL },
        { "-t", "--threads", CLI_STRING, &threads_s, 0, 0, NULL },
        { "-p", "--n-prompt", CLI_STRING, &prompt_s, 0, 0, NULL },
        { "-n", "--n-gen", CLI_STRING, &gen_s, 0, 0, NULL },
        { "-r", "--repetitions", CLI_INT, &reps, 1, 64, NULL },
        { "-ctk", "--cache-type-k", CLI_STRING, &ctk, 0, 0, NULL },
        { "-ctv", "--cache-type-v", CLI_STRING, &ctv, 0, 0, NULL },
        { "-d", "--n-depth", CLI_STRING, &depth_s, 0, 0, NULL },
        { "-fa", "--flash-attn", CLI_STRING, &fa, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &json, 0, 0, NULL },
        { "--draft", NULL, CLI_STRING, &draft, 0, 0, NULL },
        { "--draft-k", NULL, CLI_INT, &draft_k, 1, PONDER_GEN_DRAFT_K_MAX, NULL },
        { "--text", NULL, CLI_STRING, &text, 0, 0, NULL },
        { "--temp", NULL, CLI_FLOAT, &temp, 0, 0, NULL },
    };
    /* -m may repeat: collect every occurrence (-m X, --model X, --model=X) before the general parse */
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if ((strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) && i + 1 < argc)
            value = argv[++i];
        else if (strncmp(argv[i], "--model=", 8) == 0)
            value = argv[i] + 8;
        else if (strcmp(argv[i], "--") == 0)
            break;
        if (!value)
            continue;
        if (n_models == BENCH_MAX_LIST)
            return cli_usage_error(cmd, "at most %d models", BENCH_MAX_LIST);
        models[n_models++] = value;
    }
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (n_models == 0)
        models[n_models++] = NULL; /* the default model */
    int32_t threads[BENCH_MAX_LIST], prompts[BENCH_MAX_LIST], gens[BENCH_MAX_LIST], depths[BENCH_MAX_LIST];
    int n_threads = 1, n_prompts, n_gens, n_depths;
    threads[0] = ponder_cpu_count();
    if (threads_s && (n_threads = parse_list(cmd, "-t", threads_s, threads, 1)) <= 0)
        return CLI_EXIT_USAGE;
    if ((n_prompts = parse_list(cmd, "-p", prompt_s, prompts, 0)) < 0 || (n_gens = parse_list(cmd, "-n", gen_s, gens, 0)) < 0 ||
        (n_depths = parse_list(cmd, "-d", depth_s, depths, 0)) <= 0)
        return CLI_EXIT_USAGE;
    ponder_context_params cp = ponder_context_params_default();
    int bad_cache = cli_set_cache_types(cmd, ctk, ctv, &cp);
    if (bad_cache == 0)
        bad_cache = cli_set_flash_attn(cmd, fa, &cp);
    if (bad_cache != 0)
        return bad_cache;
    if (draft) {
        if (n_gens < 1 || gens[0] < 1)
            return cli_usage_error(cmd, "--draft needs -n >= 1 (tokens to generate)");
        const spec_bench_opts so = { draft, text, gens[0], reps, draft_k, temp, json, cp };
        return spec_bench(cmd, &so, models, n_models, threads, n_threads);
    }
    if (draft_k || temp != 0.0f || strcmp(text, "Once upon a time") != 0)
        return cli_usage_error(cmd, "--draft-k, --text and --temp need --draft");

    json_t *all = json_array();
    if (!json) {
        printf("| %-30s | %10s | %10s | %-10s | %7s | %10s | %20s |\n", "model", "size", "params", "backend", "threads",
               "test", "t/s");
        printf("| %.30s | %.10s | %.10s | %.10s | %.7s | %.10s | %.20s |\n", "------------------------------:",
               "---------:", "---------:", "----------", "------:", "---------:", "-------------------:");
        fflush(stdout);
    }
    const bench_cfg cfg = { threads, prompts, gens, depths, n_threads, n_prompts, n_gens, n_depths, reps, json, cp };
    int rc = CLI_EXIT_OK;
    for (int mi = 0; mi < n_models && rc == CLI_EXIT_OK; mi++)
        rc = bench_one_model(cmd, models[mi], &cfg, all);
    if (json && rc == CLI_EXIT_OK) {
        char *s = json_dumps(all, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
    }
    json_decref(all);
    return rc;
}
