/*
 * test_think_sc.c — self-consistency decoded as one batch is an optimization, never a
 * change in results: one gen request of N choices gives token-exact the chains of N
 * single-choice requests with seeds seed + i (stories260K F32, sampled at T = 0.9). Then
 * ponder_think_run's accounting (prompt evaluated once for sc, once per round for asc) and
 * asc's stop on unanimous greedy chains. Last, bon:N with a verifier (stories260K itself
 * stands in as the judge: its two continuations' likelihoods are real numbers to check).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/gen.h"
#include "ponder/think.h"
#include "testutil.h"

#define N_CHAINS 4
#define MAX_TOKENS 40
#define SEED 1234

typedef struct fixture {
    ponder_model *m;
    ponder_tokenizer *tok;
    ponder_gen *g;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ponder_error err = { 0 };
    if (ponder_model_load(tu_shared("models/stories260K/stories260K.gguf"), NULL, &f->m, &err) != PONDER_OK ||
        ponder_tokenizer_create(ponder_model_gguf(f->m), &f->tok, &err) != PONDER_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ponder_gen_params gp = ponder_gen_params_default();
    gp.n_seq_max = N_CHAINS;
    gp.context.n_ctx = 256;
    gp.context.type_k = gp.context.type_v = PONDER_TYPE_F32;
    if (ponder_gen_create(f->m, f->tok, &gp, &f->g, &err) != PONDER_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ponder_gen_free(f->g);
    ponder_tokenizer_free(f->tok);
    ponder_model_free(f->m);
    free(f);
    return 0;
}

static ponder_gen_request request(const ponder_token *ids, int32_t n_ids, int32_t n_choices, uint64_t seed)
{
    ponder_gen_request r = { 0 };
    r.prompt = ids;
    r.n_prompt = n_ids;
    r.n_choices = n_choices;
    r.max_tokens = MAX_TOKENS;
    r.sampling = ponder_sampler_params_default();
    r.sampling.temp = 0.9f;
    r.sampling.seed = seed;
    r.logprobs = true;
    return r;
}

static void test_batch_equals_separate_runs(void **state)
{
    fixture *f = *state;
    ponder_error err = { 0 };
    const char *prompt = "Once upon a time, there was a little dog";
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    assert_int_equal(ponder_tokenizer_encode(f->tok, prompt, strlen(prompt), true, false, &ids, &n_ids, &err), PONDER_OK);

    ponder_gen_request r = request(ids, (int32_t)n_ids, N_CHAINS, SEED);
    int32_t batch_id = -1;
    if (ponder_gen_run(f->g, &r, &batch_id, &err) != PONDER_OK)
        fail_msg("batched run: %s", err.msg);
    ponder_gen_usage u;
    assert_int_equal(ponder_gen_usage_of(f->g, batch_id, &u, &err), PONDER_OK);
    assert_int_equal(u.prompt_tokens, (int32_t)n_ids);
    assert_int_equal(u.prompt_tokens_evaluated, (int32_t)n_ids); /* the prompt ran once for all chains */

    int distinct = 0;
    ponder_gen_choice_result first = { 0 };
    for (int32_t c = 0; c < N_CHAINS; c++) {
        ponder_gen_choice_result b;
        assert_int_equal(ponder_gen_result(f->g, batch_id, c, &b, &err), PONDER_OK);
        assert_true(b.n_tokens > 0);
        ponder_gen_request one = request(ids, (int32_t)n_ids, 1, SEED + (uint64_t)c);
        int32_t one_id = -1;
        if (ponder_gen_run(f->g, &one, &one_id, &err) != PONDER_OK)
            fail_msg("single run %d: %s", c, err.msg);
        ponder_gen_choice_result s;
        assert_int_equal(ponder_gen_result(f->g, one_id, 0, &s, &err), PONDER_OK);
        assert_int_equal(b.n_tokens, s.n_tokens);
        assert_memory_equal(b.tokens, s.tokens, (size_t)b.n_tokens * sizeof *b.tokens);
        assert_int_equal(b.text_len, s.text_len);
        assert_memory_equal(b.text, s.text, b.text_len);
        assert_true(fabs(b.sum_logprob - s.sum_logprob) < 1e-4);
        if (c == 0)
            first = b;
        else if (b.n_tokens != first.n_tokens || memcmp(b.tokens, first.tokens, (size_t)b.n_tokens * sizeof *b.tokens) != 0)
            distinct++;
        ponder_gen_release(f->g, one_id);
    }
    /* the seeds differ, so the chains do: the comparison above is not between copies */
    assert_true(distinct > 0);
    ponder_gen_release(f->g, batch_id);
    free(ids);
}

