/*
 * test_cascade.c — the cascade without models: its config section (a good file read back,
 * each bad form refused with its key path and line), the accept rule, and the offline
 * threshold sweep of `ponder calibrate` on hand-made items (the frontier rises with cost,
 * the rule picks what it says).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/cascade.h"

static const char models[] = "model_list:\n"
                             "  - model_name: small\n"
                             "    backends: [{local: s1.gguf}]\n"
                             "  - model_name: big\n"
                             "    backends: [{local: s2.gguf}]\n"
                             "    price: {input_per_1m: 1, output_per_1m: 2}\n"; /* 6 lines */

static ponder_route_config *parse(const char *routes, ponder_error *err)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", models, routes);
    ponder_route_config *c = NULL;
    ponder_route_config_parse(text, strlen(text), "t.yaml", NULL, &c, err);
    return c;
}

static void expect_bad(const char *routes, int line, const char *key, const char *what)
{
    ponder_error err;
    ponder_route_config *c = parse(routes, &err);
    if (c)
        fail_msg("accepted:\n%s", routes);
    char want[256];
    snprintf(want, sizeof want, "t.yaml:%d: %s:", line, key);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, want);
    if (what && !strstr(err.msg, what))
        fail_msg("message '%s' does not say '%s'", err.msg, what);
}

static void test_config_good(void **state)
{
    (void)state;
    ponder_error err;
    ponder_route_config *c = parse("routes:\n"
                                   "  backup: [small, big]\n"
                                   "  auto:\n"
                                   "    cascade:\n"
                                   "      - model: small\n"
                                   "        strategy: SC4\n"
                                   "        cue: false\n"
                                   "        temperature: 0.5\n"
                                   "        accept_if: {agreement: 0.75, mean_logprob: -0.3}\n"
                                   "      - model: backup\n"
                                   "        accept_if: {mean_logprob: -1}\n"
                                   "      - {model: big, strategy: sc:8}\n",
                                   &err);
    if (!c)
        fail_msg("refused: %s", err.msg);
    ponder_route_cfg scratch;
    const ponder_route_cfg *r = ponder_route_config_find(c, "auto", &scratch);
    assert_non_null(r);
    assert_int_equal(r->n_stages, 3);
    assert_int_equal(r->line, 9);
    const ponder_route_stage_cfg *s = r->stages;
    assert_string_equal(s[0].model, "small");
    assert_string_equal(s[0].strategy, "sc:4"); /* canonical */
    assert_false(s[0].cue);
    assert_true(fabs(s[0].temperature - 0.5) < 1e-12);
    assert_true(s[0].has_min_agreement && s[0].has_min_mean_logprob);
    assert_true(fabs(s[0].min_agreement - 0.75) < 1e-12 && fabs(s[0].min_mean_logprob + 0.3) < 1e-12);
    assert_int_equal(s[0].line, 11);
    assert_string_equal(s[1].model, "backup"); /* a fallback route as a stage */
    assert_string_equal(s[1].strategy, "cot");   /* the default */
    assert_true(s[1].cue);
    assert_true(s[1].temperature < 0);
    assert_false(s[1].has_min_agreement);
    assert_true(s[1].has_min_mean_logprob);
    assert_string_equal(s[2].strategy, "sc:8");
    assert_false(s[2].has_min_agreement || s[2].has_min_mean_logprob);
    /* the chain lists the stages' models; a fallback route has no stages */
    assert_int_equal(r->n_chain, 3);
    assert_string_equal(r->chain[2], "big");
    assert_int_equal(ponder_route_config_find(c, "backup", &scratch)->n_stages, 0);
    ponder_route_config_free(c);
}

