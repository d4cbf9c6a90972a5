/*
 * cmd_eval.c — `ponder eval`: accuracy of a model on a task under one or several
 * test-time strategies, with the compute each one spent (tokens, FLOPs, time per item),
 * a JSONL log of every item, and for --sweep a CSV and a plot of accuracy against FLOPs
 * per item (the test-time-compute curve).
 *
 * Generative tasks run a think strategy per item and compare the voted number with the
 * gold. Choice tasks are scored by log-likelihood (lm-eval-harness: acc and acc_norm) unless
 * a generative strategy is asked, then the letter is extracted from generated text.
 * Also home of cli_think_json, the JSON shape `ponder run --strategy --json` prints.
 */
#include "cli/cli.h"
#include "cli/plot.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/think.h"
#include "ponder/tokenizer.h"

#define EVAL_DEFAULT_N_PREDICT 256
#define EVAL_DEFAULT_N_CTX 2048
#define EVAL_DEFAULT_SEED 42
#define EVAL_Z95 1.959963984540054 /* two-sided 95% normal quantile */
#define EVAL_MAX_STRATEGIES 16
#define EVAL_LOGLIK "loglik"

static void usage(void)
{
    printf("usage: ponder eval -m MODEL --task TASK [options]\n"
           "\n"
           "Accuracy of the model on a task, with a 95%% Wilson confidence interval and the\n"
           "compute spent per item (generated tokens, FLOPs, wall time).\n"
           "\n"
           "tasks (data from ../shared/data unless --data is given):\n"
           "  gsm8k svamp multiarith addsub singleeq   generative, numeric answers\n"
           "  arith                                    generative, JSONL {\"question\",\"solution\",\n"
           "                                           \"answer\"} given with --data\n"
           "  arc-easy arc-challenge hellaswag mmlu     multiple choice: scored by log-likelihood\n"
           "                                           of each choice (acc and acc_norm), or\n"
           "                                           generatively with a strategy\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        GGUF file, or a name in $PONDER_MODELS\n"
           "      --task TASK          the task\n"
           "      --data FILE          the data file (mmlu: a CSV or a folder of them)\n"
           "      --strategy S         direct, cot, sc:N, asc:N, bon:N (default: cot for\n"
           "                           generative tasks), or loglik (default for choice tasks)\n"
           "      --sweep LIST         comma-separated strategies, each run on every item\n"
           "      --limit N            the first N items only\n"
           "      --shots FILE         few-shot exemplars: text put before every prompt\n"
           "      --fewshot K          K chain-of-thought exemplars \"Question: ..\\nAnswer: ..\n"
           "                           The answer is N.\" built from gsm8k's train.jsonl, or for\n"
           "                           arith from the first K items of --data (not evaluated)\n"
           "  -n, --n-predict N        max tokens per chain (default: %d)\n"
           "  -c, --ctx-size N         context per chain (default: %d, clipped to the model's)\n"
           "  -t, --threads N          threads (default: the number of CPUs)\n"
           "      --temp T             temperature (default: 0 for direct/cot; for sc/asc/bon\n"
           "                           the model's ponder.sampled_temp metadata, else %.1f)\n"
           "      --top-k K, --top-p P sampling filters (defaults as ponder run)\n"
           "  -s, --seed S             seed (default: %d); item i uses S + i * %d, chain j of\n"
           "                           it S + i * %d + j\n"
           "      --asc-round K        asc: chains per round (default: 4)\n"
           "      --asc-threshold P    asc: stop when P(majority) > P (default: 0.95)\n"
           "      --verifier FILE      bon: a verifier model judges every chain and the best\n"
           "                           one wins (its FLOPs are counted);\n"
           "                           scripts/train-arith-verifier.sh trains one\n"
           "      --verifier-vote      bon with --verifier: the answer whose chains' scores\n"
           "                           add up highest wins (a weighted vote)\n"
           "      --cue, --no-cue      append \"Let's think step by step.\" (cot, sc, asc, bon) or\n"
           "                           not; default: the model's ponder.cue metadata, else\n"
           "                           --cue, except for items in their own format (arith)\n"
           "\n"
           "output:\n"
           "      --json               stdout: one JSON object per strategy, the last line is\n"
           "                           {\"task\", \"strategy\", \"n\", \"accuracy\", \"ci95\": [lo, hi],\n"
           "                            \"mean_tokens\", \"mean_flops\", \"mean_ms\"} (+ acc_norm\n"
           "                           for loglik). mean_tokens: generated tokens per item\n"
           "                           (loglik: tokens scored); FLOPs as in think.h\n"
           "      --log FILE.jsonl     one JSON line per item and strategy: prompt, samples,\n"
           "                           extracted answers, votes, answer, gold, correct\n"
           "      --csv FILE           one row per strategy\n"
           "      --plot FILE          accuracy against FLOPs per item, .svg or .png\n"
           "                           (drawn by gnuplot: gnuplot-nox)\n"
           "  -h, --help               this help\n"
           "\n"
           "A progress line is shown on stderr when it is a terminal.\n"
           "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
           EVAL_DEFAULT_N_PREDICT, EVAL_DEFAULT_N_CTX, (double)PONDER_THINK_SAMPLED_TEMP, EVAL_DEFAULT_SEED,
           PONDER_THINK_MAX_SAMPLES, PONDER_THINK_MAX_SAMPLES);
}

