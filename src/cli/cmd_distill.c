/*
 * cmd_distill.c — `ponder distill`: System 2 → System 1 distillation. The teacher answers
 * unlabeled questions with a sampled-and-voted strategy (sc:8 by default); the chains that
 * agree with its vote become prompt/completion pairs; the student (a GGUF the trainer
 * loads) is fine-tuned on them; the student's greedy accuracy on held-out problems is
 * measured before and after. The pieces are in src/distill (distill.h); this file reads
 * the flags, orders the phases, shows progress and prints the summary.
 *
 * Labels in the question file are never used to keep or drop a chain: they only let the
 * summary say how often the teacher's vote (and the kept chains) were right.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ponder/distill.h"
#include "ponder/gen.h"
#include "ponder/gguf.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/think.h"
#include "ponder/tokenizer.h"
#include "ponder/train.h"

#define DISTILL_DEFAULT_N_PREDICT 192 /* arith's longest solutions are ~70 tokens */
#define DISTILL_DEFAULT_SEED 42
#define DISTILL_Z95 1.959963984540054
#define DISTILL_MAX_GROUPS 16         /* difficulties reported separately; more go in the last */

static void usage(void)
{
    printf("usage: ponder distill --teacher MODEL --student MODEL --data QUESTIONS.jsonl\n"
           "                      --eval-data HELDOUT.jsonl -o OUT.gguf [options]\n"
           "\n"
           "System 2 -> System 1 distillation. The teacher answers every question with the\n"
           "strategy (sc:N samples N chains as one batch and votes); the chains whose answer\n"
           "equals the vote are kept as prompt/completion pairs; the student is fine-tuned\n"
           "on them and written to OUT.gguf; its greedy accuracy on the held-out problems is\n"
           "measured before and after. No labels are used to choose chains: an \"answer\" in\n"
           "QUESTIONS.jsonl only feeds the report. Prompts are the question + \"\\n\" (the form\n"
           "`ponder train` gives {\"question\",\"solution\"} data). The teacher and the student\n"
           "must have the same vocabulary.\n"
           "\n"
           "teacher:\n"
           "      --teacher MODEL      GGUF file, or a name in $PONDER_MODELS\n"
           "      --strategy S         sc:N, asc:N, direct or cot (default: sc:8)\n"
           "      --temp T             sampling temperature (default: %.1f; 0 for direct/cot)\n"
           "  -n, --n-predict N        max tokens per chain (default: %d)\n"
           "      --min-agreement X    keep a question's chains only if the vote's agreement\n"
           "                           (winner's votes / chains with an answer) >= X (default 0)\n"
           "      --unique             keep one copy of identical chains\n"
           "      --limit N            the first N questions only\n"
           "      --keep-chains FILE   write the kept chains as JSONL {prompt, completion,\n"
           "                           answer, agreement} (`ponder train --data` reads it)\n"
           "student:\n"
           "      --student MODEL      the model to fine-tune (F32 or F16 llama GGUF)\n"
           "      --eval-data FILE     held-out JSONL {question, answer} (arith's form)\n"
           "      --eval-limit N       the first N held-out problems only\n"
           "  -o, --out FILE           the fine-tuned student (must differ from --student)\n"
           "      --steps N (200)  --batch N (8)  --accum N (1)  --lr X (5e-4)\n"
           "      --lr-min X (lr/10)  --warmup N (20)  --wd X (0.1)  --clip X (1.0)\n"
           "                           as `ponder train`; the optimizer starts fresh\n"
           "common:\n"
           "  -s, --seed S             teacher chains use S + question * %d + chain; the\n"
           "                           batch order uses S (default: %d)\n"
           "  -t, --threads N          threads (default: 1)\n"
           "      --json               one JSON object at the end instead of the text summary\n"
           "  -h, --help               this help\n"
           "\n"
           "A progress line is shown on stderr when it is a terminal.\n"
           "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
           (double)PONDER_THINK_SAMPLED_TEMP, DISTILL_DEFAULT_N_PREDICT, PONDER_THINK_MAX_SAMPLES, DISTILL_DEFAULT_SEED);
}

typedef struct distill_opts {
    const char *teacher, *student, *data, *eval_data, *out, *strategy, *keep_chains;
    int32_t n_predict, limit, eval_limit, steps, batch, accum, warmup, threads;
    float temp, min_agreement, lr, lr_min, wd, clip;
    uint64_t seed;
    bool temp_given, lr_min_given, unique, json;
} distill_opts;