static void test_config_bad(void **state)
{
    (void)state;
    const char *head = "routes:\n  auto:\n    cascade:\n"; /* lines 7-9 */
    char buf[1024];
#define BAD(body, line, key, what)                                                                              \
    do {                                                                                                        \
        snprintf(buf, sizeof buf, "%s%s", head, body);                                                          \
        expect_bad(buf, line, key, what);                                                                       \
    } while (0)
    BAD("      - {model: small, accept_if: {agreement: 0.5}}\n", 10, "routes.auto.cascade", "at least two stages");
    BAD("      - {model: small, accept_if: {agreement: 0.5}}\n      - {model: huge}\n", 11,
        "routes.auto.cascade[1].model", "'huge' is not a model_name");
    BAD("      - {model: small}\n      - {model: big}\n", 10, "routes.auto.cascade[0].accept_if", "escalates unless");
    BAD("      - {model: small, accept_if: {agreement: 0.5}}\n      - {model: big, accept_if: {agreement: 0.5}}\n", 11,
        "routes.auto.cascade[1].accept_if", "last stage always answers");
    BAD("      - model: small\n        strategy: vote\n        accept_if: {agreement: 0.5}\n      - {model: big}\n", 11,
        "routes.auto.cascade[0].strategy", "direct");
    BAD("      - model: small\n        accept_if: {agreement: 1.5}\n      - {model: big}\n", 11,
        "routes.auto.cascade[0].accept_if.agreement", "out of range");
    BAD("      - model: small\n        accept_if: {mean_logprob: 0.2}\n      - {model: big}\n", 11,
        "routes.auto.cascade[0].accept_if.mean_logprob", "out of range");
    BAD("      - model: small\n        accept_if: {votes: 3}\n      - {model: big}\n", 11,
        "routes.auto.cascade[0].accept_if.votes", "unknown key");
    BAD("      - model: small\n        accept_if: {}\n      - {model: big}\n", 11, "routes.auto.cascade[0].accept_if",
        "agreement, mean_logprob or both");
    BAD("      - model: small\n        threshold: 0.5\n      - {model: big}\n", 11, "routes.auto.cascade[0].threshold",
        "unknown key");
    BAD("      - model: small\n        cue: maybe\n        accept_if: {agreement: 0.5}\n      - {model: big}\n", 11,
        "routes.auto.cascade[0].cue", "true or false");
    BAD("      - {strategy: cot, accept_if: {agreement: 0.5}}\n      - {model: big}\n", 10,
        "routes.auto.cascade[0].model", "needs a model");
    BAD("      - {model: small, accept_if: {agreement: 0.5}}\n      - {model: other}\n  other:\n    cascade:\n"
        "      - {model: small, accept_if: {agreement: 0.5}}\n      - {model: big}\n",
        11, "routes.auto.cascade[1].model", "is a cascade");
#undef BAD
    expect_bad("routes:\n  small:\n    cascade:\n      - {model: small, accept_if: {agreement: 0.5}}\n      - {model: big}\n",
               8, "routes.small", "must not be named like a model");
    expect_bad("routes:\n  auto:\n    cascade: [{model: small, accept_if: {agreement: 0.5}}, {model: big}]\n"
               "    fallbacks: [big]\n",
               8, "routes.auto", "not both");
}

static ponder_route_stage_cfg stage(bool ua, double a, bool ul, double l)
{
    ponder_route_stage_cfg s;
    memset(&s, 0, sizeof s);
    s.has_min_agreement = ua;
    s.min_agreement = a;
    s.has_min_mean_logprob = ul;
    s.min_mean_logprob = l;
    return s;
}

static void test_accept_rule(void **state)
{
    (void)state;
    ponder_cascade_signals sig = { .answered = true, .answer = "7", .agreement = 0.75, .mean_logprob = -0.2 };
    char why[160];
    ponder_route_stage_cfg s = stage(true, 0.75, false, 0);
    assert_true(ponder_cascade_accept(&s, false, &sig, why, sizeof why)); /* >= is accepted */
    assert_non_null(strstr(why, "agreement 0.750 >= 0.750"));
    s = stage(true, 0.8, false, 0);
    assert_false(ponder_cascade_accept(&s, false, &sig, why, sizeof why));
    assert_non_null(strstr(why, "agreement 0.750 < 0.800"));
    /* both given: each can veto */
    s = stage(true, 0.5, true, -0.1);
    assert_false(ponder_cascade_accept(&s, false, &sig, why, sizeof why));
    assert_non_null(strstr(why, "mean_logprob -0.2000 < -0.1000"));
    s = stage(true, 0.5, true, -0.3);
    assert_true(ponder_cascade_accept(&s, false, &sig, why, sizeof why));
    /* threshold 0 accepts everything, even no answer; the last stage always accepts */
    ponder_cascade_signals none = { .answered = false, .agreement = 0, .mean_logprob = -HUGE_VAL };
    s = stage(true, 0, false, 0);
    assert_true(ponder_cascade_accept(&s, false, &none, NULL, 0));
    s = stage(false, 0, true, -5);
    assert_false(ponder_cascade_accept(&s, false, &none, why, sizeof why));
    assert_non_null(strstr(why, "unknown"));
    s = stage(true, 1, true, 0);
    assert_true(ponder_cascade_accept(&s, true, &none, why, sizeof why));
    assert_string_equal(why, "last stage");
}