/* ---- the JSON of one think result (also `ponder run --strategy --json`) ---- */

json_t *cli_think_json(const ponder_think_result *r)
{
    char sname[32];
    json_t *o = json_object(), *samples = json_array(), *votes = json_object();
    if (!o || !samples || !votes) {
        json_decref(o);
        json_decref(samples);
        json_decref(votes);
        return NULL;
    }
    json_object_set_new(o, "answer", r->answer ? json_string(r->answer) : json_null());
    json_object_set_new(o, "strategy", json_string(ponder_strategy_format(&r->strategy, sname, sizeof sname)));
    for (int32_t i = 0; i < r->n_samples; i++) {
        const ponder_think_sample *s = &r->samples[i];
        json_t *j = json_object();
        if (!j)
            break;
        json_object_set_new(j, "text", cli_json_string(s->text, s->text_len));
        json_object_set_new(j, "answer", s->answer[0] ? json_string(s->answer) : json_null());
        json_object_set_new(j, "tokens", json_integer(s->n_tokens));
        json_object_set_new(j, "mean_logprob", json_real(s->mean_logprob));
        if (s->verifier_score >= 0)
            json_object_set_new(j, "verifier_score", json_real(s->verifier_score));
        json_array_append_new(samples, j);
    }
    json_object_set_new(o, "samples", samples);
    for (int32_t i = 0; i < r->n_votes; i++)
        json_object_set_new(votes, r->votes[i].answer, json_integer(r->votes[i].count));
    json_object_set_new(o, "votes", votes);
    json_object_set_new(o, "agreement", json_real(r->agreement));
    json_object_set_new(o, "usage",
                        json_pack("{s:I, s:I, s:I, s:I}", "prompt_tokens", (json_int_t)r->usage.prompt_tokens,
                                  "prompt_tokens_evaluated", (json_int_t)r->usage.prompt_tokens_evaluated,
                                  "completion_tokens", (json_int_t)r->usage.completion_tokens, "flops",
                                  (json_int_t)(r->usage.flops > (uint64_t)INT64_MAX ? INT64_MAX : r->usage.flops)));
    json_object_set_new(o, "timings", json_pack("{s:f}", "wall_ms", r->usage.wall_ms));
    return o;
}

/* ---- options and per-strategy totals ---- */

typedef struct eval_opts {
    cli_model_opts mo;
    const char *task, *data, *strategy, *sweep, *log, *csv, *plot, *shots;
    int32_t limit, n_predict, asc_round, fewshot;
    float temp, top_p, asc_threshold;
    int32_t top_k;
    bool temp_given, json, cue, no_cue, verifier_vote;
    uint64_t seed;
} eval_opts;

typedef struct eval_row {
    char name[32];
    bool loglik;              /* else a think strategy */
    ponder_strategy strategy;
    int32_t n, correct, correct_norm;
    double tokens, flops, ms, samples, prompt_evaluated; /* totals */
} eval_row;

static void row_stats(const eval_row *r, double *acc, double *lo, double *hi)
{
    *acc = r->n > 0 ? (double)r->correct / r->n : 0.0;
    ponder_wilson_interval(r->correct, r->n, EVAL_Z95, lo, hi);
}

static double per_item(double total, int32_t n) { return n > 0 ? total / n : 0.0; }

