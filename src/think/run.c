/*
 * run.c — running a strategy on the gen engine: one gen request per round (sc/bon: one
 * round of N chains sharing the prompt's KV; asc: rounds of k until the Beta criterion is
 * met; direct/cot: one chain), then answer extraction, the vote and the accounting.
 */
#include "ponder/think.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THINK_ASC_ROUND_DEFAULT 4      /* chains per asc round: batching vs. overshoot */
#define THINK_ASC_THRESHOLD_DEFAULT 0.95 /* Aggarwal et al. 2023's default confidence */

ponder_think_params ponder_think_params_default(void)
{
    ponder_think_params p = { 0 };
    p.strategy.kind = PONDER_THINK_DIRECT;
    p.strategy.n_samples = 1;
    p.sampling = ponder_sampler_params_default();
    p.max_tokens = 256;
    p.cot_cue = PONDER_THINK_COT_CUE;
    p.answer_kind = PONDER_ANSWER_NUMBER;
    p.asc_round = THINK_ASC_ROUND_DEFAULT;
    p.asc_threshold = THINK_ASC_THRESHOLD_DEFAULT;
    return p;
}

void ponder_think_result_free(ponder_think_result *r)
{
    if (!r)
        return;
    for (int32_t i = 0; i < r->n_samples; i++)
        free(r->samples[i].text);
    free(r->samples);
    free(r->votes);
    free(r);
}

/* prefix + prompt + cue, malloc'ed */
char *ponder_think_prompt_text(const ponder_think_params *p, const char *prompt)
{
    const bool cue = p->strategy.kind != PONDER_THINK_DIRECT && p->cot_cue;
    size_t a = p->prefix ? strlen(p->prefix) : 0, b = strlen(prompt), c = cue ? strlen(p->cot_cue) : 0;
    char *s = malloc(a + b + c + 1);
    if (!s)
        return NULL;
    if (a)
        memcpy(s, p->prefix, a);
    memcpy(s + a, prompt, b);
    if (c)
        memcpy(s + a + b, p->cot_cue, c);
    s[a + b + c] = '\0';
    return s;
}

/* A strategy in progress: the rounds made so far and what the next one is. */
struct ponder_think_job {
    ponder_think_params p;        /* stop and prefix pointers are the caller's */
    ponder_token *ids;            /* the prompt (owned) */
    int32_t n_ids;
    int32_t n_total;              /* chains at most */
    uint64_t seed;                /* resolved once: chain i uses seed + i */
    bool settled;                 /* no round follows */
    int32_t round_n;              /* chains in the round last handed out */
    double t0_ms;
    ponder_think_result *r;       /* filled round by round */
};

static uint64_t resolve_seed(uint64_t seed)
{
    if (seed != PONDER_SEED_RANDOM)
        return seed;
    /* one seed for the whole call, so asc's later rounds continue the same sequence */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (x & (UINT64_MAX >> 1)) - 1; /* 63 bits (JSON-safe), never PONDER_SEED_RANDOM */
}

ponder_status ponder_think_job_create(const ponder_think_params *p, const ponder_token *prompt, int32_t n_prompt,
                                      ponder_think_job **out, ponder_error *err)
{
    if (!p || !prompt || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "think: NULL argument");
    *out = NULL;
    const ponder_strategy s = p->strategy;
    int32_t n_total = s.kind == PONDER_THINK_DIRECT || s.kind == PONDER_THINK_COT ? 1 : s.n_samples;
    if (n_total < 1 || n_total > PONDER_THINK_MAX_SAMPLES)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "think: %d samples asked (1..%d)", (int)n_total,
                                PONDER_THINK_MAX_SAMPLES);
    if (s.kind == PONDER_THINK_ASC && (p->asc_round < 1 || !(p->asc_threshold > 0.0 && p->asc_threshold < 1.0)))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "think: asc needs round >= 1 (got %d) and 0 < threshold < 1 (got %g)",
                                (int)p->asc_round, p->asc_threshold);
    if (n_prompt <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "the prompt is empty (this model adds no BOS token)");
    ponder_think_job *j = calloc(1, sizeof *j);
    if (!j)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "think: out of memory");
    j->p = *p;
    j->n_ids = n_prompt;
    j->n_total = n_total;
    j->t0_ms = ponder_now_ms();
    j->ids = malloc((size_t)n_prompt * sizeof *j->ids);
    j->r = calloc(1, sizeof *j->r);
    if (j->r) {
        j->r->samples = calloc((size_t)n_total, sizeof *j->r->samples);
        j->r->votes = calloc((size_t)n_total, sizeof *j->r->votes);
    }
    if (!j->ids || !j->r || !j->r->samples || !j->r->votes) {
        ponder_think_job_free(j);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "think: out of memory for %d samples", (int)n_total);
    }
    memcpy(j->ids, prompt, (size_t)n_prompt * sizeof *j->ids);
    j->r->strategy = s;
    j->r->best = -1;
    j->seed = resolve_seed(p->sampling.seed);
    *out = j;
    return PONDER_OK;
}

