/*
 * cascade.h — System 1 / System 2 cascades (a route with `cascade:` stages, docs/config.md).
 *
 * A request for a cascade route goes to its first stage (a small model, or a cheap
 * strategy); the stage's confidence decides whether its answer is accepted or the request
 * escalates to the next stage; the last stage always answers. Three parts:
 *   - the accept rule (ponder_cascade_accept): every threshold the stage's accept_if gives
 *     must hold;
 *   - one stage's call (ponder_cascade_stage_call): the request body the serving path sends
 *     the stage's model (its strategy, cue and temperature), walked through that model's own
 *     fallback chain by the router, and the confidence signals and accounting read back from
 *     the answer — the serving path and `ponder calibrate` both use it, so calibration
 *     measures exactly what serving does;
 *   - the offline threshold sweep (ponder_calib_sweep): given every item's stage-1 signals,
 *     both stages' correctness and cost, the accuracy and cost of every threshold pair,
 *     the accuracy-vs-cost frontier and the threshold picked by the documented rule.
 *
 * Signals. agreement: votes for the winning answer / chains with an answer (0 when none
 * has one; 1 for a one-chain strategy that answered). mean_logprob: the mean, over the
 * chains that gave the winning answer, of each chain's mean token log-probability (raw
 * logits); over all chains when none answered; -HUGE_VAL when the backend reports no
 * chains (a remote model that is not ponder serve).
 *
 * libponder rule: nothing here prints or exits.
 */
#ifndef PONDER_CASCADE_H
#define PONDER_CASCADE_H

#include "ponder/common.h"
#include "ponder/route.h"
#include "ponder/think.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_cascade_signals {
    bool answered;                    /* an answer was extracted */
    char answer[PONDER_ANSWER_BYTES]; /* normalized ("" when none) */
    double agreement;
    double mean_logprob;
} ponder_cascade_signals;

/* Accept (true) or escalate. The last stage always accepts. *why (may be NULL) gets the
 * reason in words: "agreement 0.50 < 0.75", "accepted: agreement 1.00 >= 0.75, …",
 * "last stage". */
bool ponder_cascade_accept(const ponder_route_stage_cfg *st, bool last, const ponder_cascade_signals *s, char *why,
                           size_t cap);

/* ---- one stage through the router ---- */

typedef struct ponder_cascade_stage_result {
    int http_status;           /* 200: the stage answered; else its error (response holds the JSON) */
    char *response;            /* the stage's whole response JSON, malloc'ed */
    ponder_cascade_signals sig;
    int64_t prompt_tokens, completion_tokens, prompt_tokens_evaluated;
    uint64_t flops;            /* the server's count (think.h's rule); 0 when the backend gives none */
    double wall_ms;            /* the stage call, router included */
    double cost_usd;           /* tokens × the answering model's prices */
    char backend[128], model[128]; /* who answered ("" when none) */
} ponder_cascade_stage_result;

/* Sends `body` (an OpenAI request as a client would, for the cascade route_name) to stage
 * `stage` of the cascade, as the serving path does, without streaming. A stage whose
 * whole chain failed is not an error here: out->http_status says it. Errors: unknown
 * route or stage, bad body, out of memory. */
ponder_status ponder_cascade_stage_call(ponder_router *r, const char *route_name, int32_t stage,
                                        ponder_backend_endpoint ep, const char *body, size_t body_len,
                                        ponder_cascade_stage_result *out, ponder_error *err);
void ponder_cascade_stage_result_clear(ponder_cascade_stage_result *res); /* frees response, zeroes */

/* ---- calibration: the offline sweep ---- */

/* One validation item run once through stage 1 and once through stage 2. */
typedef struct ponder_calib_item {
    ponder_cascade_signals s1;
    bool s1_correct, s2_correct;
    double s1_flops, s2_flops;       /* per item */
    double s1_cost_usd, s2_cost_usd;
} ponder_calib_item;

enum { PONDER_CALIB_AGREEMENT = 1, PONDER_CALIB_MEAN_LOGPROB = 2 };

typedef struct ponder_calib_params {
    int signals;          /* PONDER_CALIB_* bits swept (default both) */
    double tolerance;     /* the rule's accuracy slack below stage 2 alone (default 0.01: one point) */
    int32_t max_levels;   /* thresholds per signal at most (quantiles beyond; default 200) */
} ponder_calib_params;

ponder_calib_params ponder_calib_params_default(void);

/* A threshold pair and what it gives on the items. A signal not used accepts everything. */
typedef struct ponder_calib_point {
    bool use_agreement, use_mean_logprob;
    double min_agreement, min_mean_logprob;
    int32_t n_accepted, n_correct;
    double accuracy, flops_per_item, cost_per_item, escalation_rate;
    bool frontier;        /* no other point is as cheap (FLOPs) and at least as accurate, one strictly */
    bool frontier_usd;    /* the same in dollars per item (models' prices) */
} ponder_calib_point;

typedef struct ponder_calib_result {
    int32_t n_items;
    ponder_calib_point *points; /* sorted by FLOPs per item, then accuracy descending */
    int32_t n_points;
    int32_t chosen;             /* index into points */
    bool within_tolerance;      /* points[chosen].accuracy >= s2 alone - tolerance */
    double s1_accuracy, s1_flops, s1_cost_usd; /* stage 1 alone (per item) */
    double s2_accuracy, s2_flops, s2_cost_usd; /* stage 2 alone */
} ponder_calib_result;

/* Every combination of thresholds: per used signal "none" (accept all), the midpoints
 * between consecutive distinct observed values (a threshold between two observations
 * classifies the items as any value between them would, and leaves a margin on both
 * sides for new items), and one beyond the largest (escalate all) where the signal's
 * range allows it; at most max_levels each (quantiles). A point accepts an item when every
 * used signal is >= its threshold; its accuracy counts stage 1's correctness for accepted
 * items and stage 2's for the others; its cost is stage 1's for every item plus stage 2's
 * for the escalated ones.
 *
 * The rule: the cheapest point (FLOPs per item) whose accuracy is within tolerance of
 * stage 2 alone (ties: the more accurate, then fewer signals); when none is, the most
 * accurate point (ties: the cheapest). Either is on the frontier. */
ponder_status ponder_calib_sweep(const ponder_calib_item *items, int32_t n, const ponder_calib_params *p,
                                 ponder_calib_result **out, ponder_error *err);
void ponder_calib_result_free(ponder_calib_result *r); /* NULL is a no-op */
/* The point with the given thresholds, evaluated on the items (use_* false: not applied). */
ponder_calib_point ponder_calib_evaluate(const ponder_calib_item *items, int32_t n, bool use_agreement,
                                         double min_agreement, bool use_mean_logprob, double min_mean_logprob);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_CASCADE_H */