static json_t *row_json(const char *task, const eval_row *r)
{
    double acc, lo, hi;
    row_stats(r, &acc, &lo, &hi);
    json_t *o = json_pack("{s:s, s:s, s:i, s:f, s:[f, f], s:f, s:f, s:f}", "task", task, "strategy", r->name, "n",
                          (int)r->n, "accuracy", acc, "ci95", lo, hi, "mean_tokens", per_item(r->tokens, r->n),
                          "mean_flops", per_item(r->flops, r->n), "mean_ms", per_item(r->ms, r->n));
    if (o && r->loglik) {
        double lo2, hi2;
        ponder_wilson_interval(r->correct_norm, r->n, EVAL_Z95, &lo2, &hi2);
        json_object_set_new(o, "acc_norm", json_real(r->n > 0 ? (double)r->correct_norm / r->n : 0.0));
        json_object_set_new(o, "ci95_norm", json_pack("[f, f]", lo2, hi2));
    } else if (o) {
        json_object_set_new(o, "mean_samples", json_real(per_item(r->samples, r->n)));
        json_object_set_new(o, "mean_prompt_tokens_evaluated", json_real(per_item(r->prompt_evaluated, r->n)));
    }
    return o;
}

/* ---- finding the data ---- */

static bool readable(const char *p) { return access(p, R_OK) == 0; }

static bool find_data(const char *rel, char *out, size_t cap)
{
    const char *shared = getenv("PONDER_SHARED");
    if (shared && *shared) {
        snprintf(out, cap, "%s/%s", shared, rel);
        if (readable(out))
            return true;
    }
    snprintf(out, cap, "../shared/%s", rel);
    if (readable(out))
        return true;
    if (PONDER_SHARED_BUILD_DEFAULT[0]) {
        snprintf(out, cap, "%s/%s", PONDER_SHARED_BUILD_DEFAULT, rel);
        if (readable(out))
            return true;
    }
    return false;
}

/* ---- plot and CSV ---- */

static int write_csv(const char *path, const char *task, const eval_row *rows, int n_rows)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_runtime_error("%s: %s", path, strerror(errno));
    fprintf(f, "task,strategy,n,correct,accuracy,ci95_lo,ci95_hi,mean_tokens,mean_flops,mean_ms,mean_samples,"
               "mean_prompt_tokens_evaluated\n");
    for (int i = 0; i < n_rows; i++) {
        const eval_row *r = &rows[i];
        double acc, lo, hi;
        row_stats(r, &acc, &lo, &hi);
        fprintf(f, "%s,%s,%d,%d,%.6f,%.6f,%.6f,%.3f,%.6e,%.3f,%.3f,%.3f\n", task, r->name, (int)r->n, (int)r->correct,
                acc, lo, hi, per_item(r->tokens, r->n), per_item(r->flops, r->n), per_item(r->ms, r->n),
                per_item(r->samples, r->n), per_item(r->prompt_evaluated, r->n));
    }
    if (fclose(f) != 0)
        return cli_runtime_error("%s: write failed", path);
    return 0;
}

/* Accuracy (with its 95% interval as error bars) against FLOPs per item, one point per
 * strategy joined in FLOPs order. */
static int write_plot(const char *path, const char *task, const char *model, const eval_row *rows, int n_rows)
{
    cli_plot_point pts[EVAL_MAX_STRATEGIES];
    char labels[EVAL_MAX_STRATEGIES][64];
    for (int i = 0; i < n_rows; i++) {
        double acc, lo, hi;
        row_stats(&rows[i], &acc, &lo, &hi);
        snprintf(labels[i], sizeof labels[i], "%.40s (%.2f)", rows[i].name, acc);
        pts[i] = (cli_plot_point){ per_item(rows[i].flops, rows[i].n), acc, lo, hi, labels[i] };
    }
    char title[512];
    snprintf(title, sizeof title, "%.64s: accuracy vs test-time compute (%.300s)", task, model);
    cli_plot_series s = { "strategies", "#1f77b4", pts, n_rows, true, 4 };
    cli_plot p = { title, "FLOPs per item (log scale)", "accuracy (95% Wilson interval)", &s, 1 };
    return cli_plot_write(path, &p);
}

/* ---- the evaluation ---- */

typedef struct eval_env {
    const eval_opts *o;
    const ponder_eval_items *items;
    cli_engine en;
    const ponder_model *m;    /* en's */
    const ponder_tokenizer *tok;
    ponder_think_model_prefs prefs; /* the model's ponder.cue and ponder.sampled_temp */
    ponder_gen *gen;          /* generative strategies */
    ponder_context *ctx;      /* loglik */
    int32_t first;            /* items before it are --fewshot exemplars */
    char *shots;
    FILE *log;
    bool progress;
} eval_env;

