/*
 * cmd_train.c — `ponder train`: train a small Llama-architecture model from scratch (or
 * resume one) on plain text or prompt/completion JSONL, with periodic held-out loss and
 * checkpoints that `ponder run` and llama.cpp load.
 *
 * Throughput is reported as tokens/s (every position of every sequence processed) and
 * MFU: model FLOPs per second (ponder_trainer_flops_per_token: 3x the forward's matrix
 * products and attention) over a peak of (measured single-core FMA peak) x threads. The
 * peak comes from a register-only FMA loop on the widest vector path the CPU has, run
 * at start-up, so MFU says how far the kernels are from the silicon on this machine.
 */
#include "cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ponder/gguf.h"
#include "ponder/pool.h"
#include "ponder/tokenizer.h"
#include "ponder/train.h"

#define TRAIN_MAX_CONFIG_ARGS 256

typedef struct train_opts {
    const char *config, *data, *eval_data, *vocab_from, *vocab, *out, *resume;
    int32_t dim, layers, heads, kv_heads, ff, ctx;
    int32_t steps, batch, accum, warmup, eval_every, eval_seqs, save_every, threads, log_every;
    float lr, lr_min, wd, clip, init_std;
    uint64_t seed;
    bool json, lr_min_given;
} train_opts;

static void usage(void)
{
    printf("usage: ponder train --data FILE -o OUT.gguf [options]\n"
           "\n"
           "Trains a Llama-architecture model (RMSNorm, RoPE, grouped-query attention,\n"
           "SwiGLU, tied output) with AdamW, linear warm-up then cosine decay, gradient\n"
           "clipping and accumulation, float32 weights. Checkpoints are GGUF files that\n"
           "`ponder run` and llama.cpp load; OUT.gguf.optim holds the optimizer state for\n"
           "--resume.\n"
           "\n"
           "data: plain text (cut into --ctx windows, loss on every token), or JSONL with\n"
           "\"prompt\"/\"completion\" or \"question\"/\"solution\" per line (the text is BOS +\n"
           "prompt [+ \"\\n\" for question] + completion + EOS; loss on the completion and EOS).\n"
           "\n"
           "options:\n"
           "  --config FILE      'name value' lines (name = a long option without --),\n"
           "                     read before the command line, which overrides them\n"
           "  --data FILE        training data (required)\n"
           "  --eval-data FILE   held-out data for the eval loss (default: none)\n"
           "  --vocab-from GGUF  vocabulary (tokenizer.* keys copied into the model;\n"
           "                     default: the stories260K model, 512 tokens; with\n"
           "                     --resume, the checkpoint's own)\n"
           "  --vocab bytes      a byte-level vocabulary: 256 byte tokens, U+2581 for the\n"
           "                     space, <unk> <s> </s> (260 tokens; any UTF-8 text)\n"
           "  -o, --out FILE     checkpoint to write (required)\n"
           "  --resume FILE      continue from a checkpoint (shape from the file; the\n"
           "                     optimizer state from FILE.optim; schedule from these flags)\n"
           "shape:\n"
           "  --dim N (64)  --layers N (2)  --heads N (4)  --kv-heads N (2)  --ff N (172)\n"
           "  --ctx N (256)      longest sequence; longer JSONL items are skipped\n"
           "optimization:\n"
           "  --steps N (1000)   optimizer steps (the cosine schedule's length)\n"
           "  --batch N (8)      sequences per micro-batch\n"
           "  --accum N (1)      micro-batches per step (gradient accumulation)\n"
           "  --lr X (1e-3)  --lr-min X (lr/10)  --warmup N (100)  --wd X (0.1)\n"
           "  --clip X (1.0)     global gradient-norm clip (0: off)\n"
           "  --init-std X (0.02)\n"
           "  --seed S (1234)    initialisation and batch order\n"
           "  -t, --threads N (1)\n"
           "logging:\n"
           "  --log-every N (10)  --eval-every N (100)  --eval-seqs N (64)\n"
           "  --save-every N (200; 0: only at the end)\n"
           "  --json             one JSON object per log line instead of text\n"
           "  -h, --help         this help\n");
}

