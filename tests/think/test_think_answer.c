/*
 * test_think_answer.c — answer extraction and normalization, votes and their tie-break,
 * the Adaptive-Consistency stopping rule, the Wilson interval and strategy strings, on
 * hand-written cases whose right answers are worked out in the comments.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/model.h"
#include "ponder/think.h"

static void expect_num(const char *text, const char *want)
{
    char out[PONDER_ANSWER_BYTES];
    bool ok = ponder_answer_extract(PONDER_ANSWER_NUMBER, 0, text, strlen(text), out);
    if (!want) {
        if (ok)
            fail_msg("'%s': expected no answer, got '%s'", text, out);
        return;
    }
    if (!ok)
        fail_msg("'%s': expected '%s', got no answer", text, want);
    if (strcmp(out, want) != 0)
        fail_msg("'%s': expected '%s', got '%s'", text, want, out);
}

static void expect_choice(const char *text, int32_t n_choices, const char *want)
{
    char out[PONDER_ANSWER_BYTES];
    bool ok = ponder_answer_extract(PONDER_ANSWER_CHOICE, n_choices, text, strlen(text), out);
    if (!want) {
        if (ok)
            fail_msg("'%s': expected no letter, got '%s'", text, out);
        return;
    }
    if (!ok || strcmp(out, want) != 0)
        fail_msg("'%s': expected '%s', got '%s'", text, want, ok ? out : "(none)");
}

static void test_numbers(void **state)
{
    (void)state;
    expect_num("The answer is 12.", "12");
    expect_num("It costs $1,234.50 in total.", "1234.5");
    expect_num("1,234,567", "1234567");
    expect_num("1,2", "2");                 /* not a thousands group: two numbers, the last wins */
    expect_num("The temperature fell to -5 degrees.", "-5");
    expect_num("\xE2\x88\x92" "7", "-7");      /* U+2212 minus sign */
    expect_num("pages 3-4", "4");           /* a range, not a negative */
    expect_num("She lost -$20.", "-20");
    expect_num("3/4", "0.75");
    expect_num("It takes 1 1/2 cups.", "1.5");
    expect_num("First 3 apples, then 5, then 7", "7"); /* no cue: the last number */
    expect_num("The answer is 12. Then 15 more apples.", "12"); /* the cue beats the last number */
    expect_num("answer is 3. Wait, the answer is 4 because 2+2.", "4"); /* the last cue */
    expect_num("The answer is: 42", "42");
    expect_num("Answer: 7", "7");
    expect_num("The answer is $18.", "18");
    expect_num("no number here", NULL);
    expect_num("", NULL);
    expect_num("x2 and mp3", NULL);         /* digits inside words are not numbers */
    expect_num("She makes 9 * 2 = $18.\n#### 18", "18");
    expect_num("#### 1,000", "1000");
    expect_num("#### 5 apples, not 6", "5"); /* the marker beats the last number */
    expect_num("It is 12 dollars.", "12");
    expect_num("The discount is 50%.", "50");
    expect_num("100.00", "100");
    expect_num("about .5 of it", "0.5");
    expect_num("0.1 and 2.50", "2.5");
    expect_num("the answer is 1/3", "0.3333333333");
    expect_num("The answer is 10. Q: next question 99", "10");
}

static void test_number_parse_and_equal(void **state)
{
    (void)state;
    double v;
    assert_true(ponder_answer_parse_number("18", &v) && v == 18.0);
    assert_true(ponder_answer_parse_number(" 1,000 ", &v) && v == 1000.0);
    assert_true(ponder_answer_parse_number("$5", &v) && v == 5.0);
    assert_true(ponder_answer_parse_number("-3.5", &v) && v == -3.5);
    assert_true(ponder_answer_parse_number("12%", &v) && v == 12.0);
    assert_false(ponder_answer_parse_number("abc", &v));
    assert_false(ponder_answer_parse_number("12 apples", &v));
    assert_false(ponder_answer_parse_number("", &v));

    char out[PONDER_ANSWER_BYTES];
    ponder_answer_format_number(0.1 + 0.2, out);
    assert_string_equal(out, "0.3");
    ponder_answer_format_number(-0.0, out);
    assert_string_equal(out, "0");
    ponder_answer_format_number(51.0, out);
    assert_string_equal(out, "51");

    assert_true(ponder_answer_equal(PONDER_ANSWER_NUMBER, "18", "18.0"));
    assert_true(ponder_answer_equal(PONDER_ANSWER_NUMBER, "0.3333333333", "0.333333")); /* within 1e-6 */
    assert_false(ponder_answer_equal(PONDER_ANSWER_NUMBER, "0.33", "0.333333"));
    assert_false(ponder_answer_equal(PONDER_ANSWER_NUMBER, "17", "18"));
    assert_false(ponder_answer_equal(PONDER_ANSWER_NUMBER, "", "18"));
    assert_true(ponder_answer_equal(PONDER_ANSWER_CHOICE, "B", "B"));
    assert_false(ponder_answer_equal(PONDER_ANSWER_CHOICE, "B", "C"));
}