/* Choice items asked generatively: the options listed, then "Answer:". */
static char *choice_prompt(const ponder_eval_item *it)
{
    if (it->subject) /* mmlu's prompt lists them already */
        return strdup(it->question);
    size_t ql = strlen(it->question), need = ql + 64;
    for (int32_t c = 0; c < it->n_choices; c++)
        need += strlen(it->choices[c]) + 8;
    char *p = malloc(need);
    if (!p)
        return NULL;
    const char *cue = "\nAnswer:";
    size_t base = ql >= strlen(cue) && strcmp(it->question + ql - strlen(cue), cue) == 0 ? ql - strlen(cue) : ql;
    size_t n = (size_t)snprintf(p, need, "%.*s", (int)base, it->question);
    for (int32_t c = 0; c < it->n_choices && n < need; c++)
        n += (size_t)snprintf(p + n, need - n, "\n%c.%s", 'A' + c, it->choices[c]);
    if (n < need)
        snprintf(p + n, need - n, "%s", cue);
    return p;
}

static void log_line(eval_env *e, json_t *j)
{
    if (!e->log || !j)
        return;
    char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (s) {
        fputs(s, e->log);
        fputc('\n', e->log);
        free(s);
    }
}

static void progress(eval_env *e, const eval_row *r, int32_t done)
{
    if (!e->progress)
        return;
    fprintf(stderr, "\r%s %s: %d/%d  accuracy %.3f   ", e->items->task, r->name, (int)done, (int)(e->items->n - e->first),
            done > 0 ? (double)r->correct / done : 0.0);
    fflush(stderr);
}

static int eval_loglik(eval_env *e, eval_row *r)
{
    ponder_error err = { 0 };
    for (int32_t i = e->first; i < e->items->n; i++) {
        const ponder_eval_item *it = &e->items->items[i];
        ponder_choice_scores sc;
        const double t0 = ponder_now_ms();
        if (ponder_think_score_choices(e->ctx, e->m, e->tok, it->question, (const char *const *)it->choices,
                                       it->n_choices, &sc, &err) != PONDER_OK)
            return cli_runtime_error("item %d: %s", (int)i, err.msg);
        const double ms = ponder_now_ms() - t0;
        bool ok = sc.best == it->gold_index, ok_norm = sc.best_norm == it->gold_index;
        r->n++;
        r->correct += ok;
        r->correct_norm += ok_norm;
        r->tokens += (double)sc.tokens_evaluated;
        r->flops += (double)sc.flops;
        r->ms += ms;
        if (e->log) {
            json_t *j = json_pack("{s:i, s:s, s:s, s:s}", "i", (int)i, "task", e->items->task, "strategy", r->name,
                                  "prompt", it->question);
            json_t *scores = json_array();
            for (int32_t c = 0; c < it->n_choices; c++)
                json_array_append_new(scores, json_pack("{s:s, s:f, s:i}", "choice", it->choices[c], "sum_logprob",
                                                        sc.sum_logprob[c], "tokens", (int)sc.n_tokens[c]));
            json_object_set_new(j, "scores", scores);
            json_object_set_new(j, "gold", json_integer(it->gold_index));
            json_object_set_new(j, "pred", json_integer(sc.best));
            json_object_set_new(j, "pred_norm", json_integer(sc.best_norm));
            json_object_set_new(j, "correct", json_boolean(ok));
            json_object_set_new(j, "correct_norm", json_boolean(ok_norm));
            json_object_set_new(j, "flops", json_integer((json_int_t)sc.flops));
            json_object_set_new(j, "ms", json_real(ms));
            log_line(e, j);
            json_decref(j);
        }
        ponder_choice_scores_free(&sc);
        progress(e, r, r->n);
    }
    return 0;
}