/* Splits a config file into "--name" "value" argument pairs (comments start with #). */
static int read_config(const char *path, char **buf, char **args, int *n_args)
{
    size_t len = 0;
    *buf = cli_read_file(path, &len);
    if (!*buf)
        return CLI_EXIT_RUNTIME;
    *n_args = 1;
    args[0] = "train";
    char *save = NULL;
    for (char *line = strtok_r(*buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s2 = NULL;
        for (char *w = strtok_r(line, " \t\r=", &s2); w; w = strtok_r(NULL, " \t\r=", &s2)) {
            if (*n_args >= TRAIN_MAX_CONFIG_ARGS - 1)
                return cli_usage_error("train", "%s: too many settings", path);
            args[(*n_args)++] = w;
        }
    }
    /* names become --names: every even slot after the first */
    for (int i = 1; i < *n_args; i += 2) {
        const size_t l = strlen(args[i]);
        char *named = malloc(l + 3);
        if (!named)
            return cli_runtime_error("out of memory");
        memcpy(named, "--", 2);
        memcpy(named + 2, args[i], l + 1);
        args[i] = named;
    }
    return CLI_EXIT_OK;
}

static double now_s(void) { return ponder_now_ms() / 1000.0; }

/* CPU time of the process (all threads): on a shared machine, tokens per CPU-second
 * shows the kernels' speed when wall-clock throughput shows the machine's load. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double eval_loss(ponder_trainer *t, const ponder_train_data *d, int32_t n_seqs)
{
    double sum = 0;
    int64_t n = 0;
    const int64_t total = ponder_train_data_n_seqs(d) < n_seqs ? ponder_train_data_n_seqs(d) : n_seqs;
    for (int64_t i = 0; i < total; i++) {
        ponder_train_seq q = ponder_train_data_seq(d, i);
        double l = 0;
        int64_t c = 0;
        if (ponder_trainer_eval(t, &q, 1, &l, &c, NULL) == PONDER_OK) {
            sum += l;
            n += c;
        }
    }
    return n ? sum / (double)n : NAN;
}

/* The model, the data and the peak the MFU is measured against, before the first step. */
static void print_start(const train_opts *o, const ponder_trainer *t, const ponder_train_data *train,
                        const ponder_train_data *held, double peak)
{
    const ponder_train_shape *s = &ponder_trainer_params(t)->shape;
    if (o->json) {
        json_t *j = json_pack("{s:s,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:f,s:i,s:I}", "event", "start",
                              "n_params", (json_int_t)ponder_trainer_n_params(t), "n_vocab", s->n_vocab, "dim",
                              s->n_embd, "layers", s->n_layer, "heads", s->n_head, "kv_heads", s->n_head_kv, "ff",
                              s->n_ff, "ctx", s->n_ctx, "train_seqs", (json_int_t)ponder_train_data_n_seqs(train),
                              "train_tokens", (json_int_t)ponder_train_data_n_tokens(train), "skipped",
                              (json_int_t)ponder_train_data_n_skipped(train), "peak_flops", peak, "threads",
                              o->threads, "step", (json_int_t)ponder_trainer_step_count(t));
        char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", line);
        free(line);
        json_decref(j);
    } else {
        printf("model: %lld parameters (dim %d, layers %d, heads %d/%d kv, ff %d, ctx %d, vocab %d)\n",
               (long long)ponder_trainer_n_params(t), s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->n_ff,
               s->n_ctx, s->n_vocab);
        printf("data: %lld sequences, %lld tokens (%lld skipped as longer than ctx)%s\n",
               (long long)ponder_train_data_n_seqs(train), (long long)ponder_train_data_n_tokens(train),
               (long long)ponder_train_data_n_skipped(train), held ? "" : "; no --eval-data");
        printf("peak: %.2f GFLOP/s (measured 1-core FMA peak x %d threads)\n", peak / 1e9, o->threads);
    }
    fflush(stdout);
}

/* The steps from the trainer's count up to --steps: a log line every --log-every, the
 * held-out loss every --eval-every, a checkpoint every --save-every and at the end.
 * Returns 0 or the exit status (printed). */
static int train_loop(const train_opts *o, ponder_trainer *t, const ponder_train_data *train,
                      const ponder_train_data *held, const ponder_gguf *vocab, ponder_train_seq *batch, double peak,
                      uint64_t data_seed)
{
    ponder_error err;
    double t_log = now_s(), flops_log = 0, cpu_log = cpu_s();
    int64_t tokens_log = 0;
    double loss_log = 0;
    int64_t targets_log = 0;
    while (ponder_trainer_step_count(t) < o->steps) {
        const int64_t step = ponder_trainer_step_count(t);
        for (int a = 0; a < o->accum; a++) {
            for (int i = 0; i < o->batch; i++) {
                batch[i] = ponder_train_data_seq(train, ponder_train_data_pick(train, data_seed, step,
                                                                               (int64_t)a * o->batch + i));
                tokens_log += batch[i].n;
                flops_log += ponder_trainer_flops_per_token(t, batch[i].n / 2) * batch[i].n;
            }
            double l = 0;
            int64_t c = 0;
            if (ponder_trainer_accumulate(t, batch, o->batch, &l, &c, &err) != PONDER_OK) {
                cli_runtime_error("%s", err.msg);
                return CLI_EXIT_RUNTIME;
            }
            loss_log += l;
            targets_log += c;
        }
        const float lr = ponder_trainer_lr(t);
        float gnorm = 0;
        if (ponder_trainer_step(t, &gnorm, &err) != PONDER_OK) {
            cli_runtime_error("step %lld: %s", (long long)step, err.msg);
            return CLI_EXIT_RUNTIME;
        }
        const int64_t done_steps = step + 1;
        const bool last = done_steps >= o->steps;
        if (done_steps % o->log_every == 0 || last) {
            const double dt = now_s() - t_log, dcpu = cpu_s() - cpu_log;
            const double tps = tokens_log / (dt > 0 ? dt : 1e-9), mfu = flops_log / (dt > 0 ? dt : 1e-9) / peak;
            const double loss = targets_log ? loss_log / (double)targets_log : NAN;
            if (o->json)
                printf("{\"event\":\"step\",\"step\":%lld,\"loss\":%.5f,\"lr\":%.6g,\"grad_norm\":%.4f,"
                       "\"tokens_per_s\":%.1f,\"mfu\":%.5f,\"tokens\":%lld,\"seconds\":%.4f,\"cpu_seconds\":%.4f}\n",
                       (long long)done_steps, loss, (double)lr, (double)gnorm, tps, mfu, (long long)tokens_log, dt,
                       dcpu);
            else
                printf("step %6lld/%d | loss %.4f | lr %.2e | gnorm %.3f | %.0f tok/s | MFU %.1f%%\n",
                       (long long)done_steps, o->steps, loss, (double)lr, (double)gnorm, tps, 100.0 * mfu);
            fflush(stdout);
            t_log = now_s(), cpu_log = cpu_s(), flops_log = 0, tokens_log = 0, loss_log = 0, targets_log = 0;
        }
        if (held && (done_steps % o->eval_every == 0 || last)) {
            const double el = eval_loss(t, held, o->eval_seqs);
            if (o->json)
                printf("{\"event\":\"eval\",\"step\":%lld,\"eval_loss\":%.5f}\n", (long long)done_steps, el);
            else
                printf("eval  %6lld | held-out loss %.4f (%d sequences)\n", (long long)done_steps, el,
                       (int)(ponder_train_data_n_seqs(held) < o->eval_seqs ? ponder_train_data_n_seqs(held)
                                                                            : o->eval_seqs));
            fflush(stdout);
            t_log = now_s(), cpu_log = cpu_s(); /* evaluation time is not training time */
        }
        if ((o->save_every > 0 && done_steps % o->save_every == 0) || last) {
            if (ponder_trainer_save(t, o->out, vocab, true, &err) != PONDER_OK) {
                cli_runtime_error("%s", err.msg);
                return CLI_EXIT_RUNTIME;
            }
            if (!o->json)
                printf("saved %s (step %lld)\n", o->out, (long long)done_steps);
            fflush(stdout);
            t_log = now_s(), cpu_log = cpu_s();
        }
    }
    return CLI_EXIT_OK;
}

static int check_flags(const train_opts *o, bool byte_vocab)
{
    if (o->vocab && !byte_vocab)
        return cli_usage_error("train", "--vocab takes only 'bytes'");
    if (byte_vocab && o->vocab_from)
        return cli_usage_error("train", "give --vocab bytes or --vocab-from GGUF, not both");
    if (!o->data || !o->out)
        return cli_usage_error("train", "--data and --out are required");
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {.dim = 64, .layers = 2, .heads = 4, .kv_heads = 2, .ff = 172, .ctx = 256, .steps = 1000,
                    .batch = 8, .accum = 1, .warmup = 100, .eval_every = 100, .eval_seqs = 64, .save_every = 200,
                    .threads = 1, .log_every = 10, .lr = 1e-3f, .wd = 0.1f, .clip = 1.0f, .init_std = 0.02f,
                    .seed = 1234};
    const cli_opt opts[] = {
        {"--config", NULL, CLI_STRING, &o.config, 0, 0, NULL},
        {"--data", NULL, CLI_STRING, &o.data, 0, 0, NULL},
        {"--eval-data", NULL, CLI_STRING, &o.eval_data, 0, 0, NULL},
        {"--vocab-from", NULL, CLI_STRING, &o.vocab_from, 0, 0, NULL},
        {"--vocab", NULL, CLI_STRING, &o.vocab, 0, 0, NULL},
        {"-o", "--out", CLI_STRING, &o.out, 0, 0, NULL},
        {"--resume", NULL, CLI_STRING, &o.resume, 0, 0, NULL},
        {"--dim", NULL, CLI_INT, &o.dim, 2, 65536, NULL},
        {"--layers", NULL, CLI_INT, &o.layers, 1, 256, NULL},
        {"--heads", NULL, CLI_INT, &o.heads, 1, 4096, NULL},
        {"--kv-heads", NULL, CLI_INT, &o.kv_heads, 1, 4096, NULL},
        {"--ff", NULL, CLI_INT, &o.ff, 1, 262144, NULL},
        {"--ctx", NULL, CLI_INT, &o.ctx, 2, 65536, NULL},
        {"--steps", NULL, CLI_INT, &o.steps, 1, 2147483647.0, NULL},
        {"--batch", NULL, CLI_INT, &o.batch, 1, 65536, NULL},
        {"--accum", NULL, CLI_INT, &o.accum, 1, 65536, NULL},
        {"--warmup", NULL, CLI_INT, &o.warmup, 0, 2147483647.0, NULL},
        {"--lr", NULL, CLI_FLOAT, &o.lr, 1e-9, 10, NULL},
        {"--lr-min", NULL, CLI_FLOAT, &o.lr_min, 0, 10, &o.lr_min_given},
        {"--wd", NULL, CLI_FLOAT, &o.wd, 0, 10, NULL},
        {"--clip", NULL, CLI_FLOAT, &o.clip, 0, 1e9, NULL},
        {"--init-std", NULL, CLI_FLOAT, &o.init_std, 1e-6, 10, NULL},
        {"--seed", NULL, CLI_SEED, &o.seed, 0, 0, NULL},
        {"-t", "--threads", CLI_INT, &o.threads, 1, 1024, NULL},
        {"--log-every", NULL, CLI_INT, &o.log_every, 1, 2147483647.0, NULL},
        {"--eval-every", NULL, CLI_INT, &o.eval_every, 1, 2147483647.0, NULL},
        {"--eval-seqs", NULL, CLI_INT, &o.eval_seqs, 1, 2147483647.0, NULL},
        {"--save-every", NULL, CLI_INT, &o.save_every, 0, 2147483647.0, NULL},
        {"--json", NULL, CLI_FLAG, &o.json, 0, 0, NULL},
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    switch (cli_parse("train", argc, argv, opts, n_opts, NULL, 0, NULL)) {
    case CLI_HELP:
        usage();
        return CLI_EXIT_OK;
    case CLI_BAD:
        return CLI_EXIT_USAGE;
    case CLI_PARSED:
        break;
    }
    char *cbuf = NULL; /* config values point into it: freed at the end */
    if (o.config) { /* the file first, then the command line again so it wins */
        char *cargs[TRAIN_MAX_CONFIG_ARGS];
        int n_cargs = 0;
        int rc = read_config(o.config, &cbuf, cargs, &n_cargs);
        if (rc == CLI_EXIT_OK && cli_parse("train", n_cargs, cargs, opts, n_opts, NULL, 0, NULL) != CLI_PARSED)
            rc = CLI_EXIT_USAGE;
        for (int i = 1; i < n_cargs; i += 2)
            free(cargs[i]);
        if (rc != CLI_EXIT_OK) {
            free(cbuf);
            return rc;
        }
        cli_parse("train", argc, argv, opts, n_opts, NULL, 0, NULL);
    }
    const bool byte_vocab = o.vocab && strcmp(o.vocab, "bytes") == 0;
    int rc = check_flags(&o, byte_vocab);
    if (rc != 0) {
        free(cbuf);
        return rc;
    }
    if (!o.lr_min_given)
        o.lr_min = o.lr / 10.0f;
    if (o.seed == UINT64_MAX)
        o.seed = 1234;

    /* the vocabulary: bytes, a file, or (resuming) the checkpoint's own */
    char vocab_path[4096] = "";
    if (!byte_vocab && !o.vocab_from && o.resume)
        rc = snprintf(vocab_path, sizeof vocab_path, "%s", o.resume) >= (int)sizeof vocab_path
                 ? cli_usage_error("train", "--resume path too long")
                 : 0;
    else if (!byte_vocab)
        rc = cli_find_model("train", o.vocab_from, vocab_path, sizeof vocab_path);
    if (rc != 0) {
        free(cbuf);
        return rc;
    }
    ponder_error err;
    ponder_gguf *vocab = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_train_data *train = NULL, *held = NULL;
    ponder_pool *pool = NULL;
    ponder_trainer *t = NULL;
    ponder_train_seq *batch = NULL;
    rc = CLI_EXIT_RUNTIME;
    if ((byte_vocab ? ponder_train_byte_vocab(&vocab, &err) : ponder_gguf_open(vocab_path, &vocab, &err)) != PONDER_OK ||
        ponder_tokenizer_create(vocab, &tok, &err) != PONDER_OK ||
        ponder_pool_create(o.threads, &pool, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }

    ponder_train_params p = ponder_train_params_default();
    p.shape = (ponder_train_shape){.n_vocab = ponder_tokenizer_n_vocab(tok), .n_embd = o.dim, .n_layer = o.layers,
                                   .n_head = o.heads, .n_head_kv = o.kv_heads, .n_ff = o.ff, .n_ctx = o.ctx,
                                   .norm_eps = 1e-5f, .rope_base = 10000.0f};
    p.lr = o.lr, p.lr_min = o.lr_min, p.warmup_steps = o.warmup, p.total_steps = o.steps;
    p.weight_decay = o.wd, p.grad_clip = o.clip, p.init_std = o.init_std, p.seed = o.seed, p.pool = pool;
    ponder_status st = o.resume ? ponder_trainer_load(o.resume, &p, &t, &err) : ponder_trainer_create(&p, &t, &err);
    if (st != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    ponder_trainer_set_schedule(t, o.lr, o.lr_min, o.warmup, o.steps, o.wd, o.clip);
    const ponder_train_shape *s = &ponder_trainer_params(t)->shape;
    if (s->n_vocab != ponder_tokenizer_n_vocab(tok)) {
        cli_runtime_error("%s has %d tokens but %s has n_vocab %d", byte_vocab ? "the byte vocabulary" : vocab_path,
                          ponder_tokenizer_n_vocab(tok),
                          o.resume, s->n_vocab);
        goto done;
    }
    if (ponder_train_data_load(o.data, tok, s->n_ctx, &train, &err) != PONDER_OK ||
        (o.eval_data && ponder_train_data_load(o.eval_data, tok, s->n_ctx, &held, &err) != PONDER_OK)) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    batch = calloc((size_t)o.batch, sizeof *batch);
    if (!batch) {
        cli_runtime_error("out of memory");
        goto done;
    }

    const double peak = ponder_train_peak_flops_1core() * o.threads;
    const uint64_t data_seed = ponder_trainer_params(t)->seed ^ 0x5eed5eed5eed5eedull;
    print_start(&o, t, train, held, peak);
    rc = train_loop(&o, t, train, held, vocab, batch, peak, data_seed);
    if (rc != 0)
        goto done;
    rc = CLI_EXIT_OK;
done:
    free(batch);
    ponder_trainer_free(t);
    ponder_train_data_free(train);
    ponder_train_data_free(held);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(vocab);
    ponder_pool_free(pool);
    free(cbuf);
    return rc;
}
