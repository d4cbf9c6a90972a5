/*
 * cmd_calibrate.c — `ponder calibrate`: thresholds for a two-stage cascade route.
 *
 * Every item of a validation file goes once through stage 1 and once through stage 2,
 * each through the router built from the config (in-process local backends, the same
 * stage requests the serving path sends: ponder_cascade_stage_call), recording stage 1's
 * confidence signals, both stages' correctness and cost. Then every threshold pair is
 * scored offline (ponder_calib_sweep; no model runs again): the accuracy-vs-cost frontier
 * goes to a CSV and a plot, the pick of the documented rule to stdout with the YAML to
 * paste into the stage.
 */
#include "cli/cli.h"
#include "cli/plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ponder/cascade.h"
#include "ponder/route.h"
#include "ponder/think.h"

#define CAL_DEFAULT_N_PREDICT 128 /* the arith models have 256 positions; a solution takes ~50 */
#define CAL_DEFAULT_SEED 42       /* as ponder eval: item i uses seed + i * 1024 */
#define CAL_Z95 1.959963984540054

static void usage(void)
{
    printf("usage: ponder calibrate --config FILE --task TASK --data FILE [options]\n"
           "\n"
           "Finds the accept_if thresholds of a two-stage cascade route (docs/config.md). Each\n"
           "item goes once through stage 1 and once through stage 2, as `ponder serve --config`\n"
           "would send them; then every threshold pair on stage 1's agreement and mean token\n"
           "log-probability is scored offline: accuracy (stage 1's answer when accepted, stage\n"
           "2's when escalated) against cost (stage 1 always, stage 2 when escalated).\n"
           "\n"
           "The pick: the cheapest thresholds (FLOPs per item) whose accuracy is within\n"
           "--tolerance points of stage 2 alone; when none is, the most accurate (the cheapest\n"
           "of those).\n"
           "\n"
           "options:\n"
           "      --config FILE        the router's YAML file\n"
           "      --route NAME         the cascade route (default: auto)\n"
           "      --task TASK          a generative task (arith, gsm8k, svamp, ...)\n"
           "      --data FILE          the validation items (keep them apart from the test split)\n"
           "      --limit N            the first N items only\n"
           "  -o, --output PREFIX      PREFIX.csv (every threshold pair, frontier marked),\n"
           "                           PREFIX-items.csv (each item's stage results), PREFIX.svg\n"
           "                           and PREFIX.png (drawn by gnuplot when installed; against\n"
           "                           FLOPs per item; PREFIX-usd.* against dollars when the\n"
           "                           models have prices); missing folders are made\n"
           "                           (default: calibrate-ROUTE)\n"
           "      --signals LIST       agreement, mean_logprob or both (default: both)\n"
           "      --tolerance P        accuracy points below stage 2 alone (default: 1)\n"
           "  -n, --n-predict N        max tokens per chain (default: 128)\n"
           "  -c, --ctx-size N         context per sequence of local backends (default: the model's)\n"
           "  -t, --threads N          threads per local backend (default: 1)\n"
           "  -s, --seed S             item i's request has seed S + i * 1024 (default: 42)\n"
           "      --json               stdout: one JSON object with the summary\n"
           "  -h, --help               this help\n");
}

typedef struct cal_opts {
    const char *config, *route, *task, *data, *output, *signals;
    int32_t limit, n_predict, n_ctx, n_threads;
    float tolerance;
    uint64_t seed;
    bool json;
} cal_opts;

static void log_cb(ponder_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= PONDER_LOG_WARN)
        fprintf(stderr, "ponder: %s\n", msg);
}

/* The request a client would send for item i (completions: the prompt in the task's format). */
static char *item_body(const cal_opts *o, const ponder_eval_item *it, int32_t i)
{
    char *prompt = ponder_eval_prompt(it, PONDER_THINK_COT);
    if (!prompt)
        return NULL;
    json_t *b = json_pack("{s:s,s:i,s:[s,s],s:I,s:{s:s}}", "prompt", prompt, "max_tokens", (int)o->n_predict, "stop",
                          "\nQuestion:", "\n\n\n", "seed", (json_int_t)(o->seed + (uint64_t)i * PONDER_THINK_MAX_SAMPLES),
                          "ponder", "answer", "number");
    free(prompt);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return s;
}