static int eval_think(eval_env *e, eval_row *r)
{
    const eval_opts *o = e->o;
    const bool choice = e->items->kind == PONDER_TASK_CHOICE;
    ponder_think_params p = ponder_think_params_default();
    p.sampling.temp = o->temp;
    ponder_strategy_ask ask = { .strategy = r->name,
                                .cue = o->cue ? PONDER_CUE_ON : o->no_cue ? PONDER_CUE_OFF : PONDER_CUE_MODEL };
    ponder_strategy_plan plan;
    p.sampling.top_p = o->top_p;
    p.sampling.top_k = o->top_k;
    p.max_tokens = o->n_predict;
    p.prefix = e->shots;
    p.answer_kind = choice ? PONDER_ANSWER_CHOICE : PONDER_ANSWER_NUMBER;
    p.asc_round = o->asc_round;
    p.asc_threshold = o->asc_threshold;
    p.verifier = e->en.verifier;
    p.verifier_vote = o->verifier_vote;
    /* a chain ends where a model would start the next question */
    static const char *const stop_cot[] = { "\nQuestion:", "\n\n\n" };
    static const char *const stop_direct[] = { "\n" };
    if (r->strategy.kind == PONDER_THINK_DIRECT) {
        p.stop = stop_direct;
        p.n_stop = 1;
    } else {
        p.stop = stop_cot;
        p.n_stop = 2;
    }
    ponder_error err = { 0 };
    for (int32_t i = e->first; i < e->items->n; i++) {
        const ponder_eval_item *it = &e->items->items[i];
        p.n_choices = it->n_choices;
        /* think's one cue rule; a plain-prompt item is the format the model was trained on
         * (its solution follows the question directly): there the default is no cue */
        ponder_think_model_prefs prefs = e->prefs;
        prefs.cue = prefs.cue && !it->plain_prompt;
        if (ponder_strategy_plan_make(&ask, &prefs, &plan, &err) != PONDER_OK)
            return cli_runtime_error("%s", err.msg);
        ponder_think_params_from_plan(&p, &plan, o->temp_given);
        p.answer_kind = choice ? PONDER_ANSWER_CHOICE : PONDER_ANSWER_NUMBER;
        p.sampling.seed = o->seed + (uint64_t)i * PONDER_THINK_MAX_SAMPLES;
        char *prompt = choice ? choice_prompt(it) : ponder_eval_prompt(it, r->strategy.kind);
        if (!prompt)
            return cli_runtime_error("out of memory");
        ponder_think_result *res = NULL;
        if (ponder_think_run(e->gen, e->tok, &p, prompt, &res, &err) != PONDER_OK) {
            free(prompt);
            return cli_runtime_error("item %d: %s", (int)i, err.msg);
        }
        const bool ok = res->answer && ponder_answer_equal(p.answer_kind, res->answer, it->gold);
        r->n++;
        r->correct += ok;
        r->tokens += (double)res->usage.completion_tokens;
        r->flops += (double)res->usage.flops;
        r->ms += res->usage.wall_ms;
        r->samples += res->n_samples;
        r->prompt_evaluated += (double)res->usage.prompt_tokens_evaluated;
        if (e->log) {
            json_t *j = json_pack("{s:i, s:s}", "i", (int)i, "task", e->items->task);
            json_t *t = cli_think_json(res);
            if (j && t) {
                json_object_update(j, t); /* answer, strategy, samples, votes, agreement, usage, timings */
                json_object_set_new(j, "prompt", json_string(prompt));
                json_object_set_new(j, "gold", json_string(it->gold));
                json_object_set_new(j, "correct", json_boolean(ok));
                json_object_set_new(j, "rounds", json_integer(res->n_rounds));
                log_line(e, j);
            }
            json_decref(t);
            json_decref(j);
        }
        ponder_think_result_free(res);
        free(prompt);
        progress(e, r, r->n);
    }
    return 0;
}

static int max_chains(const ponder_strategy *s, int32_t asc_round)
{
    switch (s->kind) {
    case PONDER_THINK_SC:
    case PONDER_THINK_BON:
        return s->n_samples;
    case PONDER_THINK_ASC:
        return s->n_samples < asc_round ? s->n_samples : asc_round;
    default:
        return 1;
    }
}

/* The strategies of --strategy / --sweep (default: cot, or loglik for a choice task) into
 * rows; 0 or the usage error's status. */