static void test_choices(void **state)
{
    (void)state;
    expect_choice("(B)", 4, "B");
    expect_choice("Answer: C", 4, "C");
    expect_choice("The answer is (D).", 4, "D");
    expect_choice("B. Paris", 4, "B");
    expect_choice("B", 4, "B");
    expect_choice("A man walks into a bar.", 4, NULL); /* an article, not a letter */
    expect_choice("I first thought (A), but the answer is C.", 4, "C");
    expect_choice("Maybe (A) or maybe (B)", 4, "B");   /* the last parenthesized letter */
    expect_choice("Answer: E", 4, NULL);              /* outside A..D */
    expect_choice("Answer: E", 5, "E");
    expect_choice("the answer is Apple", 4, NULL);    /* a word, not a letter */
    expect_choice("", 4, NULL);

    char out[PONDER_ANSWER_BYTES];
    const char *t = "  Forty Two.\nmore";
    assert_true(ponder_answer_extract(PONDER_ANSWER_TEXT, 0, t, strlen(t), out));
    assert_string_equal(out, "forty two");
}

static void test_votes(void **state)
{
    (void)state;
    ponder_vote v[8];
    int32_t answered = -1;
    /* 3 and 5 both have 2 votes: 3 appears first (chain 0), so it wins */
    const char *a[] = { "3", "5", "5", "3", "", NULL, "7" };
    int32_t n = ponder_vote_tally(a, 7, v, &answered);
    assert_int_equal(n, 3);
    assert_int_equal(answered, 5);
    assert_string_equal(v[0].answer, "3");
    assert_int_equal(v[0].count, 2);
    assert_int_equal(v[0].first, 0);
    assert_string_equal(v[1].answer, "5");
    assert_int_equal(v[1].first, 1);
    assert_string_equal(v[2].answer, "7");
    assert_int_equal(v[2].count, 1);
    /* a later answer with more votes beats an earlier one */
    const char *b[] = { "5", "3", "3" };
    n = ponder_vote_tally(b, 3, v, &answered);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].answer, "3");
    assert_int_equal(v[0].count, 2);
    /* tie among three singletons: the first chain's answer */
    const char *c[] = { NULL, "9", "8", "7" };
    n = ponder_vote_tally(c, 4, v, &answered);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].answer, "9");
    assert_int_equal(answered, 3);
    /* nothing answered */
    const char *d[] = { NULL, "" };
    assert_int_equal(ponder_vote_tally(d, 2, v, &answered), 0);
    assert_int_equal(answered, 0);
}

static void test_incbeta_and_asc(void **state)
{
    (void)state;
    assert_true(fabs(ponder_incbeta(3.0, 3.0, 0.5) - 0.5) < 1e-12);       /* symmetry */
    assert_true(fabs(ponder_incbeta(1.0, 1.0, 0.3) - 0.3) < 1e-12);       /* uniform */
    assert_true(fabs(ponder_incbeta(4.0, 1.0, 0.7) - pow(0.7, 4)) < 1e-12); /* I_x(a,1) = x^a */
    /* I_0.3(2,3) = sum_{j=2..4} C(4,j) .3^j .7^(4-j) = .2646 + .0756 + .0081 */
    assert_true(fabs(ponder_incbeta(2.0, 3.0, 0.3) - 0.3483) < 1e-12);
    assert_true(fabs(ponder_incbeta(50.0, 60.0, 0.45) - (1.0 - ponder_incbeta(60.0, 50.0, 0.55))) < 1e-12);
    assert_true(isnan(ponder_incbeta(-1.0, 1.0, 0.5)));
    assert_true(isnan(ponder_incbeta(1.0, 1.0, 1.5)));

    /* For integer votes, 1 - I_0.5(v1+1, v2+1) = P(Binomial(v1+v2+1, 1/2) <= v1). */
    assert_true(fabs(ponder_asc_majority_prob(0, 0) - 0.5) < 1e-12);
    assert_true(fabs(ponder_asc_majority_prob(2, 2) - 0.5) < 1e-12);
    assert_true(fabs(ponder_asc_majority_prob(3, 0) - 0.9375) < 1e-12);     /* 1 - 2^-4: not yet 0.95 */
    assert_true(fabs(ponder_asc_majority_prob(4, 0) - 0.96875) < 1e-12);    /* 1 - 2^-5: stops at 0.95 */
    assert_true(fabs(ponder_asc_majority_prob(5, 1) - 0.9375) < 1e-12);     /* 1 - (7 + 1)/128 */
    assert_true(fabs(ponder_asc_majority_prob(6, 1) - (1.0 - 9.0 / 256.0)) < 1e-12);
    /* 10 vs 5: 1 - P(Bin(16) >= 11) = 1 - (4368 + 1820 + 560 + 120 + 16 + 1) / 65536 */
    assert_true(fabs(ponder_asc_majority_prob(10, 5) - (1.0 - 6885.0 / 65536.0)) < 1e-12);
}