/* Held-out accuracy of one model, overall and by difficulty. */
typedef struct distill_score {
    int32_t n, correct;
    int32_t g_n[DISTILL_MAX_GROUPS], g_correct[DISTILL_MAX_GROUPS];
    double ms;
} distill_score;

/* arith's difficulty: the solution's lines before "The answer is N." (0 when none given). */
static int group_of(const ponder_eval_item *it)
{
    int g = 0;
    for (const char *s = it->solution; s && *s; s++)
        g += *s == '\n';
    return g < DISTILL_MAX_GROUPS ? g : DISTILL_MAX_GROUPS - 1;
}

static void progress_line(bool on, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void progress_line(bool on, const char *fmt, ...)
{
    if (!on)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputc('\r', stderr);
    vfprintf(stderr, fmt, ap);
    fputs("   ", stderr);
    va_end(ap);
    fflush(stderr);
}

static void progress_end(bool on)
{
    if (on)
        fputc('\n', stderr);
}

static ponder_status make_gen(const ponder_model *m, const ponder_tokenizer *tok, ponder_pool *pool, int32_t chains,
                              int32_t n_predict, ponder_gen **out, ponder_error *err)
{
    const ponder_hparams *h = ponder_model_hparams(m);
    ponder_gen_params gp = ponder_gen_params_default();
    gp.n_seq_max = chains;
    gp.context.n_ctx = h->n_ctx_train > 0 ? h->n_ctx_train : 2048;
    gp.context.pool = pool;
    /* one prompt's cells shared by the chains plus each chain's own tokens */
    const int64_t n_ctx = gp.context.n_ctx;
    if ((int64_t)n_ctx + (int64_t)chains * (n_predict + 1) < n_ctx * chains)
        gp.context.n_kv_cells = (int32_t)(n_ctx + (int64_t)chains * (n_predict + 1));
    return ponder_gen_create(m, tok, &gp, out, err);
}

/* Greedy accuracy of the model in path on the held-out items. */
static int score_model(const char *label, const char *path, const ponder_eval_items *items, ponder_pool *pool,
                       int32_t n_predict, bool show, distill_score *out)
{
    memset(out, 0, sizeof *out);
    ponder_error err = { 0 };
    ponder_model *m = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_gen *g = NULL;
    int rc = CLI_EXIT_RUNTIME;
    const double t0 = ponder_now_ms();
    if (ponder_model_load(path, NULL, &m, &err) != PONDER_OK || ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK ||
        make_gen(m, tok, pool, 1, n_predict, &g, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", path, err.msg);
        goto done;
    }
    for (int32_t i = 0; i < items->n; i++) {
        const ponder_eval_item *it = &items->items[i];
        bool ok = false;
        if (ponder_distill_score(g, tok, it->question, it->gold, n_predict, &ok, NULL, &err) != PONDER_OK) {
            progress_end(show);
            cli_runtime_error("%s: held-out item %d: %s", path, (int)i, err.msg);
            goto done;
        }
        const int gi = group_of(it);
        out->n++, out->correct += ok;
        out->g_n[gi]++, out->g_correct[gi] += ok;
        progress_line(show, "student %s: %d/%d  accuracy %.3f", label, (int)out->n, (int)items->n,
                      (double)out->correct / out->n);
    }
    progress_end(show);
    rc = CLI_EXIT_OK;
done:
    out->ms = ponder_now_ms() - t0;
    ponder_gen_free(g);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
    return rc;
}

static json_t *score_json(const distill_score *s)
{
    double lo, hi;
    ponder_wilson_interval(s->correct, s->n, DISTILL_Z95, &lo, &hi);
    return json_pack("{s:i, s:f, s:[f, f]}", "correct", (int)s->correct, "accuracy",
                     s->n ? (double)s->correct / s->n : 0.0, "ci95", lo, hi);
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Crash-safe, as the model file: a temporary file renamed over `path` once synced. */
static int write_file(const char *path, const char *buf, size_t len)
{
    ponder_error err;
    if (ponder_file_write_atomic(path, buf, len, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    return CLI_EXIT_OK;
}

/* What a run counted, for the report. */
typedef struct distill_stats {
    const char *teacher_path, *student_path, *strategy;
    int32_t nq, n_gold, vote_correct;
    int64_t n_samples, n_answered, n_kept, n_kept_correct, q_kept, q_voted;
    double agree_sum, teach_flops, teach_ms, train_ms, loss, first_loss;
    const ponder_train_data *data;
    distill_score before, after;
    bool regressed;
} distill_stats;

/* 2. the teacher answers every question; its vote picks the chains into set. */
static int teach(const distill_opts *o, ponder_gen *tgen, const ponder_tokenizer *ttok, ponder_strategy strat,
                 const ponder_distill_questions *qs, ponder_distill_set *set, bool show, distill_stats *r)
{
    ponder_error err = { 0 };
    const ponder_distill_select_params sp = { .min_agreement = o->min_agreement, .unique = o->unique };
    ponder_think_params thp = ponder_distill_teacher_params(strat, o->temp, o->n_predict, o->seed);
    const double t_teach = ponder_now_ms();
    const int32_t nq = ponder_distill_questions_count(qs);
    r->nq = nq;
    for (int32_t i = 0; i < nq; i++) {
        ponder_distill_answer a;
        const char *gold = ponder_distill_questions_gold(qs, i);
        thp.sampling.seed = o->seed + (uint64_t)i * PONDER_THINK_MAX_SAMPLES;
        if (ponder_distill_teach(tgen, ttok, &thp, &sp, ponder_distill_questions_text(qs, i), gold, set, &a, &err) !=
            PONDER_OK) {
            progress_end(show);
            return cli_runtime_error("question %d: %s", (int)i, err.msg);
        }
        r->n_samples += a.n_samples, r->n_answered += a.n_answered, r->n_kept += a.n_kept;
        r->n_kept_correct += a.n_kept_correct;
        r->q_kept += a.n_kept > 0;
        r->q_voted += a.answer[0] != '\0';
        r->agree_sum += a.agreement;
        r->teach_flops += (double)a.flops;
        if (gold) {
            r->n_gold++;
            r->vote_correct += a.answer[0] && ponder_answer_equal(PONDER_ANSWER_NUMBER, a.answer, gold);
        }
        progress_line(show, "teacher: %d/%d questions  %lld chains kept  agreement %.3f", (int)(i + 1), (int)nq,
                      (long long)r->n_kept, r->agree_sum / (i + 1));
    }
    progress_end(show);
    r->teach_ms = ponder_now_ms() - t_teach;
    return 0;
}

/* 3. fine-tune the student on the kept chains. */
static int fine_tune(const distill_opts *o, ponder_trainer *tr, const ponder_train_data *data, bool show,
                     distill_stats *r)
{
    ponder_error err = { 0 };
    const uint64_t data_seed = o->seed ^ 0x5eed5eed5eed5eedull;
    const double t_train = ponder_now_ms();
    r->loss = 0;
    r->first_loss = NAN;
    for (int32_t s = 0; s < o->steps; s++) {
        if (ponder_distill_train_step(tr, data, data_seed, o->batch, o->accum, &r->loss, &err) != PONDER_OK) {
            progress_end(show);
            return cli_runtime_error("step %d: %s", (int)s, err.msg);
        }
        if (s == 0)
            r->first_loss = r->loss;
        progress_line(show, "fine-tune: step %d/%d  loss %.4f", (int)(s + 1), (int)o->steps, r->loss);
    }
    progress_end(show);
    r->train_ms = ponder_now_ms() - t_train;
    return 0;
}

/* --json's one object. */
static int report_json(const distill_opts *o, const distill_stats *r)
{
    const distill_score before = r->before, after = r->after;
    const double mean_agree = r->nq ? r->agree_sum / r->nq : 0.0;
    json_t *j = json_object();
    json_object_set_new(j, "teacher", json_string(r->teacher_path));
    json_object_set_new(j, "student", json_string(r->student_path));
    json_object_set_new(j, "out", json_string(o->out));
    json_object_set_new(j, "strategy", json_string(r->strategy));
    json_object_set_new(j, "temp", json_real(round((double)o->temp * 1e6) / 1e6)); /* as typed, not the float */
    json_object_set_new(j, "min_agreement", json_real(round((double)o->min_agreement * 1e6) / 1e6));
    json_object_set_new(j, "questions", json_integer(r->nq));
    json_object_set_new(j, "samples", json_integer((json_int_t)r->n_samples));
    json_object_set_new(j, "answered", json_integer((json_int_t)r->n_answered));
    json_object_set_new(j, "kept", json_integer((json_int_t)r->n_kept));
    json_object_set_new(j, "questions_voted", json_integer((json_int_t)r->q_voted));
    json_object_set_new(j, "questions_kept", json_integer((json_int_t)r->q_kept));
    json_object_set_new(j, "mean_agreement", json_real(mean_agree));
    json_object_set_new(j, "labeled", json_integer(r->n_gold));
    json_object_set_new(j, "teacher_vote_accuracy", r->n_gold ? json_real((double)r->vote_correct / r->n_gold) : json_null());
    json_object_set_new(j, "kept_accuracy", r->n_gold && r->n_kept ? json_real((double)r->n_kept_correct / (double)r->n_kept)
                                                             : json_null());
    json_object_set_new(j, "teacher_flops", json_real(r->teach_flops));
    json_object_set_new(j, "teacher_ms", json_real(r->teach_ms));
    json_object_set_new(j, "train", json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:f, s:f}", "steps", (int)o->steps,
                                              "batch", (int)o->batch, "accum", (int)o->accum, "sequences",
                                              (json_int_t)ponder_train_data_n_seqs(r->data), "tokens",
                                              (json_int_t)ponder_train_data_n_tokens(r->data), "skipped",
                                              (json_int_t)ponder_train_data_n_skipped(r->data), "first_loss",
                                              isfinite(r->first_loss) ? r->first_loss : 0.0, "final_loss", r->loss, "ms",
                                              r->train_ms));
    json_t *ev = json_object(), *groups = json_object();
    json_object_set_new(ev, "n", json_integer(before.n));
    json_object_set_new(ev, "before", score_json(&before));
    json_object_set_new(ev, "after", score_json(&after));
    for (int g = 0; g < DISTILL_MAX_GROUPS; g++) {
        if (!before.g_n[g])
            continue;
        char key[16];
        snprintf(key, sizeof key, "%d", g);
        json_object_set_new(groups, key, json_pack("{s:i, s:i, s:i}", "n", (int)before.g_n[g], "before",
                                                   (int)before.g_correct[g], "after", (int)after.g_correct[g]));
    }
    json_object_set_new(ev, "by_difficulty", groups);
    json_object_set_new(ev, "regressed", json_boolean(r->regressed));
    json_object_set_new(j, "eval", ev);
    /* 9 digits: 0.7, not the float 0.699999988 */
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!s)
        return cli_runtime_error("out of memory");
    puts(s);
    free(s);
    return 0;
}

/* The plain-text report. */
static void report_text(const distill_opts *o, const distill_stats *r)
{
    const distill_score before = r->before, after = r->after;
    const double mean_agree = r->nq ? r->agree_sum / r->nq : 0.0;
    double blo, bhi, alo, ahi;
    ponder_wilson_interval(before.correct, before.n, DISTILL_Z95, &blo, &bhi);
    ponder_wilson_interval(after.correct, after.n, DISTILL_Z95, &alo, &ahi);
    printf("teacher    %s, %s at T %.2f: %d questions, %lld chains, %lld with an answer\n", r->teacher_path, r->strategy,
           (double)o->temp, (int)r->nq, (long long)r->n_samples, (long long)r->n_answered);
    printf("kept       %lld chains from %lld questions (vote agrees with the chain; min agreement %.2f%s); "
           "mean agreement %.3f\n",
           (long long)r->n_kept, (long long)r->q_kept, (double)o->min_agreement, o->unique ? ", unique" : "", mean_agree);
    if (r->n_gold)
        printf("labels     (report only) teacher vote right on %d/%d, kept chains right %lld/%lld\n", (int)r->vote_correct,
               (int)r->n_gold, (long long)r->n_kept_correct, (long long)r->n_kept);
    printf("fine-tune  %d steps x %d x %d sequences on %lld pairs (%lld skipped): loss %.4f -> %.4f; %s written\n",
           (int)o->steps, (int)o->batch, (int)o->accum, (long long)ponder_train_data_n_seqs(r->data),
           (long long)ponder_train_data_n_skipped(r->data), isfinite(r->first_loss) ? r->first_loss : 0.0, r->loss, o->out);
    printf("student    held-out greedy accuracy %d/%d = %.4f [%.4f, %.4f] -> %d/%d = %.4f [%.4f, %.4f]\n",
           (int)before.correct, (int)before.n, before.n ? (double)before.correct / before.n : 0.0, blo, bhi,
           (int)after.correct, (int)after.n, after.n ? (double)after.correct / after.n : 0.0, alo, ahi);
    for (int g = 0; g < DISTILL_MAX_GROUPS; g++)
        if (before.g_n[g])
            printf("  difficulty %d: %d/%d -> %d/%d\n", g, (int)before.g_correct[g], (int)before.g_n[g],
                   (int)after.g_correct[g], (int)after.g_n[g]);
    printf("time       teacher %.1f s, fine-tune %.1f s, evaluation %.1f s\n", r->teach_ms / 1e3, r->train_ms / 1e3,
           (before.ms + after.ms) / 1e3);
}

/* Everything a run holds; distill_open fills it, distill_close frees it. */
typedef struct distill_run {
    ponder_model *teacher;
    ponder_tokenizer *ttok, *stok;
    ponder_gguf *sgguf;
    ponder_gen *tgen;
    ponder_pool *pool;
    ponder_distill_questions *qs;
    ponder_eval_items *held;
    ponder_distill_set *set;
    ponder_trainer *tr;
    ponder_train_data *data;
    char *jsonl;
    size_t jsonl_len;
} distill_run;

/* Loads the teacher, the student, the data and the trainer: everything that can be
 * refused is checked before the first model runs. 0 or the exit status (printed). */
static int distill_open(const distill_opts *o, const char *teacher_path, const char *student_path, distill_run *d)
{
    ponder_error err = { 0 };
    if (ponder_model_load(teacher_path, NULL, &d->teacher, &err) != PONDER_OK ||
        ponder_tokenizer_create(ponder_model_gguf(d->teacher), &d->ttok, &err) != PONDER_OK)
        return cli_runtime_error("%s: %s", teacher_path, err.msg);
    if (ponder_gguf_open(student_path, &d->sgguf, &err) != PONDER_OK ||
        ponder_tokenizer_create(d->sgguf, &d->stok, &err) != PONDER_OK)
        return cli_runtime_error("%s: %s", student_path, err.msg);
    if (ponder_distill_check_vocab(d->ttok, d->stok, &err) != PONDER_OK)
        return cli_runtime_error("teacher %s and student %s: %s", teacher_path, student_path, err.msg);
    if (ponder_distill_questions_load(o->data, o->limit, &d->qs, &err) != PONDER_OK ||
        ponder_eval_load("arith", o->eval_data, o->eval_limit, &d->held, &err) != PONDER_OK ||
        ponder_pool_create(o->threads, &d->pool, &err) != PONDER_OK ||
        ponder_distill_set_create(&d->set, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    if (d->held->n == 0)
        return cli_runtime_error("%s: no held-out problems", o->eval_data);
    ponder_train_params tp = ponder_train_params_default();
    tp.pool = d->pool;
    if (ponder_trainer_load(student_path, &tp, &d->tr, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    if (ponder_trainer_params(d->tr)->shape.n_vocab != ponder_tokenizer_n_vocab(d->stok))
        return cli_runtime_error("%s: %d embedding rows but %d tokens", student_path,
                                 (int)ponder_trainer_params(d->tr)->shape.n_vocab,
                                 (int)ponder_tokenizer_n_vocab(d->stok));
    ponder_trainer_reset_optimizer(d->tr);
    ponder_trainer_set_schedule(d->tr, o->lr, o->lr_min, o->warmup, o->steps, o->wd, o->clip);
    return 0;
}

static void distill_close(distill_run *d)
{
    free(d->jsonl);
    ponder_train_data_free(d->data);
    ponder_trainer_free(d->tr);
    ponder_distill_set_free(d->set);
    ponder_eval_items_free(d->held);
    ponder_distill_questions_free(d->qs);
    ponder_gen_free(d->tgen);
    ponder_pool_free(d->pool);
    ponder_tokenizer_free(d->stok);
    ponder_tokenizer_free(d->ttok);
    ponder_gguf_free(d->sgguf);
    ponder_model_free(d->teacher);
}

/* The options into *o and the strategy into *strat (the defaults filled in); -1 to go on,
 * else the exit status (help printed, or a usage error). */
static int distill_parse(const char *cmd, int argc, char **argv, distill_opts *o, ponder_strategy *strat)
{
    *o = (distill_opts){ .n_predict = DISTILL_DEFAULT_N_PREDICT, .steps = 200, .batch = 8, .accum = 1, .warmup = 20,
                         .threads = 1, .temp = PONDER_THINK_SAMPLED_TEMP, .lr = 5e-4f, .wd = 0.1f, .clip = 1.0f,
                         .seed = DISTILL_DEFAULT_SEED };
    const cli_opt opts[] = {
        { "--teacher", NULL, CLI_STRING, &o->teacher, 0, 0, NULL },
        { "--student", NULL, CLI_STRING, &o->student, 0, 0, NULL },
        { "--data", NULL, CLI_STRING, &o->data, 0, 0, NULL },
        { "--eval-data", NULL, CLI_STRING, &o->eval_data, 0, 0, NULL },
        { "-o", "--out", CLI_STRING, &o->out, 0, 0, NULL },
        { "--strategy", NULL, CLI_STRING, &o->strategy, 0, 0, NULL },
        { "--keep-chains", NULL, CLI_STRING, &o->keep_chains, 0, 0, NULL },
        { "--temp", NULL, CLI_FLOAT, &o->temp, 0, 100, &o->temp_given },
        { "-n", "--n-predict", CLI_INT, &o->n_predict, 1, 1 << 20, NULL },
        { "--min-agreement", NULL, CLI_FLOAT, &o->min_agreement, 0, 1, NULL },
        { "--unique", NULL, CLI_FLAG, &o->unique, 0, 0, NULL },
        { "--limit", NULL, CLI_INT, &o->limit, 1, INT32_MAX, NULL },
        { "--eval-limit", NULL, CLI_INT, &o->eval_limit, 1, INT32_MAX, NULL },
        { "--steps", NULL, CLI_INT, &o->steps, 1, INT32_MAX, NULL },
        { "--batch", NULL, CLI_INT, &o->batch, 1, 65536, NULL },
        { "--accum", NULL, CLI_INT, &o->accum, 1, 65536, NULL },
        { "--warmup", NULL, CLI_INT, &o->warmup, 0, INT32_MAX, NULL },
        { "--lr", NULL, CLI_FLOAT, &o->lr, 1e-9, 10, NULL },
        { "--lr-min", NULL, CLI_FLOAT, &o->lr_min, 0, 10, &o->lr_min_given },
        { "--wd", NULL, CLI_FLOAT, &o->wd, 0, 10, NULL },
        { "--clip", NULL, CLI_FLOAT, &o->clip, 0, 1e9, NULL },
        { "-s", "--seed", CLI_SEED, &o->seed, 0, 0, NULL },
        { "-t", "--threads", CLI_INT, &o->threads, 1, 1024, NULL },
        { "--json", NULL, CLI_FLAG, &o->json, 0, 0, NULL },
    };
    switch (cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL)) {
    case CLI_HELP:
        usage();
        return CLI_EXIT_OK;
    case CLI_BAD:
        return CLI_EXIT_USAGE;
    case CLI_PARSED:
        break;
    }
    if (!o->teacher || !o->student || !o->data || !o->eval_data || !o->out)
        return cli_usage_error(cmd, "--teacher, --student, --data, --eval-data and -o are required");
    ponder_error err = { 0 };
    *strat = (ponder_strategy){ .kind = PONDER_THINK_SC, .n_samples = 8 };
    if (o->strategy && ponder_strategy_parse(o->strategy, strat, &err) != PONDER_OK)
        return cli_usage_error(cmd, "%s", err.msg);
    if (strat->kind == PONDER_THINK_BON)
        return cli_usage_error(cmd, "bon picks a chain by likelihood, not by a vote; use sc:N or asc:N");
    if (!o->temp_given)
        o->temp = ponder_strategy_default_temp(strat); /* think's one rule: greedy for direct/cot */
    if (!o->lr_min_given)
        o->lr_min = o->lr / 10.0f;
    if (o->seed == PONDER_SEED_RANDOM)
        o->seed = DISTILL_DEFAULT_SEED; /* a distillation run is reproducible */
    return -1;
}

int cmd_distill(int argc, char **argv)
{
    const char *cmd = "distill";
    distill_opts o;
    ponder_strategy strat;
    int rc = distill_parse(cmd, argc, argv, &o, &strat);
    if (rc >= 0)
        return rc;
    ponder_error err = { 0 };
    char teacher_path[PATH_MAX], student_path[PATH_MAX];
    rc = cli_find_model(cmd, o.teacher, teacher_path, sizeof teacher_path);
    if (rc == 0)
        rc = cli_find_model(cmd, o.student, student_path, sizeof student_path);
    if (rc != 0)
        return rc;
    if (same_file(student_path, o.out))
        return cli_usage_error(cmd, "-o %s is the student itself; write the fine-tuned model elsewhere", o.out);

    const bool show = isatty(STDERR_FILENO) != 0; /* as ponder eval: stdout stays clean for --json */
    distill_run d = { 0 };
    rc = distill_open(&o, teacher_path, student_path, &d);
    if (rc != 0)
        goto done;
    rc = CLI_EXIT_RUNTIME;

    /* 1. the student before */
    distill_score before;
    if (score_model("before", student_path, d.held, d.pool, o.n_predict, show, &before) != CLI_EXIT_OK)
        goto done;

    /* 2. the teacher answers; its vote picks the chains */
    const bool single = strat.kind == PONDER_THINK_DIRECT || strat.kind == PONDER_THINK_COT;
    const int32_t chains = single ? 1 : strat.kind == PONDER_THINK_ASC ? (strat.n_samples < 4 ? strat.n_samples : 4)
                                                                       : strat.n_samples;
    if (make_gen(d.teacher, d.ttok, d.pool, chains, o.n_predict, &d.tgen, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", teacher_path, err.msg);
        goto done;
    }
    distill_stats st = { .teacher_path = teacher_path, .student_path = student_path };
    if (teach(&o, d.tgen, d.ttok, strat, d.qs, d.set, show, &st) != 0)
        goto done;
    ponder_gen_free(d.tgen);
    d.tgen = NULL;

    if (ponder_distill_set_jsonl(d.set, &d.jsonl, &d.jsonl_len, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (o.keep_chains && write_file(o.keep_chains, d.jsonl, d.jsonl_len) != CLI_EXIT_OK)
        goto done;
    if (st.n_kept == 0) {
        cli_runtime_error("the teacher kept no chain out of %lld (%lld answered): nothing to train on (lower "
                          "--min-agreement or use a stronger teacher)",
                          (long long)st.n_samples, (long long)st.n_answered);
        goto done;
    }

    /* 3. fine-tune the student on the kept chains */
    const int32_t n_ctx = ponder_trainer_params(d.tr)->shape.n_ctx;
    if (ponder_train_data_from_text(d.jsonl, d.jsonl_len, "kept chains", d.stok, n_ctx, &d.data, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    st.data = d.data;
    if (fine_tune(&o, d.tr, d.data, show, &st) != 0)
        goto done;
    if (ponder_trainer_save(d.tr, o.out, d.sgguf, false, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }

    /* 4. the student after, loaded back from the file written */
    distill_score after;
    if (score_model("after", o.out, d.held, d.pool, o.n_predict, show, &after) != CLI_EXIT_OK)
        goto done;
    st.before = before;
    st.after = after;

    char sname[32];
    st.strategy = ponder_strategy_format(&strat, sname, sizeof sname);
    /* a fine-tune can hurt (too high a learning rate, too few or wrong chains): say so
     * loudly, since the file is written either way */
    st.regressed = after.correct < before.correct;
    if (st.regressed)
        fprintf(stderr,
                "ponder: warning: the student got worse on the held-out items (%d/%d -> %d/%d); %s is written "
                "but keep the student you had (try a lower --lr, fewer --steps, or --min-agreement)\n",
                (int)before.correct, (int)before.n, (int)after.correct, (int)after.n, o.out);
    if (o.json) {
        if (report_json(&o, &st) != 0)
            goto done;
    } else {
        report_text(&o, &st);
    }
    if (fflush(stdout) != 0) {
        cli_runtime_error("writing the output failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    distill_close(&d);
    return rc;
}