static int parse_rows(const char *cmd, const eval_opts *o, ponder_task_kind kind, eval_row *rows, int *n_rows)
{
    ponder_error err = { 0 };
    char list[1024];
    snprintf(list, sizeof list, "%s",
             o->sweep ? o->sweep : o->strategy ? o->strategy : kind == PONDER_TASK_CHOICE ? EVAL_LOGLIK : "cot");
    *n_rows = 0;
    for (char *save = NULL, *tokn = strtok_r(list, ",", &save); tokn; tokn = strtok_r(NULL, ",", &save)) {
        while (*tokn == ' ')
            tokn++;
        if (!*tokn)
            continue;
        if (*n_rows == EVAL_MAX_STRATEGIES)
            return cli_usage_error(cmd, "at most %d strategies", EVAL_MAX_STRATEGIES);
        eval_row *r = &rows[*n_rows];
        memset(r, 0, sizeof *r);
        if (strcmp(tokn, EVAL_LOGLIK) == 0) {
            if (kind != PONDER_TASK_CHOICE)
                return cli_usage_error(cmd, "strategy loglik needs a multiple-choice task, not %s", o->task);
            r->loglik = true;
            snprintf(r->name, sizeof r->name, "%s", EVAL_LOGLIK);
        } else {
            if (ponder_strategy_parse(tokn, &r->strategy, &err) != PONDER_OK)
                return cli_usage_error(cmd, "%s (or loglik for choice tasks)", err.msg);
            ponder_strategy_format(&r->strategy, r->name, sizeof r->name);
        }
        (*n_rows)++;
    }
    return *n_rows == 0 ? cli_usage_error(cmd, "no strategy given") : 0;
}

/* The flags that must agree; 0 or the usage error's status. */
static int check_flags(const char *cmd, eval_opts *o, ponder_task_kind *kind)
{
    ponder_error err = { 0 };
    if (!o->task)
        return cli_usage_error(cmd, "--task is required (gsm8k, svamp, multiarith, addsub, singleeq, arith, arc-easy, "
                                    "arc-challenge, hellaswag, mmlu)");
    if (ponder_task_kind_of(o->task, kind, &err) != PONDER_OK)
        return cli_usage_error(cmd, "%s", err.msg);
    if (o->strategy && o->sweep)
        return cli_usage_error(cmd, "give --strategy or --sweep, not both");
    if (o->fewshot > 0 && o->shots)
        return cli_usage_error(cmd, "give --shots or --fewshot, not both");
    if (o->fewshot > 0 && strcmp(o->task, "arith") != 0 && strcmp(o->task, "gsm8k") != 0)
        return cli_usage_error(cmd, "--fewshot builds exemplars for gsm8k and arith only (use --shots FILE for %s)",
                               o->task);
    if (o->cue && o->no_cue)
        return cli_usage_error(cmd, "give --cue or --no-cue, not both");
    if (o->seed == PONDER_SEED_RANDOM)
        o->seed = EVAL_DEFAULT_SEED; /* an eval is reproducible: -1 means the default seed */
    if (o->plot && !cli_plot_path_ok(o->plot))
        return cli_usage_error(cmd, "--plot %s: the file must end in .svg or .png", o->plot);
    return 0;
}

/* --verifier judges bon's chains: refused where no row would use it */
static int check_verifier(const char *cmd, const eval_opts *o, const eval_row *rows, int n_rows)
{
    if (o->verifier_vote && !o->mo.verifier)
        return cli_usage_error(cmd, "--verifier-vote needs --verifier FILE");
    if (!o->mo.verifier)
        return 0;
    for (int i = 0; i < n_rows; i++)
        if (!rows[i].loglik && rows[i].strategy.kind == PONDER_THINK_BON)
            return 0;
    return cli_usage_error(cmd, "--verifier judges bon:N chains; no bon strategy is in --strategy/--sweep");
}