/* 10 items: stage 1 (cost 1) is right when its logprob is high; stage 2 (cost 10) is right
 * on all but one. Agreement is informative only for two items. */
static void make_items(ponder_calib_item *it)
{
    static const double lp[10] = { -0.01, -0.02, -0.03, -0.05, -0.08, -0.3, -0.5, -0.9, -1.2, -2.0 };
    static const bool ok1[10] = { 1, 1, 1, 1, 1, 0, 1, 0, 0, 0 };
    static const double ag[10] = { 1, 1, 1, 1, 0.5, 1, 1, 0.5, 0.5, 1 };
    for (int i = 0; i < 10; i++) {
        memset(&it[i], 0, sizeof it[i]);
        it[i].s1.answered = true;
        it[i].s1.agreement = ag[i];
        it[i].s1.mean_logprob = lp[i];
        it[i].s1_correct = ok1[i];
        it[i].s2_correct = i != 6;
        it[i].s1_flops = 1;
        it[i].s2_flops = 10;
        it[i].s1_cost_usd = 0.1;
        it[i].s2_cost_usd = 1;
    }
}

static void test_evaluate(void **state)
{
    (void)state;
    ponder_calib_item it[10];
    make_items(it);
    ponder_calib_point p = ponder_calib_evaluate(it, 10, false, 0, true, -0.2);
    /* accepted: items 0-4 (5 right); escalated 5-9: stage 2 right on 5,7,8,9, wrong on 6 */
    assert_int_equal(p.n_accepted, 5);
    assert_int_equal(p.n_correct, 9);
    assert_true(fabs(p.flops_per_item - (10 * 1 + 5 * 10) / 10.0) < 1e-12);
    assert_true(fabs(p.cost_per_item - (10 * 0.1 + 5 * 1) / 10.0) < 1e-12);
    assert_true(fabs(p.escalation_rate - 0.5) < 1e-12);
    p = ponder_calib_evaluate(it, 10, false, 0, false, 0); /* stage 1 alone */
    assert_int_equal(p.n_correct, 6);
    assert_true(fabs(p.flops_per_item - 1) < 1e-12);
}