/* mkdir -p of the folders in path before its last '/' (so -o results/cal/x works in a
 * fresh clone); 0, else -1 with errno. */
static int make_parent_dirs(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static bool on_path(const char *exe)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char buf[4096];
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, exe);
        if (n && access(buf, X_OK) == 0)
            return true;
        p += n + (e ? 1 : 0);
    }
    return false;
}

static void thresholds_text(const ponder_calib_point *p, char *out, size_t cap)
{
    if (!p->use_agreement && !p->use_mean_logprob)
        snprintf(out, cap, "accept all");
    else if (p->use_agreement && p->use_mean_logprob)
        snprintf(out, cap, "agreement >= %.4g, mean_logprob >= %.4g", p->min_agreement, p->min_mean_logprob);
    else if (p->use_agreement)
        snprintf(out, cap, "agreement >= %.4g", p->min_agreement);
    else
        snprintf(out, cap, "mean_logprob >= %.4g", p->min_mean_logprob);
}

static void csv_row(FILE *f, const char *kind, const ponder_calib_point *p, int32_t n, double s2_flops, bool chosen)
{
    double lo, hi;
    ponder_wilson_interval(p->n_correct, n, CAL_Z95, &lo, &hi);
    fprintf(f, "%s,", kind);
    if (p->use_agreement)
        fprintf(f, "%.6g", p->min_agreement);
    fputc(',', f);
    if (p->use_mean_logprob)
        fprintf(f, "%.6g", p->min_mean_logprob);
    fprintf(f, ",%d,%d,%d,%.6f,%.6f,%.6f,%.6e,%.6f,%.6e,%.6f,%d,%d,%d\n", (int)n, (int)p->n_accepted, (int)p->n_correct,
            p->accuracy, lo, hi, p->flops_per_item, s2_flops > 0 ? p->flops_per_item / s2_flops : 0.0,
            p->cost_per_item, p->escalation_rate, p->frontier ? 1 : 0, chosen ? 1 : 0, p->frontier_usd ? 1 : 0);
}

static int write_csv(const char *path, const ponder_calib_result *r, const ponder_calib_point *configured)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_runtime_error("%s: %s", path, strerror(errno));
    fprintf(f, "kind,min_agreement,min_mean_logprob,n,accepted,correct,accuracy,ci95_lo,ci95_hi,flops_per_item,"
               "flops_vs_stage2,cost_usd_per_item,escalation_rate,frontier,chosen,frontier_usd\n");
    /* stage 2 alone: no stage 1 at all */
    ponder_calib_point s2 = { 0 };
    s2.n_correct = (int32_t)lround(r->s2_accuracy * r->n_items);
    s2.accuracy = r->s2_accuracy;
    s2.flops_per_item = r->s2_flops;
    s2.cost_per_item = r->s2_cost_usd;
    s2.escalation_rate = 1;
    csv_row(f, "stage2_alone", &s2, r->n_items, r->s2_flops, false);
    if (configured)
        csv_row(f, "configured", configured, r->n_items, r->s2_flops, false);
    for (int32_t i = 0; i < r->n_points; i++)
        csv_row(f, "threshold", &r->points[i], r->n_items, r->s2_flops, i == r->chosen);
    if (fclose(f) != 0)
        return cli_runtime_error("%s: write failed", path);
    return 0;
}