void ponder_think_job_free(ponder_think_job *j)
{
    if (!j)
        return;
    ponder_think_result_free(j->r);
    free(j->ids);
    free(j);
}

int32_t ponder_think_job_max_choices(const ponder_think_params *p)
{
    const ponder_strategy s = p->strategy;
    if (s.kind == PONDER_THINK_DIRECT || s.kind == PONDER_THINK_COT)
        return 1;
    int32_t n = s.kind == PONDER_THINK_ASC && p->asc_round < s.n_samples ? p->asc_round : s.n_samples;
    return p->max_parallel > 0 && p->max_parallel < n ? p->max_parallel : n;
}

bool ponder_think_job_next(ponder_think_job *j, ponder_gen_request *req)
{
    const ponder_think_result *r = j->r;
    if (j->settled || r->n_samples >= j->n_total)
        return false;
    /* sc/bon: all N chains in one request; asc: rounds of asc_round; either at most
     * max_parallel at once */
    int32_t left = j->n_total - r->n_samples;
    int32_t n = j->p.strategy.kind == PONDER_THINK_ASC && j->p.asc_round < left ? j->p.asc_round : left;
    if (j->p.max_parallel > 0 && n > j->p.max_parallel)
        n = j->p.max_parallel;
    j->round_n = n;
    memset(req, 0, sizeof *req);
    req->prompt = j->ids;
    req->n_prompt = j->n_ids;
    req->n_choices = n;
    req->max_tokens = j->p.max_tokens;
    req->sampling = j->p.sampling;
    req->sampling.seed = j->seed + (uint64_t)r->n_samples;
    req->stop = j->p.stop;
    req->n_stop = j->p.n_stop;
    req->grammar = j->p.grammar;
    req->logprobs = true; /* sum_logprob for bon and the reported mean_logprob */
    return true;
}

static ponder_status tally(ponder_think_result *r)
{
    const char **answers = malloc((size_t)(r->n_samples > 0 ? r->n_samples : 1) * sizeof *answers);
    if (!answers)
        return PONDER_ERR_NOMEM;
    for (int32_t i = 0; i < r->n_samples; i++)
        answers[i] = r->samples[i].answer;
    r->n_votes = ponder_vote_tally(answers, r->n_samples, r->votes, &r->n_answered);
    free(answers);
    return PONDER_OK;
}

ponder_status ponder_think_job_collect(ponder_think_job *j, const ponder_gen *g, int32_t id, ponder_error *err)
{
    ponder_think_result *r = j->r;
    ponder_gen_usage u;
    ponder_status st = ponder_gen_usage_of(g, id, &u, err);
    if (st != PONDER_OK)
        return st;
    for (int32_t c = 0; c < j->round_n && r->n_samples < j->n_total; c++) {
        ponder_gen_choice_result cr;
        if ((st = ponder_gen_result(g, id, c, &cr, err)) != PONDER_OK)
            return st;
        ponder_think_sample *s = &r->samples[r->n_samples];
        memset(s, 0, sizeof *s);
        s->text = malloc(cr.text_len + 1);
        if (!s->text)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory copying chain %d", (int)r->n_samples);
        if (cr.text_len)
            memcpy(s->text, cr.text, cr.text_len);
        s->text[cr.text_len] = '\0';
        s->text_len = cr.text_len;
        s->n_tokens = cr.n_tokens;
        s->sum_logprob = cr.sum_logprob;
        s->mean_logprob = cr.n_tokens > 0 ? cr.sum_logprob / cr.n_tokens : 0.0;
        s->finish = cr.finish;
        s->verifier_score = -1.0;
        ponder_answer_extract(j->p.answer_kind, j->p.n_choices, s->text, s->text_len, s->answer);
        r->n_samples++;
    }
    r->usage.prompt_tokens = (uint64_t)u.prompt_tokens;
    r->usage.prompt_tokens_evaluated += (uint64_t)u.prompt_tokens_evaluated;
    r->usage.completion_tokens += (uint64_t)u.completion_tokens;
    r->usage.flops += u.flops;
    r->n_rounds++;
    if (tally(r) != PONDER_OK)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "think: out of memory");
    if (r->n_samples < j->n_total && j->p.strategy.kind != PONDER_THINK_ASC) {
        /* sc/bon capped by max_parallel: the next round continues the chains */
    } else if (j->p.strategy.kind == PONDER_THINK_ASC) {
        int32_t v1 = r->n_votes > 0 ? r->votes[0].count : 0, v2 = r->n_votes > 1 ? r->votes[1].count : 0;
        r->asc_prob = ponder_asc_majority_prob(v1, v2);
        if (r->asc_prob > j->p.asc_threshold)
            j->settled = true;
    } else {
        j->settled = true;
    }
    return PONDER_OK;
}