static void test_sweep(void **state)
{
    (void)state;
    ponder_calib_item it[10];
    make_items(it);
    ponder_calib_params prm = ponder_calib_params_default();
    ponder_calib_result *r = NULL;
    ponder_error err;
    assert_int_equal(ponder_calib_sweep(it, 10, &prm, &r, &err), PONDER_OK);
    assert_true(fabs(r->s1_accuracy - 0.6) < 1e-12 && fabs(r->s2_accuracy - 0.9) < 1e-12);
    assert_true(fabs(r->s1_flops - 1) < 1e-12 && fabs(r->s2_flops - 10) < 1e-12);
    /* every point accounted: (1 + agreement levels) x (1 + logprob levels) */
    int32_t n_front = 0;
    double last_flops = -1, last_acc = -1;
    for (int32_t i = 0; i < r->n_points; i++) {
        const ponder_calib_point *p = &r->points[i];
        if (i)
            assert_true(p->flops_per_item >= r->points[i - 1].flops_per_item);
        if (!p->frontier)
            continue;
        /* the frontier: strictly more accurate as it gets strictly more expensive */
        assert_true(p->flops_per_item > last_flops);
        assert_true(p->accuracy > last_acc);
        last_flops = p->flops_per_item;
        last_acc = p->accuracy;
        n_front++;
        /* and nothing as cheap is as accurate */
        for (int32_t j = 0; j < r->n_points; j++)
            assert_false(r->points[j].flops_per_item <= p->flops_per_item && r->points[j].accuracy > p->accuracy + 1e-12);
    }
    assert_true(n_front >= 3);
    /* dollars here are FLOPs / 10: the same frontier */
    for (int32_t i = 0; i < r->n_points; i++)
        assert_int_equal(r->points[i].frontier_usd, r->points[i].frontier);
    /* the rule: the cheapest point within a point of stage 2 alone (0.9). Accepting items
     * 0-6 (mean_logprob >= -0.7) gets 0.9 for 4 FLOPs per item; 3 FLOPs (two escalations)
     * cannot reach 0.9; agreement >= 0.75 alone gives 0.8 for the same 4 */
    const ponder_calib_point *c = &r->points[r->chosen];
    assert_true(r->within_tolerance);
    assert_true(c->frontier);
    assert_true(fabs(c->accuracy - 0.9) < 1e-12);
    assert_true(fabs(c->flops_per_item - 4) < 1e-12);
    assert_int_equal(c->n_accepted, 7);
    assert_false(c->use_agreement);
    assert_true(c->use_mean_logprob);
    assert_true(c->min_mean_logprob < -0.5 && c->min_mean_logprob > -0.9);
    for (int32_t i = 0; i < r->n_points; i++)
        if (r->points[i].accuracy >= 0.89)
            assert_true(r->points[i].flops_per_item >= c->flops_per_item);
    ponder_calib_point again = ponder_calib_evaluate(it, 10, c->use_agreement, c->min_agreement, c->use_mean_logprob,
                                                     c->min_mean_logprob);
    assert_int_equal(again.n_correct, c->n_correct);
    ponder_calib_result_free(r);

    /* dollars that do not follow FLOPs (item 9 takes stage 2 a long answer; same price):
     * escalating {4, 7, 8} by agreement is on the FLOPs frontier, not on the dollar one */
    it[9].s2_flops = 100;
    assert_int_equal(ponder_calib_sweep(it, 10, &prm, &r, &err), PONDER_OK);
    int32_t n_diff = 0;
    for (int32_t i = 0; i < r->n_points; i++) {
        n_diff += r->points[i].frontier_usd != r->points[i].frontier;
        if (!r->points[i].frontier_usd)
            continue;
        for (int32_t j = 0; j < r->n_points; j++)
            assert_false(r->points[j].cost_per_item <= r->points[i].cost_per_item &&
                         r->points[j].accuracy > r->points[i].accuracy + 1e-12);
    }
    assert_true(n_diff > 0);
    ponder_calib_result_free(r);
    it[9].s2_flops = 10;

    /* one signal only; a tolerance nobody meets → the most accurate, cheapest first */
    for (int i = 0; i < 10; i++)
        it[i].s2_correct = true;
    it[6].s1_correct = false;
    prm.signals = PONDER_CALIB_MEAN_LOGPROB;
    prm.tolerance = -0.5; /* asks for 1.5 accuracy */
    assert_int_equal(ponder_calib_sweep(it, 10, &prm, &r, &err), PONDER_OK);
    assert_false(r->within_tolerance);
    c = &r->points[r->chosen];
    assert_false(c->use_agreement);
    assert_true(fabs(c->accuracy - 1.0) < 1e-12);
    /* the cheapest perfect point accepts items 0-4 (mean_logprob >= -0.19) */
    assert_int_equal(c->n_accepted, 5);
    for (int32_t i = 0; i < r->n_points; i++)
        assert_false(r->points[i].use_agreement);
    ponder_calib_result_free(r);

    assert_int_not_equal(ponder_calib_sweep(it, 0, &prm, &r, &err), PONDER_OK);
    prm.signals = 0;
    assert_int_not_equal(ponder_calib_sweep(it, 10, &prm, &r, &err), PONDER_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_good), cmocka_unit_test(test_config_bad), cmocka_unit_test(test_accept_rule),
        cmocka_unit_test(test_evaluate),    cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