/* x: FLOPs per item, or (usd) dollars per item. */
static int write_plot(const char *prefix, const char *route, const char *task, const ponder_calib_result *r, bool usd,
                      bool *png)
{
    int32_t n = r->n_points, nf = 0;
    cli_plot_point *all = malloc((size_t)n * sizeof *all), *front = malloc((size_t)n * sizeof *front);
    if (!all || !front) {
        free(all);
        free(front);
        return cli_runtime_error("out of memory");
    }
    for (int32_t i = 0; i < n; i++) {
        const ponder_calib_point *p = &r->points[i];
        all[i] = (cli_plot_point){ usd ? p->cost_per_item : p->flops_per_item, p->accuracy, NAN, NAN, NULL };
        if (usd ? p->frontier_usd : p->frontier)
            front[nf++] = all[i];
    }
    char l1[64], l2[64], lc[96], title[256];
    snprintf(l1, sizeof l1, "stage 1 alone (%.3f)", r->s1_accuracy);
    snprintf(l2, sizeof l2, "stage 2 alone (%.3f)", r->s2_accuracy);
    const ponder_calib_point *c = &r->points[r->chosen];
    snprintf(lc, sizeof lc, "chosen (%.3f, %.0f%% of stage 2)", c->accuracy,
             r->s2_flops > 0 ? 100 * c->flops_per_item / r->s2_flops : 0.0);
    cli_plot_point p1 = { usd ? r->s1_cost_usd : r->s1_flops, r->s1_accuracy, NAN, NAN, l1 };
    cli_plot_point p2 = { usd ? r->s2_cost_usd : r->s2_flops, r->s2_accuracy, NAN, NAN, l2 };
    cli_plot_point pc = { usd ? c->cost_per_item : c->flops_per_item, c->accuracy, NAN, NAN, lc };
    cli_plot_series s[] = {
        { "threshold pairs", "#bbbbbb", all, n, false, 2 },
        { "frontier", "#1f77b4", front, nf, true, 3 },
        { "stage 1 alone", "#ff7f0e", &p1, 1, false, 5 },
        { "stage 2 alone", "#2ca02c", &p2, 1, false, 5 },
        { "chosen", "#d62728", &pc, 1, false, 6 },
    };
    snprintf(title, sizeof title, "cascade %.80s on %.60s: accuracy vs cost", route, task);
    cli_plot plot = { title, usd ? "dollars per item (log scale)" : "FLOPs per item (log scale)", "accuracy", s, 5 };
    char path[4096];
    int rc = 0;
    *png = false; /* here: both plots written (gnuplot draws the SVG and the PNG alike) */
    if (on_path("gnuplot")) {
        snprintf(path, sizeof path, "%.4000s%s.svg", prefix, usd ? "-usd" : "");
        rc = cli_plot_write(path, &plot);
        snprintf(path, sizeof path, "%.4000s%s.png", prefix, usd ? "-usd" : "");
        rc = rc ? rc : cli_plot_write(path, &plot);
        *png = rc == 0;
    }
    free(all);
    free(front);
    return rc;
}

static json_t *point_json(const ponder_calib_point *p, const ponder_calib_result *r)
{
    json_t *o = json_pack("{s:f,s:i,s:f,s:f,s:f,s:f}", "accuracy", p->accuracy, "accepted", (int)p->n_accepted,
                          "flops_per_item", p->flops_per_item, "flops_vs_stage2",
                          r->s2_flops > 0 ? p->flops_per_item / r->s2_flops : 0.0, "cost_usd_per_item", p->cost_per_item,
                          "escalation_rate", p->escalation_rate);
    json_t *a = json_object();
    if (p->use_agreement)
        json_object_set_new(a, "agreement", json_real(p->min_agreement));
    if (p->use_mean_logprob)
        json_object_set_new(a, "mean_logprob", json_real(p->min_mean_logprob));
    json_object_set_new(o, "accept_if", a);
    return o;
}

/* One calibration: the route's two stages, the router answering them, the items and what
 * each stage did on them, and the sweep's result. */
typedef struct cal_run {
    char *route_name, *s1_model, *s1_strategy, *s2_model, *s2_strategy;
    ponder_route_stage_cfg s1;   /* copied before the config goes to the router */
    const char *prefix;
    char prefix_buf[4096], items_path[4200], csv_path[4200];
    ponder_eval_items *items;
    ponder_router *r;
    ponder_calib_item *ci;
    int32_t k1, k2;              /* items each stage answered right */
    ponder_calib_result *res;
    ponder_calib_point configured;
    bool png, usd, png_usd, target;
} cal_run;

/* Every item through both stages (the serving path's own stage requests), one row of
 * itf each. 0 or the exit status (printed). */