/* bon with a verifier: every chain judged; the best chain wins, or with verifier_vote the
 * answer whose chains' scores add up highest (ties to the earliest chain) */
static ponder_status judge_chains(ponder_think_job *j, ponder_error *err)
{
    ponder_think_result *r = j->r;
    if (!j->p.verify_prompt)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "think: a verifier needs the prompt text (verify_prompt)");
    double best = -1.0;
    for (int32_t i = 0; i < r->n_samples; i++) {
        ponder_think_sample *s = &r->samples[i];
        ponder_status st = ponder_verifier_score(j->p.verifier, j->p.verify_prompt, s->text, s->text_len,
                                                 &s->verifier_score, &r->usage.flops, err);
        if (st != PONDER_OK)
            return st;
        if (s->verifier_score > best) {
            best = s->verifier_score;
            r->best = i;
        }
    }
    if (j->p.verifier_vote) {
        double best_sum = -1.0;
        for (int32_t v = 0; v < r->n_votes; v++) {
            double sum = 0.0;
            for (int32_t i = 0; i < r->n_samples; i++)
                if (strcmp(r->samples[i].answer, r->votes[v].answer) == 0)
                    sum += r->samples[i].verifier_score;
            if (sum > best_sum || (sum == best_sum && r->votes[v].first < r->best)) {
                best_sum = sum;
                r->best = r->votes[v].first;
            }
        }
    }
    return PONDER_OK;
}

ponder_status ponder_think_job_finish(ponder_think_job *j, ponder_think_result **out, ponder_error *err)
{
    ponder_think_result *r = j->r;
    if (r->strategy.kind == PONDER_THINK_BON && j->p.verifier) {
        ponder_status st = judge_chains(j, err);
        if (st != PONDER_OK)
            return st;
        if (r->best < 0 && r->n_samples > 0)
            r->best = 0;
        r->answer = r->best >= 0 && r->samples[r->best].answer[0] ? r->samples[r->best].answer : NULL;
    } else if (r->strategy.kind == PONDER_THINK_BON) {
        /* highest mean token logprob; a chain with no tokens never wins; ties to the earliest */
        double best = -INFINITY;
        for (int32_t i = 0; i < r->n_samples; i++) {
            if (r->samples[i].n_tokens > 0 && r->samples[i].mean_logprob > best) {
                best = r->samples[i].mean_logprob;
                r->best = i;
            }
        }
        if (r->best < 0 && r->n_samples > 0)
            r->best = 0;
        r->answer = r->best >= 0 && r->samples[r->best].answer[0] ? r->samples[r->best].answer : NULL;
    } else if (r->n_votes > 0) {
        r->answer = r->votes[0].answer;
        r->best = r->votes[0].first;
    }
    if (r->answer) {
        int32_t top = 0;
        for (int32_t i = 0; i < r->n_votes; i++)
            if (strcmp(r->votes[i].answer, r->answer) == 0)
                top = r->votes[i].count;
        r->agreement = r->n_answered > 0 ? (double)top / r->n_answered : 0.0;
    }
    r->usage.wall_ms = ponder_now_ms() - j->t0_ms;
    j->r = NULL;
    *out = r;
    return PONDER_OK;
}

ponder_status ponder_think_run(ponder_gen *g, const ponder_tokenizer *tok, const ponder_think_params *p,
                               const char *prompt, ponder_think_result **out, ponder_error *err)
{
    if (!g || !tok || !p || !prompt || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "think: NULL argument");
    *out = NULL;
    ponder_status st;
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    ponder_think_job *job = NULL;
    char *text = ponder_think_prompt_text(p, prompt);
    if (!text)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "think: out of memory");
    if ((st = ponder_tokenizer_encode(tok, text, strlen(text), true, false, &ids, &n_ids, err)) != PONDER_OK) {
        ponder_error_prefix(err, "prompt");
        goto done;
    }
    if (n_ids > INT32_MAX) {
        st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "the prompt is too long (%zu tokens)", n_ids);
        goto done;
    }
    ponder_think_params pv = *p;
    if (!pv.verify_prompt)
        pv.verify_prompt = text;
    if ((st = ponder_think_job_create(&pv, ids, (int32_t)n_ids, &job, err)) != PONDER_OK)
        goto done;
    ponder_gen_request req;
    while (ponder_think_job_next(job, &req)) {
        int32_t id = -1;
        st = ponder_gen_run(g, &req, &id, err);
        if (st == PONDER_OK)
            st = ponder_think_job_collect(job, g, id, err);
        if (id > 0)
            ponder_gen_release(g, id);
        if (st != PONDER_OK)
            goto done;
    }
    st = ponder_think_job_finish(job, out, err);
done:
    ponder_think_job_free(job);
    free(ids);
    free(text);
    return st;
}