static void test_think_accounting(void **state)
{
    fixture *f = *state;
    ponder_error err = { 0 };
    ponder_think_params p = ponder_think_params_default();
    p.max_tokens = 24;
    p.sampling.temp = 0.9f;
    p.sampling.seed = SEED;
    p.answer_kind = PONDER_ANSWER_TEXT;
    assert_int_equal(ponder_strategy_parse("sc:4", &p.strategy, &err), PONDER_OK);
    ponder_think_result *r = NULL;
    if (ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err) != PONDER_OK)
        fail_msg("sc:4: %s", err.msg);
    assert_int_equal(r->n_samples, 4);
    assert_int_equal(r->n_rounds, 1);
    assert_true(r->usage.prompt_tokens > 0);
    assert_int_equal(r->usage.prompt_tokens_evaluated, r->usage.prompt_tokens);
    uint64_t tokens = 0;
    for (int32_t i = 0; i < r->n_samples; i++)
        tokens += (uint64_t)r->samples[i].n_tokens;
    assert_int_equal(r->usage.completion_tokens, tokens);
    assert_true(r->usage.flops > 0);
    int32_t votes = 0;
    for (int32_t i = 0; i < r->n_votes; i++)
        votes += r->votes[i].count;
    assert_int_equal(votes, r->n_answered);
    if (r->answer)
        assert_true(fabs(r->agreement - (double)r->votes[0].count / r->n_answered) < 1e-12);
    /* the cue was appended: the prompt is longer than the bare text */
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    assert_int_equal(ponder_tokenizer_encode(f->tok, "Once upon a time", 16, true, false, &ids, &n_ids, &err), PONDER_OK);
    assert_true(r->usage.prompt_tokens > n_ids);
    free(ids);

    /* sc:4 capped at 2 chains at once runs two rounds of the same chains (seed + i) */
    ponder_think_params p2 = p;
    p2.max_parallel = 2;
    assert_int_equal(ponder_think_job_max_choices(&p2), 2);
    ponder_think_result *r2 = NULL;
    if (ponder_think_run(f->g, f->tok, &p2, "Once upon a time", &r2, &err) != PONDER_OK)
        fail_msg("sc:4 in rounds of 2: %s", err.msg);
    assert_int_equal(r2->n_samples, 4);
    assert_int_equal(r2->n_rounds, 2);
    assert_int_equal(r2->usage.prompt_tokens_evaluated, 2 * r2->usage.prompt_tokens);
    for (int32_t i = 0; i < 4; i++)
        assert_string_equal(r2->samples[i].text, r->samples[i].text);
    ponder_think_result_free(r2);

    /* chain 0 of sc equals the cot sample with the same seed */
    ponder_think_params pc = p;
    assert_int_equal(ponder_strategy_parse("cot", &pc.strategy, &err), PONDER_OK);
    ponder_think_result *rc = NULL;
    assert_int_equal(ponder_think_run(f->g, f->tok, &pc, "Once upon a time", &rc, &err), PONDER_OK);
    assert_int_equal(rc->n_samples, 1);
    assert_string_equal(rc->samples[0].text, r->samples[0].text);
    ponder_think_result_free(rc);
    ponder_think_result_free(r);

    /* greedy chains agree: asc:16 in rounds of 4 stops after the first round (4 votes to 0:
     * P = 1 - 2^-5 = 0.969 > 0.95); in rounds of 1 after 4 rounds, the prompt run each time */
    p.sampling.temp = 0.0f;
    assert_int_equal(ponder_strategy_parse("asc:16", &p.strategy, &err), PONDER_OK);
    assert_int_equal(ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err), PONDER_OK);
    assert_int_equal(r->n_samples, 4);
    assert_int_equal(r->n_rounds, 1);
    assert_true(fabs(r->asc_prob - 0.96875) < 1e-9);
    assert_true(fabs(r->agreement - 1.0) < 1e-12);
    ponder_think_result_free(r);
    p.asc_round = 1;
    assert_int_equal(ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err), PONDER_OK);
    assert_int_equal(r->n_samples, 4);
    assert_int_equal(r->n_rounds, 4);
    assert_int_equal(r->usage.prompt_tokens_evaluated, 4 * r->usage.prompt_tokens);
    ponder_think_result_free(r);

    /* bon picks the chain with the highest mean logprob */
    p.sampling.temp = 1.0f;
    assert_int_equal(ponder_strategy_parse("bon:4", &p.strategy, &err), PONDER_OK);
    assert_int_equal(ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err), PONDER_OK);
    assert_true(r->best >= 0 && r->best < 4);
    for (int32_t i = 0; i < r->n_samples; i++)
        assert_true(r->samples[i].mean_logprob <= r->samples[r->best].mean_logprob);
    ponder_think_result_free(r);
}