static int run_items(const cal_opts *o, cal_run *cr, FILE *itf, bool progress)
{
    ponder_error err = { 0 };
    for (int32_t i = 0; i < cr->items->n; i++) {
        const ponder_eval_item *it = &cr->items->items[i];
        char *body = item_body(o, it, i);
        if (!body) {
            return cli_runtime_error("out of memory");
        }
        ponder_cascade_stage_result sr[2];
        memset(sr, 0, sizeof sr);
        for (int s = 0; s < 2; s++) {
            if (ponder_cascade_stage_call(cr->r, cr->route_name, s, PONDER_BACKEND_COMPLETIONS, body, strlen(body), &sr[s],
                                          &err) != PONDER_OK) {
                free(body);
                ponder_cascade_stage_result_clear(&sr[0]);
                return cli_runtime_error("item %d: stage %d: %s", (int)i, s + 1, err.msg);
            }
            if (sr[s].http_status != 200) {
                json_t *j = json_loads(sr[s].response, 0, NULL);
                const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
                cli_runtime_error("item %d: stage %d (%s) failed with HTTP %d: %s", (int)i, s + 1,
                                  s ? cr->s2_model : cr->s1_model, sr[s].http_status, m ? m : "(no message)");
                json_decref(j);
                free(body);
                ponder_cascade_stage_result_clear(&sr[0]);
                ponder_cascade_stage_result_clear(&sr[1]);
                return CLI_EXIT_RUNTIME;
            }
        }
        free(body);
        ponder_calib_item *c = &cr->ci[i];
        c->s1 = sr[0].sig;
        c->s1_correct = sr[0].sig.answered && ponder_answer_equal(PONDER_ANSWER_NUMBER, sr[0].sig.answer, it->gold);
        c->s2_correct = sr[1].sig.answered && ponder_answer_equal(PONDER_ANSWER_NUMBER, sr[1].sig.answer, it->gold);
        c->s1_flops = (double)sr[0].flops;
        c->s2_flops = (double)sr[1].flops;
        c->s1_cost_usd = sr[0].cost_usd;
        c->s2_cost_usd = sr[1].cost_usd;
        cr->k1 += c->s1_correct;
        cr->k2 += c->s2_correct;
        fprintf(itf, "%d,%s,%s,%.6f,", (int)i, it->gold, sr[0].sig.answer, c->s1.agreement);
        if (isfinite(c->s1.mean_logprob))
            fprintf(itf, "%.6f", c->s1.mean_logprob);
        fprintf(itf, ",%d,%.6e,%.6e,%.1f,%s,%d,%.6e,%.6e,%.1f\n", c->s1_correct, c->s1_flops, c->s1_cost_usd,
                sr[0].wall_ms, sr[1].sig.answer, c->s2_correct, c->s2_flops, c->s2_cost_usd, sr[1].wall_ms);
        ponder_cascade_stage_result_clear(&sr[0]);
        ponder_cascade_stage_result_clear(&sr[1]);
        if (progress) {
            fprintf(stderr, "\rcalibrate %s: %d/%d  stage 1 accuracy %.3f  stage 2 accuracy %.3f   ", cr->route_name,
                    (int)i + 1, (int)cr->items->n, (double)cr->k1 / (i + 1), (double)cr->k2 / (i + 1));
            fflush(stderr);
        }
    }
    return 0;
}

/* --json's one object. */
static void report_json(const cal_opts *o, const cal_run *c, const ponder_calib_point *ch)
{
    json_t *j = json_pack("{s:s,s:s,s:i}", "route", c->route_name, "task", o->task, "n", (int)c->items->n);
    json_object_set_new(j, "stage1_alone", json_pack("{s:s,s:s,s:f,s:f,s:f}", "model", c->s1_model, "strategy",
                                                     c->s1_strategy, "accuracy", c->res->s1_accuracy, "flops_per_item",
                                                     c->res->s1_flops, "cost_usd_per_item", c->res->s1_cost_usd));
    json_object_set_new(j, "stage2_alone", json_pack("{s:s,s:s,s:f,s:f,s:f}", "model", c->s2_model, "strategy",
                                                     c->s2_strategy, "accuracy", c->res->s2_accuracy, "flops_per_item",
                                                     c->res->s2_flops, "cost_usd_per_item", c->res->s2_cost_usd));
    json_object_set_new(j, "configured", point_json(&c->configured, c->res));
    json_object_set_new(j, "chosen", point_json(ch, c->res));
    json_object_set_new(j, "within_tolerance", json_boolean(c->res->within_tolerance));
    json_object_set_new(j, "target_met", json_boolean(c->target));
    json_object_set_new(j, "csv", json_string(c->csv_path));
    json_object_set_new(j, "items_csv", json_string(c->items_path));
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}