/* The items (and --fewshot / --shots exemplars) into e; 0 or the exit status (printed). */
static int load_items(eval_env *e, const eval_opts *o, const char *data_path, ponder_eval_items **items)
{
    ponder_error err = { 0 };
    const bool is_arith = strcmp(o->task, "arith") == 0;
    const int32_t load_limit = is_arith && o->fewshot > 0 && o->limit > 0 ? o->limit + o->fewshot : o->limit;
    if (ponder_eval_load(o->task, data_path, load_limit, items, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    e->items = *items;
    if (o->shots) {
        size_t len;
        return (e->shots = cli_read_file(o->shots, &len)) ? 0 : CLI_EXIT_RUNTIME;
    }
    if (o->fewshot <= 0)
        return 0;
    ponder_eval_items *train = NULL;
    char train_path[PATH_MAX];
    if (is_arith) {
        if ((*items)->n <= o->fewshot)
            return cli_runtime_error("%s: %d items, none left after %d exemplars", data_path, (int)(*items)->n,
                                     (int)o->fewshot);
        e->first = o->fewshot;
    } else if (!find_data("data/gsm8k/train.jsonl", train_path, sizeof train_path)) {
        return cli_runtime_error("data/gsm8k/train.jsonl: not found under $PONDER_SHARED or ../shared (use --shots FILE)");
    } else if (ponder_eval_load("gsm8k", train_path, o->fewshot, &train, &err) != PONDER_OK) {
        return cli_runtime_error("%s", err.msg);
    }
    ponder_status fs = ponder_eval_exemplars(train ? train : *items, o->fewshot, &e->shots, &err);
    ponder_eval_items_free(train);
    return fs == PONDER_OK ? 0 : cli_runtime_error("--fewshot: %s", err.msg);
}

/* What the rows need over the model: a context for loglik, a gen engine holding the most
 * chains any strategy decodes at once. 0 or the exit status (printed). */
static int open_runners(eval_env *e, const eval_row *rows, int n_rows)
{
    const eval_opts *o = e->o;
    const int32_t train = ponder_model_hparams(e->m)->n_ctx_train;
    if (train > 0 && e->en.cp.n_ctx > train) /* -c is clipped to the model's */
        e->en.cp.n_ctx = train;
    const int32_t n_ctx = e->en.cp.n_ctx;
    int chains = 0;
    bool need_ctx = false;
    for (int i = 0; i < n_rows; i++) {
        if (rows[i].loglik)
            need_ctx = true;
        else if (max_chains(&rows[i].strategy, o->asc_round) > chains)
            chains = max_chains(&rows[i].strategy, o->asc_round);
    }
    int rc = need_ctx ? cli_engine_context(&e->en, &e->ctx) : 0;
    if (rc != 0 || chains == 0)
        return rc;
    /* one prompt's cells shared by the chains plus each chain's own tokens */
    int32_t n_cells = 0;
    if (o->n_predict > 0 && (int64_t)n_ctx + (int64_t)chains * (o->n_predict + 1) < (int64_t)n_ctx * chains)
        n_cells = n_ctx + chains * (o->n_predict + 1);
    return cli_engine_gen(&e->en, chains, n_cells, 0, &e->gen);
}

/* One strategy's line on stdout: JSON or text. 0 or the exit status (printed). */
static int print_row(const eval_opts *o, const char *task, const eval_row *r)
{
    double acc, lo, hi;
    row_stats(r, &acc, &lo, &hi);
    if (o->json) {
        json_t *j = row_json(task, r);
        char *s = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s)
            return cli_runtime_error("out of memory");
        puts(s);
        free(s);
    } else {
        printf("%s %-8s n=%d  accuracy %.4f [%.4f, %.4f]", task, r->name, (int)r->n, acc, lo, hi);
        if (r->loglik)
            printf("  acc_norm %.4f", r->n ? (double)r->correct_norm / r->n : 0.0);
        printf("  tokens/item %.1f  FLOPs/item %.3g  ms/item %.1f\n", per_item(r->tokens, r->n),
               per_item(r->flops, r->n), per_item(r->ms, r->n));
    }
    fflush(stdout);
    return 0;
}

/* Every row over the items, then the CSV and the plot. 0 or the exit status (printed). */
static int run_rows(eval_env *e, eval_row *rows, int n_rows)
{
    const eval_opts *o = e->o;
    const char *task = e->items->task;
    for (int i = 0; i < n_rows; i++) {
        int st = rows[i].loglik ? eval_loglik(e, &rows[i]) : eval_think(e, &rows[i]);
        if (e->progress)
            fputc('\n', stderr);
        if (st != 0 || (st = print_row(o, task, &rows[i])) != 0)
            return st;
    }
    if (o->csv && write_csv(o->csv, task, rows, n_rows) != 0)
        return CLI_EXIT_RUNTIME;
    if (o->plot) {
        const char *base = strrchr(e->en.path, '/');
        if (write_plot(o->plot, task, base ? base + 1 : e->en.path, rows, n_rows) != 0)
            return CLI_EXIT_RUNTIME;
    }
    if (e->log && fflush(e->log) != 0)
        return cli_runtime_error("%s: write failed", o->log);
    if (fflush(stdout) != 0)
        return cli_runtime_error("writing the output failed: %s", strerror(errno ? errno : EIO));
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    ponder_sampler_params sd = ponder_sampler_params_default();
    eval_opts o = {
        .n_predict = EVAL_DEFAULT_N_PREDICT,
        .mo.n_ctx = EVAL_DEFAULT_N_CTX,
        .asc_round = 4,
        .asc_threshold = 0.95f,
        .top_p = sd.top_p,
        .top_k = sd.top_k,
        .seed = EVAL_DEFAULT_SEED,
    };
    const cli_opt opts[] = {
        CLI_MODEL_OPTS(&o.mo),
        { "--task", NULL, CLI_STRING, &o.task, 0, 0, NULL },
        { "--data", NULL, CLI_STRING, &o.data, 0, 0, NULL },
        { "--strategy", NULL, CLI_STRING, &o.strategy, 0, 0, NULL },
        { "--sweep", NULL, CLI_STRING, &o.sweep, 0, 0, NULL },
        { "--limit", NULL, CLI_INT, &o.limit, 1, INT32_MAX, NULL },
        { "--shots", NULL, CLI_STRING, &o.shots, 0, 0, NULL },
        { "--fewshot", NULL, CLI_INT, &o.fewshot, 1, 64, NULL },
        { "-n", "--n-predict", CLI_INT, &o.n_predict, -1, INT32_MAX, NULL },
        { "--temp", NULL, CLI_FLOAT, &o.temp, 0, 0, &o.temp_given },
        { "--top-k", NULL, CLI_INT, &o.top_k, 0, 0, NULL },
        { "--top-p", NULL, CLI_FLOAT, &o.top_p, 0, 1, NULL },
        { "-s", "--seed", CLI_SEED, &o.seed, 0, 0, NULL },
        { "--asc-round", NULL, CLI_INT, &o.asc_round, 1, PONDER_THINK_MAX_SAMPLES, NULL },
        { "--asc-threshold", NULL, CLI_FLOAT, &o.asc_threshold, 0.5, 0.999999, NULL },
        { "--verifier", NULL, CLI_STRING, &o.mo.verifier, 0, 0, NULL },
        { "--verifier-vote", NULL, CLI_FLAG, &o.verifier_vote, 0, 0, NULL },
        { "--cue", NULL, CLI_FLAG, &o.cue, 0, 0, NULL },
        { "--no-cue", NULL, CLI_FLAG, &o.no_cue, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &o.json, 0, 0, NULL },
        { "--log", NULL, CLI_STRING, &o.log, 0, 0, NULL },
        { "--csv", NULL, CLI_STRING, &o.csv, 0, 0, NULL },
        { "--plot", NULL, CLI_STRING, &o.plot, 0, 0, NULL },
    };
    cli_result pr = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (pr == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (pr != CLI_PARSED)
        return CLI_EXIT_USAGE;
    ponder_task_kind kind;
    eval_row rows[EVAL_MAX_STRATEGIES];
    int n_rows = 0;
    int rc = check_flags(cmd, &o, &kind);
    if (rc == 0)
        rc = parse_rows(cmd, &o, kind, rows, &n_rows);
    if (rc == 0)
        rc = check_verifier(cmd, &o, rows, n_rows);
    if (rc != 0)
        return rc;
    char data_path[PATH_MAX];
    if (o.data) {
        snprintf(data_path, sizeof data_path, "%s", o.data);
    } else {
        const char *rel = ponder_task_default_data(o.task);
        if (!rel)
            return cli_usage_error(cmd, "task %s needs --data FILE", o.task);
        if (!find_data(rel, data_path, sizeof data_path))
            return cli_runtime_error("%s: not found under $PONDER_SHARED or ../shared (give --data)", rel);
    }
    char model_path[PATH_MAX];
    if ((rc = cli_find_model(cmd, o.mo.model, model_path, sizeof model_path)) != 0)
        return rc;

    eval_env e = { .o = &o, .progress = isatty(STDERR_FILENO) != 0 };
    ponder_eval_items *items = NULL;
    rc = load_items(&e, &o, data_path, &items);
    if (rc == 0 && o.log && !(e.log = fopen(o.log, "w")))
        rc = cli_runtime_error("%s: %s", o.log, strerror(errno));
    if (rc == 0 && (rc = cli_engine_open(cmd, &o.mo, EVAL_DEFAULT_N_CTX, &e.en)) == 0) {
        e.m = e.en.m;
        e.tok = e.en.tok;
        e.prefs = ponder_think_model_defaults(e.m);
        rc = open_runners(&e, rows, n_rows);
    }
    if (rc == 0)
        rc = run_rows(&e, rows, n_rows);
    if (e.log)
        fclose(e.log);
    free(e.shots);
    ponder_gen_free(e.gen);
    ponder_context_free(e.ctx);
    cli_engine_close(&e.en);
    ponder_eval_items_free(items);
    return rc;
}