static void test_wilson(void **state)
{
    (void)state;
    double lo, hi;
    ponder_wilson_interval(8, 10, 1.96, &lo, &hi);
    assert_true(fabs(lo - 0.490156) < 1e-5 && fabs(hi - 0.943318) < 1e-5);
    ponder_wilson_interval(0, 10, 1.96, &lo, &hi);
    assert_true(lo == 0.0 && fabs(hi - 0.277533) < 1e-5);
    ponder_wilson_interval(10, 10, 1.96, &lo, &hi);
    assert_true(fabs(lo - 0.722467) < 1e-5 && hi == 1.0);
    ponder_wilson_interval(0, 0, 1.96, &lo, &hi);
    assert_true(lo == 0.0 && hi == 1.0);
}

static void test_strategies(void **state)
{
    (void)state;
    ponder_strategy s;
    ponder_error err = { 0 };
    char buf[32];
    const struct { const char *in, *canon; } ok[] = {
        { "direct", "direct" }, { "cot", "cot" }, { "sc:8", "sc:8" }, { "asc:16", "asc:16" },
        { "bon:4", "bon:4" }, { "SC8", "sc:8" }, { "sc", "sc:8" }, { "asc", "asc:16" }, { "bon-2", "bon:2" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(ponder_strategy_parse(ok[i].in, &s, &err), PONDER_OK);
        assert_string_equal(ponder_strategy_format(&s, buf, sizeof buf), ok[i].canon);
    }
    assert_int_equal(ponder_strategy_parse("sc:3", &s, NULL), PONDER_OK);
    assert_int_equal(s.kind, PONDER_THINK_SC);
    assert_int_equal(s.n_samples, 3);
    const char *bad[] = { "sc:0", "foo", "cot:3", "sc:x", "sc:99999", "", "sc:" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ponder_strategy_parse(bad[i], &s, &err), PONDER_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, "strategy"));
    }

    const char *rest;
    assert_true(ponder_strategy_from_model_name("sc8-smollm2", &s, &rest));
    assert_int_equal(s.kind, PONDER_THINK_SC);
    assert_int_equal(s.n_samples, 8);
    assert_string_equal(rest, "smollm2");
    assert_true(ponder_strategy_from_model_name("cot-qwen2.5-0.5b", &s, &rest));
    assert_int_equal(s.kind, PONDER_THINK_COT);
    assert_string_equal(rest, "qwen2.5-0.5b");
    assert_true(ponder_strategy_from_model_name("bon-x", &s, &rest));
    assert_int_equal(s.n_samples, 4);
    s.kind = PONDER_THINK_ASC;
    assert_false(ponder_strategy_from_model_name("smollm2-135m", &s, &rest));
    assert_int_equal(s.kind, PONDER_THINK_ASC); /* untouched */
    assert_string_equal(rest, "smollm2-135m");
    assert_false(ponder_strategy_from_model_name("sc8-", &s, &rest));
    assert_false(ponder_strategy_from_model_name("sc8", &s, &rest));
}

/* One rule for every front end: text over prefix, samples over N, direct never cued, the
 * request's cue over the model's, the temperature by the kind and the model. */