/* The plain-text summary, with the accept_if YAML to paste. */
static void report_text(const cal_opts *o, const cal_run *c, const ponder_calib_point *ch)
{
    char th[160];
    printf("cascade %s on %d %s items (%s)\n", c->route_name, (int)c->items->n, o->task, o->data);
    printf("  stage 1 alone (%s, %s): accuracy %.3f, %.3e FLOPs/item (%.0f%% of stage 2), $%.3g/item\n", c->s1_model,
           c->s1_strategy, c->res->s1_accuracy, c->res->s1_flops, c->res->s2_flops > 0 ? 100 * c->res->s1_flops / c->res->s2_flops : 0.0,
           c->res->s1_cost_usd);
    printf("  stage 2 alone (%s, %s): accuracy %.3f, %.3e FLOPs/item, $%.3g/item\n", c->s2_model, c->s2_strategy,
           c->res->s2_accuracy, c->res->s2_flops, c->res->s2_cost_usd);
    const ponder_calib_point *pts[2] = { &c->configured, ch };
    const char *names[2] = { "configured", "chosen" };
    for (int k = 0; k < 2; k++) {
        thresholds_text(pts[k], th, sizeof th);
        printf("  %s (%s): accuracy %.3f, %.3e FLOPs/item (%.0f%% of stage 2), $%.3g/item, %.0f%% escalated\n",
               names[k], th, pts[k]->accuracy, pts[k]->flops_per_item,
               c->res->s2_flops > 0 ? 100 * pts[k]->flops_per_item / c->res->s2_flops : 0.0, pts[k]->cost_per_item,
               100 * pts[k]->escalation_rate);
    }
    printf("  rule: %s\n", c->res->within_tolerance
                               ? "the cheapest thresholds within the tolerance of stage 2 alone"
                               : "no thresholds come within the tolerance of stage 2 alone: the most accurate");
    printf("  target (stage 2's accuracy within 1 point at <= 40%% of its FLOPs): %s\n", c->target ? "met" : "not met");
    printf("\nstage 1 of routes.%s.cascade, to paste into %s:\n", c->route_name, o->config);
    printf("      - model: %s\n        strategy: %s\n", c->s1_model, c->s1_strategy);
    if (!c->s1.cue)
        printf("        cue: false\n");
    if (c->s1.temperature >= 0)
        printf("        temperature: %g\n", c->s1.temperature);
    if (ch->use_agreement && ch->use_mean_logprob)
        printf("        accept_if: {agreement: %.6g, mean_logprob: %.6g}\n", ch->min_agreement, ch->min_mean_logprob);
    else if (ch->use_agreement)
        printf("        accept_if: {agreement: %.6g}\n", ch->min_agreement);
    else if (ch->use_mean_logprob)
        printf("        accept_if: {mean_logprob: %.6g}\n", ch->min_mean_logprob);
    else
        printf("        accept_if: {agreement: 0}   # accept every stage-1 answer\n");
    if (c->png)
        printf("\nwrote %s, %s, %s.svg/.png%s%s%s\n", c->csv_path, c->items_path, c->prefix, c->usd && c->png_usd ? ", " : "",
               c->usd && c->png_usd ? c->prefix : "", c->usd && c->png_usd ? "-usd.svg/.png" : "");
    else
        printf("\nwrote %s, %s (no plots: gnuplot is not installed; install gnuplot-nox)\n", c->csv_path, c->items_path);
}

/* The route's two stages, the router over the config (it takes cfg), the items and the
 * output paths. 0 or the exit status (printed; close c in either case). */