/* P(right) recomputed from the two continuations' log-likelihoods on a context of its own */
static double judge_by_hand(fixture *f, const char *prompt_text, const char *chain)
{
    ponder_error err = { 0 };
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 256;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(f->m, &cp, &ctx, &err), PONDER_OK);
    char text[2048];
    snprintf(text, sizeof text, "%s%s%s", prompt_text, chain, PONDER_VERIFIER_CUE);
    const char *conts[2] = { PONDER_VERIFIER_YES, PONDER_VERIFIER_NO };
    ponder_choice_scores sc;
    assert_int_equal(ponder_think_score_choices(ctx, f->m, f->tok, text, conts, 2, &sc, &err), PONDER_OK);
    const double p = 1.0 / (1.0 + exp(sc.sum_logprob[1] - sc.sum_logprob[0]));
    ponder_choice_scores_free(&sc);
    ponder_context_free(ctx);
    return p;
}

static void test_bon_verifier(void **state)
{
    fixture *f = *state;
    ponder_error err = { 0 };
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 256;
    ponder_verifier *v = NULL;
    assert_int_equal(ponder_verifier_create(f->m, f->tok, &cp, &v, &err), PONDER_OK);
    ponder_think_params p = ponder_think_params_default();
    p.max_tokens = 16;
    p.sampling.temp = 1.0f;
    p.sampling.seed = SEED;
    p.answer_kind = PONDER_ANSWER_TEXT;
    assert_int_equal(ponder_strategy_parse("bon:4", &p.strategy, &err), PONDER_OK);
    ponder_think_result *plain = NULL, *r = NULL;
    assert_int_equal(ponder_think_run(f->g, f->tok, &p, "Once upon a time", &plain, &err), PONDER_OK);
    p.verifier = v;
    if (ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err) != PONDER_OK)
        fail_msg("bon:4 with a verifier: %s", err.msg);
    /* the same chains (same seeds); each judged as by hand; the best judged wins; the judging
     * is counted in the FLOPs */
    char *prompt_text = ponder_think_prompt_text(&p, "Once upon a time");
    assert_non_null(prompt_text);
    assert_int_equal(r->n_samples, 4);
    for (int32_t i = 0; i < r->n_samples; i++) {
        assert_string_equal(r->samples[i].text, plain->samples[i].text);
        assert_true(plain->samples[i].verifier_score == -1.0);
        const double want = judge_by_hand(f, prompt_text, r->samples[i].text);
        assert_true(fabs(r->samples[i].verifier_score - want) < 1e-9);
        assert_true(r->samples[i].verifier_score <= r->samples[r->best].verifier_score);
    }
    assert_true(r->usage.flops > plain->usage.flops);
    ponder_think_result_free(r);

    /* a weighted vote: the winning answer's scores add up to at least any other's */
    p.verifier_vote = true;
    assert_int_equal(ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err), PONDER_OK);
    assert_non_null(r->answer);
    double won = 0.0;
    for (int32_t i = 0; i < r->n_samples; i++)
        if (strcmp(r->samples[i].answer, r->answer) == 0)
            won += r->samples[i].verifier_score;
    for (int32_t k = 0; k < r->n_votes; k++) {
        double sum = 0.0;
        for (int32_t i = 0; i < r->n_samples; i++)
            if (strcmp(r->samples[i].answer, r->votes[k].answer) == 0)
                sum += r->samples[i].verifier_score;
        assert_true(sum <= won + 1e-12);
    }
    ponder_think_result_free(r);

    /* a job driven by its caller must say what text the chains continued */
    ponder_think_params pj = p;
    pj.verify_prompt = NULL;
    const ponder_token one = 1;
    ponder_think_job *job = NULL;
    assert_int_equal(ponder_think_job_create(&pj, &one, 1, &job, &err), PONDER_OK);
    assert_int_equal(ponder_think_job_finish(job, &r, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "verify_prompt"));
    ponder_think_job_free(job);
    ponder_verifier_free(v);

    /* chains too long for the verifier's context score 0 and the first chain stands */
    cp.n_ctx = 8;
    assert_int_equal(ponder_verifier_create(f->m, f->tok, &cp, &v, &err), PONDER_OK);
    p.verifier = v;
    p.verifier_vote = false;
    assert_int_equal(ponder_think_run(f->g, f->tok, &p, "Once upon a time", &r, &err), PONDER_OK);
    for (int32_t i = 0; i < r->n_samples; i++)
        assert_true(r->samples[i].verifier_score == 0.0);
    assert_int_equal(r->best, 0);
    ponder_think_result_free(r);
    ponder_verifier_free(v);
    ponder_think_result_free(plain);
    free(prompt_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_equals_separate_runs),
        cmocka_unit_test(test_think_accounting),
        cmocka_unit_test(test_bon_verifier),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