static void test_strategy_plan(void **state)
{
    (void)state;
    ponder_strategy_plan pl;
    ponder_error err = { 0 };
    char buf[32];
    ponder_strategy_ask a = { 0 };
    /* a model that wants no cue and samples its votes at 0.5 */
    const ponder_think_model_prefs no_cue = {.cue = false, .sampled_temp = 0.5f};
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    assert_false(pl.given);
    assert_int_equal(pl.strategy.kind, PONDER_THINK_DIRECT);
    assert_false(pl.cue);
    assert_null(pl.model);

    a = (ponder_strategy_ask){ .model = "sc8-stories" };
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    assert_true(pl.given && pl.prefixed && pl.cue);
    assert_string_equal(ponder_strategy_format(&pl.strategy, buf, sizeof buf), "sc:8");
    assert_string_equal(pl.model, "stories");

    /* the text wins over the prefix; samples replaces N; the model's "no cue" holds */
    a = (ponder_strategy_ask){ .strategy = "bon", .model = "cot-stories", .samples = 3, .answer = "choice" };
    assert_int_equal(ponder_strategy_plan_make(&a, &no_cue, &pl, &err), PONDER_OK);
    assert_string_equal(ponder_strategy_format(&pl.strategy, buf, sizeof buf), "bon:3");
    assert_string_equal(pl.model, "stories");
    assert_false(pl.cue);
    assert_int_equal(pl.answer, PONDER_ANSWER_CHOICE);
    a.cue = PONDER_CUE_ON; /* the request over the model */
    assert_int_equal(ponder_strategy_plan_make(&a, &no_cue, &pl, &err), PONDER_OK);
    assert_true(pl.cue);
    a = (ponder_strategy_ask){ .strategy = "direct", .cue = PONDER_CUE_ON };
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    assert_false(pl.cue); /* direct is the prompt as given */
    a = (ponder_strategy_ask){ .strategy = "cot", .cue = PONDER_CUE_OFF };
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    assert_false(pl.cue);

    /* a model name with no prefix is no error */
    a = (ponder_strategy_ask){ .model = "smollm2-135m" };
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    assert_false(pl.given || pl.prefixed);
    assert_string_equal(pl.model, "smollm2-135m");

    /* errors name the field */
    const struct { ponder_strategy_ask a; const char *field; } bad[] = {
        { { .strategy = "vote" }, "strategy" },
        { { .strategy = "cot", .samples = 4 }, "samples" },
        { { .samples = 2 }, "samples" },
        { { .strategy = "sc", .samples = PONDER_THINK_MAX_SAMPLES + 1 }, "samples" },
        { { .strategy = "sc", .answer = "words" }, "answer" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl.field = NULL;
        assert_int_equal(ponder_strategy_plan_make(&bad[i].a, NULL, &pl, &err), PONDER_ERR_INVALID_ARG);
        assert_non_null(pl.field);
        assert_string_equal(pl.field, bad[i].field);
    }

    ponder_think_params p = ponder_think_params_default();
    a = (ponder_strategy_ask){ .strategy = "asc:6" };
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    ponder_think_params_from_plan(&p, &pl, false);
    assert_true(p.sampling.temp == PONDER_THINK_SAMPLED_TEMP);
    assert_string_equal(p.cot_cue, PONDER_THINK_COT_CUE);
    p.sampling.temp = 0.3f;
    ponder_think_params_from_plan(&p, &pl, true);
    assert_true(p.sampling.temp == 0.3f);
    a = (ponder_strategy_ask){ .strategy = "cot", .cue = PONDER_CUE_OFF };
    assert_int_equal(ponder_strategy_plan_make(&a, NULL, &pl, &err), PONDER_OK);
    ponder_think_params_from_plan(&p, &pl, false);
    assert_null(p.cot_cue);
    assert_true(p.sampling.temp == 0.0f);
    /* the model's own temperature for sampled strategies; never for one chain */
    a = (ponder_strategy_ask){ .strategy = "sc:4" };
    assert_int_equal(ponder_strategy_plan_make(&a, &no_cue, &pl, &err), PONDER_OK);
    ponder_think_params_from_plan(&p, &pl, false);
    assert_true(p.sampling.temp == 0.5f);
    a = (ponder_strategy_ask){ .strategy = "cot" };
    assert_int_equal(ponder_strategy_plan_make(&a, &no_cue, &pl, &err), PONDER_OK);
    ponder_think_params_from_plan(&p, &pl, false);
    assert_true(p.sampling.temp == 0.0f);
    assert_true(ponder_think_model_cue(NULL));
    const ponder_think_model_prefs none = ponder_think_model_defaults(NULL);
    assert_true(none.cue && none.sampled_temp == PONDER_THINK_SAMPLED_TEMP);
}

/* A model's own defaults come from its GGUF keys: arith-s1-paths carries
 * ponder.sampled_temp 0.5 and ponder.cue false; stories260K neither (0.7, cue on). */
static void test_model_defaults(void **state)
{
    (void)state;
    const struct { const char *path; bool cue; float temp; } want[] = {
        { PONDER_REPO_MODELS "/arith-s1-paths.gguf", false, 0.5f },
        { PONDER_REPO_MODELS "/stories260K/stories260K.gguf", true, PONDER_THINK_SAMPLED_TEMP },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ponder_model *m = NULL;
        ponder_error err;
        const ponder_model_params mp = ponder_model_params_default();
        if (ponder_model_load(want[i].path, &mp, &m, &err) != PONDER_OK)
            fail_msg("%s: %s", want[i].path, err.msg);
        const ponder_think_model_prefs d = ponder_think_model_defaults(m);
        assert_int_equal(d.cue, want[i].cue);
        assert_true(d.sampled_temp == want[i].temp);
        ponder_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_number_parse_and_equal),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_votes),
        cmocka_unit_test(test_incbeta_and_asc),
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_strategy_plan),
        cmocka_unit_test(test_model_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