static int open_run(const char *cmd, const cal_opts *o, cal_run *c)
{
    ponder_error err = { 0 };
    ponder_route_config *cfg = NULL;
    if (ponder_route_config_load(o->config, &cfg, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    ponder_route_cfg scratch;
    const ponder_route_cfg *route = ponder_route_config_find(cfg, o->route, &scratch);
    int rc = 0;
    if (!route || route->n_stages == 0)
        rc = cli_usage_error(cmd, "--route %s: %s has no cascade route of that name (routes: NAME: {cascade: ...})",
                             o->route, o->config);
    else if (route->n_stages != 2)
        rc = cli_usage_error(cmd, "--route %s: calibrate handles two-stage cascades; this one has %d stages", o->route,
                             (int)route->n_stages);
    else if (ponder_eval_load(o->task, o->data, o->limit, &c->items, &err) != PONDER_OK)
        rc = cli_runtime_error("%s", err.msg);
    if (rc != 0) {
        ponder_route_config_free(cfg);
        return rc;
    }
    /* local backends decode as many sequences as the widest stage asks at once */
    int32_t need = 1;
    for (int32_t s = 0; s < route->n_stages; s++) {
        ponder_strategy st;
        if (ponder_strategy_parse(route->stages[s].strategy, &st, NULL) == PONDER_OK && st.kind != PONDER_THINK_DIRECT &&
            st.kind != PONDER_THINK_COT && st.n_samples > need)
            need = st.kind == PONDER_THINK_ASC && st.n_samples > 4 ? 4 : st.n_samples;
    }
    ponder_router_params rp = ponder_router_params_default();
    rp.local.n_parallel = need;
    rp.local.n_ctx = o->n_ctx;
    rp.local.n_threads = o->n_threads;
    rp.local.log = log_cb;
    rp.log = log_cb;
    rp.seed = 1;
    c->route_name = strdup(o->route);
    c->s1 = route->stages[0]; /* copied before cfg goes to the router */
    c->s1_model = strdup(c->s1.model);
    c->s1_strategy = strdup(c->s1.strategy);
    c->s2_model = strdup(route->stages[1].model);
    c->s2_strategy = strdup(route->stages[1].strategy);
    c->s1.model = c->s1_model;
    c->s1.strategy = c->s1_strategy;
    if (ponder_router_create(cfg, &rp, &c->r, &err) != PONDER_OK) /* takes cfg */
        return cli_runtime_error("%s", err.msg);
    if (!c->route_name || !c->s1_model || !c->s1_strategy || !c->s2_model || !c->s2_strategy ||
        !(c->ci = calloc((size_t)(c->items->n > 0 ? c->items->n : 1), sizeof *c->ci)))
        return cli_runtime_error("out of memory");
    c->prefix = o->output;
    if (!c->prefix) {
        snprintf(c->prefix_buf, sizeof c->prefix_buf, "calibrate-%s", o->route);
        c->prefix = c->prefix_buf;
    }
    if (make_parent_dirs(c->prefix) != 0)
        return cli_runtime_error("-o %s: cannot make its folder: %s", c->prefix, strerror(errno));
    snprintf(c->items_path, sizeof c->items_path, "%s-items.csv", c->prefix);
    snprintf(c->csv_path, sizeof c->csv_path, "%s.csv", c->prefix);
    return 0;
}

static void close_run(cal_run *c)
{
    ponder_calib_result_free(c->res);
    free(c->ci);
    ponder_router_free(c->r);
    ponder_eval_items_free(c->items);
    free(c->route_name);
    free(c->s1_model);
    free(c->s1_strategy);
    free(c->s2_model);
    free(c->s2_strategy);
}

int cmd_calibrate(int argc, char **argv)
{
    const char *cmd = argv[0];
    cal_opts o = { .route = "auto", .n_predict = CAL_DEFAULT_N_PREDICT, .n_threads = 1, .tolerance = 1.0f,
                   .seed = CAL_DEFAULT_SEED };
    const cli_opt opts[] = {
        { "--config", NULL, CLI_STRING, &o.config, 0, 0, NULL },
        { "--route", NULL, CLI_STRING, &o.route, 0, 0, NULL },
        { "--task", NULL, CLI_STRING, &o.task, 0, 0, NULL },
        { "--data", NULL, CLI_STRING, &o.data, 0, 0, NULL },
        { "--limit", NULL, CLI_INT, &o.limit, 1, INT32_MAX, NULL },
        { "-o", "--output", CLI_STRING, &o.output, 0, 0, NULL },
        { "--signals", NULL, CLI_STRING, &o.signals, 0, 0, NULL },
        { "--tolerance", NULL, CLI_FLOAT, &o.tolerance, 0, 100, NULL },
        { "-n", "--n-predict", CLI_INT, &o.n_predict, 1, INT32_MAX, NULL },
        { "-c", "--ctx-size", CLI_INT, &o.n_ctx, 1, INT32_MAX, NULL },
        { "-t", "--threads", CLI_INT, &o.n_threads, 1, 1024, NULL },
        { "-s", "--seed", CLI_SEED, &o.seed, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &o.json, 0, 0, NULL },
    };
    cli_result pr = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (pr == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (pr != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (!o.config)
        return cli_usage_error(cmd, "--config FILE is required (the router's YAML with the cascade route)");
    if (!o.task)
        return cli_usage_error(cmd, "--task is required (a generative task: arith, gsm8k, svamp, ...)");
    if (!o.data)
        return cli_usage_error(cmd, "--data FILE is required (a validation split, apart from the test items)");
    if (o.seed == UINT64_MAX)
        o.seed = CAL_DEFAULT_SEED;
    ponder_calib_params cp = ponder_calib_params_default();
    cp.tolerance = o.tolerance / 100.0;
    if (o.signals) {
        if (!strcmp(o.signals, "agreement"))
            cp.signals = PONDER_CALIB_AGREEMENT;
        else if (!strcmp(o.signals, "mean_logprob"))
            cp.signals = PONDER_CALIB_MEAN_LOGPROB;
        else if (!strcmp(o.signals, "both") || !strcmp(o.signals, "agreement,mean_logprob") ||
                 !strcmp(o.signals, "mean_logprob,agreement"))
            cp.signals = PONDER_CALIB_AGREEMENT | PONDER_CALIB_MEAN_LOGPROB;
        else
            return cli_usage_error(cmd, "--signals %s: expected agreement, mean_logprob or both", o.signals);
    }
    ponder_error err = { 0 };
    ponder_task_kind kind;
    if (ponder_task_kind_of(o.task, &kind, &err) != PONDER_OK)
        return cli_usage_error(cmd, "%s", err.msg);
    if (kind != PONDER_TASK_GENERATIVE)
        return cli_usage_error(cmd, "--task %s: calibration needs a generative task (numeric answers)", o.task);

    cal_run c = { 0 };
    int rc = open_run(cmd, &o, &c);
    if (rc != 0) {
        close_run(&c);
        return rc;
    }
    rc = CLI_EXIT_RUNTIME;
    FILE *itf = fopen(c.items_path, "w");
    if (!itf) {
        cli_runtime_error("%s: %s", c.items_path, strerror(errno));
        goto done;
    }
    fprintf(itf, "item,gold,s1_answer,s1_agreement,s1_mean_logprob,s1_correct,s1_flops,s1_cost_usd,s1_ms,s2_answer,"
                 "s2_correct,s2_flops,s2_cost_usd,s2_ms\n");
    const bool progress = isatty(STDERR_FILENO) != 0;
    int st = run_items(&o, &c, itf, progress);
    if (progress)
        fputc('\n', stderr);
    if (st != 0)
        goto done;
    if (fclose(itf) != 0) {
        itf = NULL;
        cli_runtime_error("%s: write failed", c.items_path);
        goto done;
    }
    itf = NULL;
    if (ponder_calib_sweep(c.ci, c.items->n, &cp, &c.res, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const ponder_route_stage_cfg *s1 = &c.s1;
    c.configured = ponder_calib_evaluate(c.ci, c.items->n, s1->has_min_agreement, s1->min_agreement,
                                         s1->has_min_mean_logprob, s1->min_mean_logprob);
    if (write_csv(c.csv_path, c.res, &c.configured) != 0)
        goto done;
    c.usd = c.res->s1_cost_usd > 0 || c.res->s2_cost_usd > 0;
    if (write_plot(c.prefix, c.route_name, o.task, c.res, false, &c.png) != 0 ||
        (c.usd && write_plot(c.prefix, c.route_name, o.task, c.res, true, &c.png_usd) != 0))
        goto done;
    const ponder_calib_point *ch = &c.res->points[c.res->chosen];
    c.target = ch->accuracy >= c.res->s2_accuracy - 0.01 - 1e-12 && ch->flops_per_item <= 0.4 * c.res->s2_flops;
    if (o.json)
        report_json(&o, &c, ch);
    else
        report_text(&o, &c, ch);
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : cli_runtime_error("stdout: write failed");
done:
    if (itf)
        fclose(itf);
    close_run(&c);
    return rc;
}
