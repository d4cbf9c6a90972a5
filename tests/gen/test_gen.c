/*
 * test_gen.c — batched generation on stories260K (F32 weights: the model API promises
 * bit-identical logits whatever the batch, so batching must never change a token).
 *
 * The determinism checks compare runs against each other: a request with n choices
 * against n one-choice requests with seeds seed+i, concurrent requests against the same
 * requests run alone, queued requests against the same run alone. The absolute checks
 * compare with data computed without gen: the float64 golden greedy run of
 * shared/models/stories260K, a plain ponder_context_decode loop for logprobs (log-softmax
 * in double here) and for the penalised greedy reference, and the greedy text for stop
 * strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/gen_internal.h"
#include "ponder/gen.h"
#include "testutil.h"

#define MODEL "models/stories260K/stories260K.gguf"
#define N_CTX 256

static ponder_model *M;
static ponder_tokenizer *T;
static ponder_gguf *GG;

/* ---- event collector: what the stream said, checked against the final results ---- */

enum { MAX_CHOICES = 8, MAX_TOK = 600, MAX_REQS = 16 };

typedef struct stream {
    int32_t id;
    char text[MAX_CHOICES][8192];
    size_t len[MAX_CHOICES];
    ponder_token tokens[MAX_CHOICES][MAX_TOK];
    float chosen[MAX_CHOICES][MAX_TOK];
    ponder_gen_token_logprob top[MAX_CHOICES][4][PONDER_GEN_MAX_TOP_LOGPROBS]; /* first 4 steps */
    int32_t n_top[MAX_CHOICES][4];
    int32_t n_tokens[MAX_CHOICES];
    ponder_finish finish[MAX_CHOICES];
    int32_t n_after_finish; /* events after a choice's final one: must stay 0 */
    int32_t first_event_seq; /* global order of this request's first event */
} stream;

static int32_t g_event_counter;

static void on_event(const ponder_gen_event *ev, void *user)
{
    stream *s = user;
    assert_int_equal(ev->request_id, s->id);
    assert_true(ev->choice >= 0 && ev->choice < MAX_CHOICES);
    const int c = ev->choice;
    if (s->first_event_seq == 0)
        s->first_event_seq = ++g_event_counter;
    if (s->finish[c] != PONDER_FINISH_NONE) {
        s->n_after_finish++;
        return;
    }
    assert_true(s->len[c] + ev->text_len < sizeof s->text[c]);
    memcpy(s->text[c] + s->len[c], ev->text, ev->text_len);
    s->len[c] += ev->text_len;
    if (ev->token != PONDER_TOKEN_NULL) {
        int32_t k = s->n_tokens[c]++;
        assert_true(k < MAX_TOK);
        s->tokens[c][k] = ev->token;
        s->chosen[c][k] = ev->chosen.logprob;
        if (k < 4) {
            assert_true(ev->n_top <= PONDER_GEN_MAX_TOP_LOGPROBS);
            s->n_top[c][k] = ev->n_top;
            if (ev->n_top)
                memcpy(s->top[c][k], ev->top, (size_t)ev->n_top * sizeof *ev->top);
        }
    }
    s->finish[c] = ev->finish;
}

/* The streamed text and tokens equal the final results. */
static void check_stream(ponder_gen *g, const stream *s, int32_t n_choices)
{
    ponder_error err = {0};
    assert_true(ponder_gen_done(g, s->id));
    assert_int_equal(s->n_after_finish, 0);
    for (int32_t c = 0; c < n_choices; c++) {
        ponder_gen_choice_result res;
        assert_int_equal(ponder_gen_result(g, s->id, c, &res, &err), PONDER_OK);
        assert_int_not_equal(res.finish, PONDER_FINISH_NONE);
        assert_int_equal(res.finish, s->finish[c]);
        assert_int_equal(res.text_len, s->len[c]);
        assert_memory_equal(res.text, s->text[c], res.text_len);
        assert_int_equal(res.text[res.text_len], '\0');
        assert_int_equal(res.n_tokens, s->n_tokens[c]);
        if (res.n_tokens)
            assert_memory_equal(res.tokens, s->tokens[c], (size_t)res.n_tokens * sizeof *res.tokens);
    }
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    ponder_error err = {0};
    if (ponder_model_load(tu_shared(MODEL), NULL, &M, &err) != PONDER_OK)
        return fprintf(stderr, "%s\n", err.msg), -1;
    if (ponder_gguf_open(tu_shared(MODEL), &GG, &err) != PONDER_OK ||
        ponder_tokenizer_create(GG, &T, &err) != PONDER_OK)
        return fprintf(stderr, "%s\n", err.msg), -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ponder_tokenizer_free(T);
    ponder_gguf_free(GG);
    ponder_model_free(M);
    return 0;
}

static ponder_gen *make_gen_cells(int32_t n_seq_max, int32_t n_ctx, ponder_type kv, int32_t n_kv_cells)
{
    ponder_error err = {0};
    ponder_gen_params p = ponder_gen_params_default();
    p.n_seq_max = n_seq_max;
    p.context.n_ctx = n_ctx;
    p.context.n_kv_cells = n_kv_cells;
    p.context.type_k = p.context.type_v = kv;
    ponder_gen *g = NULL;
    ponder_status st = ponder_gen_create(M, T, &p, &g, &err);
    if (st != PONDER_OK)
        fail_msg("gen_create: %s", err.msg);
    return g;
}

static ponder_gen *make_gen(int32_t n_seq_max, int32_t n_ctx, ponder_type kv)
{
    return make_gen_cells(n_seq_max, n_ctx, kv, 0);
}

static ponder_token *encode(const char *text, int32_t *n)
{
    ponder_error err = {0};
    ponder_token *ids = NULL;
    size_t len = 0;
    assert_int_equal(ponder_tokenizer_encode(T, text, strlen(text), true, false, &ids, &len, &err), PONDER_OK);
    *n = (int32_t)len;
    return ids;
}

static ponder_gen_request request(const ponder_token *prompt, int32_t n_prompt, int32_t n_choices, uint64_t seed,
                                  stream *s)
{
    ponder_gen_request r = {0};
    r.prompt = prompt;
    r.n_prompt = n_prompt;
    r.n_choices = n_choices;
    r.max_tokens = 80;
    r.sampling = ponder_sampler_params_default();
    r.sampling.temp = 0.8f;
    r.sampling.seed = seed;
    r.on_event = on_event;
    r.user = s;
    return r;
}

static void submit(ponder_gen *g, const ponder_gen_request *r, stream *s)
{
    ponder_error err = {0};
    memset(s, 0, sizeof *s);
    if (ponder_gen_submit(g, r, &s->id, &err) != PONDER_OK)
        fail_msg("submit: %s", err.msg);
    assert_true(s->id > 0);
}

static void run_all(ponder_gen *g)
{
    ponder_error err = {0};
    for (int guard = 0; ponder_gen_n_pending(g) > 0; guard++) {
        bool did = false;
        if (ponder_gen_step(g, &did, &err) != PONDER_OK)
            fail_msg("step: %s", err.msg);
        assert_true(did);
        assert_true(guard < 100000);
    }
}

static void run_one(ponder_gen *g, const ponder_gen_request *r, stream *s)
{
    submit(g, r, s);
    run_all(g);
    check_stream(g, s, r->n_choices);
}

static void same_choice(const stream *a, int32_t ca, const stream *b, int32_t cb)
{
    assert_int_equal(a->n_tokens[ca], b->n_tokens[cb]);
    assert_memory_equal(a->tokens[ca], b->tokens[cb], (size_t)a->n_tokens[ca] * sizeof(ponder_token));
    assert_int_equal(a->len[ca], b->len[cb]);
    assert_memory_equal(a->text[ca], b->text[cb], a->len[ca]);
    assert_int_equal(a->finish[ca], b->finish[cb]);
}

static bool differ(const stream *a, int32_t ca, const stream *b, int32_t cb)
{
    return a->n_tokens[ca] != b->n_tokens[cb] ||
           memcmp(a->tokens[ca], b->tokens[cb], (size_t)a->n_tokens[ca] * sizeof(ponder_token)) != 0;
}

/* ---- (a) n choices == n requests with seeds seed+i ---- */

static void test_choices_equal_separate_requests(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    const uint64_t seeds[] = {1, 42, 1234567};
    static stream multi, single[4];
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        ponder_gen *g = make_gen(4, N_CTX, PONDER_TYPE_F16);
        ponder_gen_request r = request(prompt, n_prompt, 4, seeds[k], &multi);
        run_one(g, &r, &multi);
        for (int i = 0; i < 4; i++) {
            ponder_gen_request q = request(prompt, n_prompt, 1, seeds[k] + (uint64_t)i, &single[i]);
            run_one(g, &q, &single[i]);
            same_choice(&multi, i, &single[i], 0);
            assert_true(multi.n_tokens[i] > 10);
        }
        /* the choices really are different samples */
        assert_true(differ(&multi, 0, &multi, 1) || differ(&multi, 0, &multi, 2));
        /* explicit seeds[] behave as sampling.seed + i */
        const uint64_t given[4] = {seeds[k] + 3, seeds[k] + 2, seeds[k] + 1, seeds[k]};
        static stream rev;
        ponder_gen_request q = request(prompt, n_prompt, 4, 999, &rev);
        q.seeds = given;
        run_one(g, &q, &rev);
        for (int i = 0; i < 4; i++)
            same_choice(&rev, i, &multi, 3 - i);
        ponder_gen_free(g);
    }
    free(prompt);
}

/* ---- (b) concurrent requests == each alone ---- */

static void test_concurrent_equal_alone(void **state)
{
    (void)state;
    const char *texts[4] = {"Once upon a time", "The cat", "Lily and Ben went to the park. They",
                            "One day, a little"};
    ponder_token *prompts[4];
    int32_t n_prompts[4];
    for (int i = 0; i < 4; i++)
        prompts[i] = encode(texts[i], &n_prompts[i]);
    for (uint64_t seed = 7; seed < 10; seed++) {
        static stream together[4], alone[4];
        ponder_gen_request rq[4];
        ponder_gen *g = make_gen(6, N_CTX, PONDER_TYPE_F16);
        for (int i = 0; i < 4; i++) {
            rq[i] = request(prompts[i], n_prompts[i], i == 2 ? 3 : 1, seed * 100 + (uint64_t)i, &together[i]);
            rq[i].max_tokens = 40 + 13 * i; /* finishing at different steps */
            submit(g, &rq[i], &together[i]);
        }
        assert_int_equal(ponder_gen_n_pending(g), 4);
        run_all(g);
        for (int i = 0; i < 4; i++)
            check_stream(g, &together[i], rq[i].n_choices);
        ponder_gen_free(g);

        g = make_gen(6, N_CTX, PONDER_TYPE_F16);
        for (int i = 0; i < 4; i++) {
            rq[i].user = &alone[i];
            run_one(g, &rq[i], &alone[i]);
            for (int c = 0; c < rq[i].n_choices; c++)
                same_choice(&together[i], c, &alone[i], c);
        }
        ponder_gen_free(g);
    }
    for (int i = 0; i < 4; i++)
        free(prompts[i]);
}

/* ---- (c) greedy equals the float64 golden run ---- */

static void test_greedy_matches_golden(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *gold = json_load_file(tu_shared("models/stories260K/stories260K.greedy-t0.json"), 0, &jerr);
    assert_non_null(gold);
    json_t *ids = json_object_get(gold, "generated_token_ids");
    enum { N = 120 };
    assert_true(json_array_size(ids) >= N);

    ponder_gen *g = make_gen(3, N_CTX, PONDER_TYPE_F32);
    const ponder_token bos = 1;
    static stream s;
    ponder_gen_request r = request(&bos, 1, 3, 5, &s);
    r.sampling.temp = 0.0f;
    r.max_tokens = N;
    r.ignore_eos = true;
    run_one(g, &r, &s);
    for (int c = 0; c < 3; c++) {
        assert_int_equal(s.n_tokens[c], N);
        assert_int_equal(s.finish[c], PONDER_FINISH_LENGTH);
        for (int k = 0; k < N; k++)
            assert_int_equal(s.tokens[c][k], json_integer_value(json_array_get(ids, (size_t)k)));
    }
    /* the text is the tokenizer's decoding of the tokens */
    char *text = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_tokenizer_decode(T, s.tokens[0], N, false, false, &text, &err), PONDER_OK);
    assert_int_equal(strlen(text), s.len[0]);
    assert_memory_equal(text, s.text[0], s.len[0]);
    free(text);
    ponder_gen_usage u;
    assert_int_equal(ponder_gen_usage_of(g, s.id, &u, &err), PONDER_OK);
    assert_int_equal(u.completion_tokens, 3 * N);
    ponder_gen_free(g);
    json_decref(gold);
}

/* ---- (d) stop strings, limits, errors, cancel, queueing ---- */

/* The greedy continuation of "Once upon a time", max_tokens n, no stop strings. */
static void greedy_reference(ponder_gen *g, const ponder_token *prompt, int32_t n_prompt, int32_t n, stream *s)
{
    ponder_gen_request r = request(prompt, n_prompt, 1, 1, s);
    r.sampling.temp = 0.0f;
    r.max_tokens = n;
    run_one(g, &r, s);
}

static void run_stop(ponder_gen *g, const ponder_token *prompt, int32_t n_prompt, int32_t max_tokens,
                     const char *const *stop, int32_t n_stop, stream *s)
{
    ponder_gen_request r = request(prompt, n_prompt, 2, 1, s);
    r.sampling.temp = 0.0f;
    r.max_tokens = max_tokens;
    r.stop = stop;
    r.n_stop = n_stop;
    run_one(g, &r, s);
    same_choice(s, 0, s, 1);
}

static void test_stop_strings(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    ponder_gen *g = make_gen(2, N_CTX, PONDER_TYPE_F16);
    static stream ref, s;
    greedy_reference(g, prompt, n_prompt, 60, &ref);
    assert_int_equal(ref.finish[0], PONDER_FINISH_LENGTH);
    const char *full = ref.text[0];
    const size_t n_full = ref.len[0];
    assert_true(n_full > 60);

    /* piece boundaries of the greedy text, to build a stop string spanning tokens */
    size_t bound[64], nb = 0, at = 0;
    for (int k = 0; k < ref.n_tokens[0] && nb < 64; k++) {
        char piece[64];
        int32_t n = ponder_tokenizer_token_to_piece(T, ref.tokens[0][k], piece, sizeof piece, false);
        assert_true(n >= 0);
        at += (size_t)n;
        bound[nb++] = at;
    }
    assert_int_equal(at, n_full);
    /* from the last byte of token k to the one before the last of token k+2 (which
     * has at least two): the stop string spans three tokens */
    int k0 = 9;
    while (k0 + 2 < (int)nb && bound[k0 + 2] - bound[k0 + 1] < 2)
        k0++;
    assert_true(k0 + 2 < (int)nb && k0 < 30);
    size_t s0 = bound[k0] - 1, s1 = bound[k0 + 2] - 1;
    char spanning[64];
    memcpy(spanning, full + s0, s1 - s0);
    spanning[s1 - s0] = '\0';
    /* the first occurrence of the stop string ends the text, whichever token it starts in */
    const char *first = strstr(full, spanning);
    assert_non_null(first);
    const size_t cut = (size_t)(first - full);

    const char *stop1[] = {spanning};
    run_stop(g, prompt, n_prompt, 60, stop1, 1, &s);
    assert_int_equal(s.finish[0], PONDER_FINISH_STOP);
    assert_int_equal(s.len[0], cut);
    assert_memory_equal(s.text[0], full, cut);
    /* it stopped on the token completing the stop string */
    size_t end = cut + strlen(spanning);
    int k_end = 0;
    while (bound[k_end] < end)
        k_end++;
    assert_int_equal(s.n_tokens[0], k_end + 1);

    /* several stop strings: the earliest match wins, whatever the list order */
    char later[16];
    memcpy(later, full + bound[30], 6);
    later[6] = '\0';
    const char *stop2[] = {later, "\x01never", spanning};
    const char *firstl = strstr(full, later);
    run_stop(g, prompt, n_prompt, 60, stop2, 3, &s);
    assert_int_equal(s.finish[0], PONDER_FINISH_STOP);
    assert_int_equal(s.len[0], (size_t)(firstl - full) < cut ? (size_t)(firstl - full) : cut);

    /* a stop string at the very start: empty text */
    char head[8];
    memcpy(head, full, 3);
    head[3] = '\0';
    const char *stop3[] = {head};
    run_stop(g, prompt, n_prompt, 60, stop3, 1, &s);
    assert_int_equal(s.finish[0], PONDER_FINISH_STOP);
    assert_int_equal(s.len[0], 0);

    /* a stop string whose start the text ends with is held back while it could still
     * match, then released in full when the request ends by length */
    char tail[32];
    snprintf(tail, sizeof tail, "%.*s\x02zz", 4, full + bound[19] - 4);
    const char *stop4[] = {tail};
    run_stop(g, prompt, n_prompt, 20, stop4, 1, &s);
    assert_int_equal(s.finish[0], PONDER_FINISH_LENGTH);
    assert_int_equal(s.len[0], bound[19]);
    assert_memory_equal(s.text[0], full, bound[19]);

    /* max_tokens → length with exactly that many tokens, the greedy prefix */
    run_stop(g, prompt, n_prompt, 7, NULL, 0, &s);
    assert_int_equal(s.finish[0], PONDER_FINISH_LENGTH);
    assert_int_equal(s.n_tokens[0], 7);
    assert_memory_equal(s.tokens[0], ref.tokens[0], 7 * sizeof(ponder_token));
    ponder_gen_free(g);
    free(prompt);
}

static void test_stop_helpers(void **state)
{
    (void)state;
    char *s[] = {"abc", "xyz", "b"};
    size_t len[] = {3, 3, 1};
    gen_stops st = {s, len, 2};
    assert_int_equal(gen_stop_find(&st, "zzabcxyz", 8, 0), 2);
    assert_int_equal(gen_stop_find(&st, "zzabcxyz", 8, 3), 5);
    assert_int_equal(gen_stop_find(&st, "zzab", 4, 0), SIZE_MAX);
    assert_int_equal(gen_stop_holdback(&st, "zzab", 4, 0), 2);
    assert_int_equal(gen_stop_holdback(&st, "zzab", 4, 3), 0); /* "a" is already out: "b" alone starts nothing */
    assert_int_equal(gen_stop_holdback(&st, "zzaba", 5, 3), 1);
    assert_int_equal(gen_stop_holdback(&st, "zzxy", 4, 0), 2);
    assert_int_equal(gen_stop_holdback(&st, "zzq", 3, 0), 0);
    st.n = 3; /* "b" matches earlier than "xyz" */
    assert_int_equal(gen_stop_find(&st, "xyb", 3, 0), 2);
    assert_int_equal(gen_stop_find(&st, "abxyz", 5, 0), 1);

    const float l[5] = {1.0f, 3.0f, 3.0f, -INFINITY, NAN};
    float scratch[5];
    double lse = gen_log_sum_exp(l, 5, scratch);
    assert_true(fabs(lse - log(exp(1.0) + 2 * exp(3.0))) < 1e-12);
    ponder_gen_token_logprob top[PONDER_GEN_MAX_TOP_LOGPROBS];
    assert_int_equal(gen_top_logprobs(l, 5, lse, 4, top), 4);
    assert_int_equal(top[0].token, 1); /* ties: lower id first */
    assert_int_equal(top[1].token, 2);
    assert_int_equal(top[2].token, 0);
    assert_int_equal(top[3].token, 3);
    assert_true(fabs(top[2].logprob - (1.0 - lse)) < 1e-6);

    /* no NaN: the vector exp path, against a double loop */
    enum { V = 1003 };
    static float big[V], scr[V];
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) {
        big[i] = (float)sin(i * 0.37) * 9.0f + (i == 500 ? 20.0f : 0.0f);
        mx = fmax(mx, big[i]);
    }
    big[7] = -INFINITY;
    for (int i = 0; i < V; i++)
        z += exp(big[i] - mx);
    assert_true(fabs(gen_log_sum_exp(big, V, scr) - (mx + log(z))) < 1e-5);
}

static void test_errors(void **state)
{
    (void)state;
    ponder_gen *g = make_gen(2, 32, PONDER_TYPE_F16);
    ponder_error err = {0};
    ponder_token prompt[40];
    for (int i = 0; i < 40; i++)
        prompt[i] = 1 + i;
    static stream s;
    int32_t id = -5;
    ponder_gen_request r = request(prompt, 33, 1, 1, &s);
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_RANGE);
    assert_non_null(strstr(err.msg, "prompt has 33 tokens, context holds 32"));
    assert_int_equal(id, 0);
    r.n_prompt = 0;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "empty"));
    r.n_prompt = 5;
    r.n_choices = 3;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_RANGE);
    assert_non_null(strstr(err.msg, "3 choices"));
    r.n_choices = 0;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_INVALID_ARG);
    r.n_choices = 1;
    prompt[2] = 100000;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "100000"));
    prompt[2] = 3;
    const char *empty[] = {""};
    r.stop = empty;
    r.n_stop = 1;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_INVALID_ARG);
    r.n_stop = 0;
    r.top_logprobs = 21;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_RANGE);
    r.top_logprobs = 0;
    r.sampling.repeat_penalty = -1.0f;
    assert_int_equal(ponder_gen_submit(g, &r, &id, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gen_n_pending(g), 0);

    /* a prompt filling the context exactly: one token, then the context's end */
    r = request(prompt, 32, 2, 1, &s);
    run_one(g, &r, &s);
    for (int c = 0; c < 2; c++) {
        assert_int_equal(s.finish[c], PONDER_FINISH_LENGTH);
        assert_int_equal(s.n_tokens[c], 1);
    }
    /* max_tokens <= 0: until the context is full */
    r = request(prompt, 20, 1, 1, &s);
    r.max_tokens = 0;
    r.ignore_eos = true;
    run_one(g, &r, &s);
    assert_int_equal(s.finish[0], PONDER_FINISH_LENGTH);
    assert_int_equal(s.n_tokens[0], 32 - 20 + 1);
    ponder_gen_choice_result res;
    assert_int_equal(ponder_gen_result(g, s.id, 1, &res, &err), PONDER_ERR_RANGE);
    assert_int_equal(ponder_gen_result(g, 12345, 0, &res, &err), PONDER_ERR_NOT_FOUND);
    ponder_gen_release(g, s.id);
    assert_int_equal(ponder_gen_result(g, s.id, 0, &res, &err), PONDER_ERR_NOT_FOUND);
    ponder_gen_cancel(g, 12345); /* unknown: no-op */
    ponder_gen_free(g);
    ponder_gen_free(NULL);
    assert_string_equal(ponder_finish_name(PONDER_FINISH_STOP), "stop");
    assert_string_equal(ponder_finish_name(PONDER_FINISH_LENGTH), "length");
}

static void test_cancel_frees_sequences(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    ponder_gen *g = make_gen(4, N_CTX, PONDER_TYPE_F16);
    const int32_t free0 = ponder_context_n_free_cells(ponder_gen_context(g));
    static stream a, b, c;
    ponder_gen_request ra = request(prompt, n_prompt, 3, 11, &a);
    ra.max_tokens = 200;
    ra.ignore_eos = true;
    submit(g, &ra, &a);
    ponder_gen_request rb = request(prompt, n_prompt, 2, 12, &b);
    submit(g, &rb, &b); /* waits: 3 + 2 > 4 sequences */
    ponder_error err = {0};
    for (int i = 0; i < 20; i++)
        assert_int_equal(ponder_gen_step(g, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_gen_n_queued(g), 1);
    assert_true(ponder_context_n_free_cells(ponder_gen_context(g)) < free0);
    assert_int_equal(a.n_tokens[0], 20);
    ponder_gen_cancel(g, a.id);
    assert_true(ponder_gen_done(g, a.id));
    for (int i = 0; i < 3; i++)
        assert_int_equal(a.finish[i], PONDER_FINISH_CANCELLED);
    check_stream(g, &a, 3);
    assert_int_equal(ponder_context_n_free_cells(ponder_gen_context(g)), free0);
    for (int s = 0; s < 4; s++)
        assert_int_equal(ponder_context_seq_len(ponder_gen_context(g), s), 0);
    ponder_gen_cancel(g, a.id); /* again: no-op */
    assert_int_equal(a.n_after_finish, 0);
    /* the waiting request gets the sequences next step, and cancelling a queued one works */
    ponder_gen_request rc = request(prompt, n_prompt, 1, 13, &c);
    submit(g, &rc, &c);
    assert_int_equal(ponder_gen_step(g, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_gen_n_queued(g), 0);
    ponder_gen_cancel(g, b.id);
    check_stream(g, &b, 2);
    assert_int_equal(b.finish[0], PONDER_FINISH_CANCELLED);
    run_all(g);
    check_stream(g, &c, 1);
    assert_int_equal(ponder_context_n_free_cells(ponder_gen_context(g)), free0);
    ponder_gen_free(g);
    free(prompt);
}

static ponder_gen *g_cancel_gen;

/* Cancels its own request from inside the callback after 5 tokens of choice 1. */
static void on_event_cancel(const ponder_gen_event *ev, void *user)
{
    stream *s = user;
    on_event(ev, user);
    if (ev->choice == 1 && s->n_tokens[1] == 5)
        ponder_gen_cancel(g_cancel_gen, ev->request_id);
}

static void test_cancel_inside_callback(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    ponder_gen *g = make_gen(3, N_CTX, PONDER_TYPE_F16);
    static stream s;
    ponder_gen_request r = request(prompt, n_prompt, 3, 21, &s);
    r.ignore_eos = true;
    r.on_event = on_event_cancel;
    g_cancel_gen = g;
    submit(g, &r, &s);
    run_all(g);
    check_stream(g, &s, 3);
    assert_int_equal(s.n_tokens[0], 5); /* choice 0 had its 5th token earlier in that step */
    assert_int_equal(s.n_tokens[1], 5);
    assert_int_equal(s.n_tokens[2], 4); /* choice 2 never got its 5th */
    for (int c = 0; c < 3; c++)
        assert_int_equal(s.finish[c], PONDER_FINISH_CANCELLED);
    ponder_gen_free(g);
    free(prompt);
}

static void test_queue_fifo(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("The dog", &n_prompt);
    ponder_gen *g = make_gen(2, N_CTX, PONDER_TYPE_F16);
    enum { N = 7 };
    static stream q[N], alone[N];
    ponder_gen_request r[N];
    g_event_counter = 0;
    for (int i = 0; i < N; i++) {
        r[i] = request(prompt, n_prompt, 1, 300 + (uint64_t)i, &q[i]);
        r[i].max_tokens = 10 + 7 * (i % 3);
        submit(g, &r[i], &q[i]);
    }
    assert_int_equal(ponder_gen_n_queued(g), N);
    ponder_error err = {0};
    assert_int_equal(ponder_gen_step(g, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_gen_n_queued(g), N - 2);
    run_all(g);
    for (int i = 0; i < N; i++) {
        check_stream(g, &q[i], 1);
        if (i > 0) /* admitted in submission order */
            assert_true(q[i].first_event_seq > q[i - 1].first_event_seq);
    }
    for (int i = 0; i < N; i++) {
        r[i].user = &alone[i];
        run_one(g, &r[i], &alone[i]);
        same_choice(&q[i], 0, &alone[i], 0);
    }
    ponder_gen_free(g);
    free(prompt);
}

/* A KV pool smaller than the sequences could fill: the longest choice ends ("length")
 * when a step does not fit, the others go on, token for token as with room to spare. */
static void test_cells_run_out(void **state)
{
    (void)state;
    const char *texts[3] = {"Once upon a time", "The cat", "One day, a little"};
    ponder_token *prompts[3];
    int32_t n_prompts[3];
    for (int i = 0; i < 3; i++)
        prompts[i] = encode(texts[i], &n_prompts[i]);
    static stream tight[3], roomy[3];
    ponder_gen_request r[3];
    ponder_gen *g = make_gen_cells(3, 128, PONDER_TYPE_F16, 160);
    const int32_t free0 = ponder_context_n_free_cells(ponder_gen_context(g));
    for (int i = 0; i < 3; i++) {
        r[i] = request(prompts[i], n_prompts[i], 1, 40 + (uint64_t)i, &tight[i]);
        r[i].max_tokens = 0;
        r[i].ignore_eos = true;
        submit(g, &r[i], &tight[i]);
    }
    run_all(g);
    int32_t n_short = 0;
    for (int i = 0; i < 3; i++) {
        check_stream(g, &tight[i], 1);
        assert_int_equal(tight[i].finish[0], PONDER_FINISH_LENGTH);
        n_short += tight[i].n_tokens[0] < 128 - n_prompts[i] + 1;
    }
    assert_true(n_short >= 1);
    assert_int_equal(ponder_context_n_free_cells(ponder_gen_context(g)), free0);
    ponder_gen_free(g);

    g = make_gen(3, 128, PONDER_TYPE_F16);
    for (int i = 0; i < 3; i++) {
        r[i].user = &roomy[i];
        run_one(g, &r[i], &roomy[i]);
        assert_int_equal(roomy[i].n_tokens[0], 128 - n_prompts[i] + 1);
        assert_true(tight[i].n_tokens[0] <= roomy[i].n_tokens[0]);
        assert_memory_equal(tight[i].tokens[0], roomy[i].tokens[0], (size_t)tight[i].n_tokens[0] * sizeof(ponder_token));
    }
    ponder_gen_free(g);
    for (int i = 0; i < 3; i++)
        free(prompts[i]);
}

/* Continuous batching: a long prompt is read in micro-batch chunks mixed into the steps
 * of a running request, which keeps its one token per step; neither output changes. */
static void test_long_prompt_interleaves(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    enum { N_LONG = 700 };
    ponder_token *lng = malloc(N_LONG * sizeof *lng);
    lng[0] = 1;
    for (int i = 1; i < N_LONG; i++)
        lng[i] = 3 + (i * 37) % 500;
    static stream a, b, a1, b1;
    ponder_gen *g = make_gen(3, 1024, PONDER_TYPE_F16);
    ponder_gen_request ra = request(prompt, n_prompt, 1, 8, &a);
    ra.max_tokens = 30;
    ra.ignore_eos = true;
    ponder_gen_request rb = request(lng, N_LONG, 2, 9, &b);
    rb.max_tokens = 10;
    rb.ignore_eos = true;
    submit(g, &ra, &a);
    ponder_error err = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(ponder_gen_step(g, NULL, &err), PONDER_OK);
    assert_int_equal(a.n_tokens[0], 5);
    submit(g, &rb, &b);
    ponder_gen_usage u;
    assert_int_equal(ponder_gen_step(g, NULL, &err), PONDER_OK);
    assert_int_equal(a.n_tokens[0], 6);
    assert_int_equal(ponder_gen_usage_of(g, b.id, &u, &err), PONDER_OK);
    assert_int_equal(u.prompt_tokens_evaluated, 512); /* one micro-batch of it */
    assert_int_equal(b.n_tokens[0], 0);
    assert_int_equal(ponder_gen_step(g, NULL, &err), PONDER_OK);
    assert_int_equal(a.n_tokens[0], 7);
    assert_int_equal(b.n_tokens[0], 1);
    assert_int_equal(b.n_tokens[1], 1);
    run_all(g);
    assert_int_equal(ponder_gen_usage_of(g, b.id, &u, &err), PONDER_OK);
    assert_int_equal(u.prompt_tokens_evaluated, N_LONG);
    check_stream(g, &a, 1);
    check_stream(g, &b, 2);
    ra.user = &a1;
    rb.user = &b1;
    run_one(g, &ra, &a1);
    run_one(g, &rb, &b1);
    same_choice(&a, 0, &a1, 0);
    same_choice(&b, 0, &b1, 0);
    same_choice(&b, 1, &b1, 1);
    ponder_gen_free(g);
    free(lng);
    free(prompt);
}

/* The same determinism on a quantized model with a byte-level BPE vocabulary (SmolLM
 * shapes, Q4_K_M): batch-invariant kernels for every weight type, multi-byte pieces. */
static void test_quantized_bpe_choices(void **state)
{
    (void)state;
    const char *path = tu_model_path("shared/models/synthetic/syn-tiny-smollm-Q4_K_M.gguf");
    if (!path)
        skip();
    ponder_error err = {0};
    ponder_model *m = NULL;
    ponder_gguf *gg = NULL;
    ponder_tokenizer *tok = NULL;
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_open(path, &gg, &err), PONDER_OK);
    assert_int_equal(ponder_tokenizer_create(gg, &tok, &err), PONDER_OK);
    ponder_token *prompt = NULL;
    size_t n_prompt = 0;
    const char *text = "The quick brown fox";
    assert_int_equal(ponder_tokenizer_encode(tok, text, strlen(text), true, false, &prompt, &n_prompt, &err),
                     PONDER_OK);
    ponder_gen_params p = ponder_gen_params_default();
    p.n_seq_max = 4;
    p.context.n_ctx = 128;
    ponder_gen *g = NULL;
    assert_int_equal(ponder_gen_create(m, tok, &p, &g, &err), PONDER_OK);
    static stream multi, single[4];
    ponder_gen_request r = request(prompt, (int32_t)n_prompt, 4, 2024, &multi);
    r.max_tokens = 24;
    r.ignore_eos = true;
    r.sampling.temp = 1.0f; /* random weights: a flat distribution, so choices differ */
    run_one(g, &r, &multi);
    for (int i = 0; i < 4; i++) {
        ponder_gen_request q = r;
        q.n_choices = 1;
        q.sampling.seed = 2024 + (uint64_t)i;
        q.user = &single[i];
        run_one(g, &q, &single[i]);
        same_choice(&multi, i, &single[i], 0);
    }
    assert_true(differ(&multi, 0, &multi, 1));
    ponder_gen_free(g);
    free(prompt);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(gg);
    ponder_model_free(m);
}

/* ---- (e) logprobs against a separate decode ---- */

static void test_logprobs(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    ponder_gen *g = make_gen(2, N_CTX, PONDER_TYPE_F32);
    static stream s;
    ponder_gen_request r = request(prompt, n_prompt, 2, 77, &s);
    r.max_tokens = 30;
    r.logprobs = true;
    r.top_logprobs = 5;
    r.seeds = (const uint64_t[]){77, 78};
    run_one(g, &r, &s);
    ponder_gen_request greedy = r;
    static stream gs;
    greedy.user = &gs;
    greedy.sampling.temp = 0.0f;
    greedy.n_choices = 1;
    run_one(g, &greedy, &gs);

    /* an independent decode of prompt + the sampled tokens, log-softmax in double */
    ponder_error err = {0};
    const int32_t n_vocab = ponder_model_hparams(M)->n_vocab;
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = N_CTX;
    cp.type_k = cp.type_v = PONDER_TYPE_F32;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(M, &cp, &ctx, &err), PONDER_OK);
    const stream *cases[3] = {&s, &s, &gs};
    const int choice[3] = {0, 1, 0};
    for (int t = 0; t < 3; t++) {
        const stream *x = cases[t];
        const int c = choice[t];
        ponder_gen_choice_result res;
        assert_int_equal(ponder_gen_result(g, x->id, c, &res, &err), PONDER_OK);
        ponder_context_reset(ctx);
        assert_int_equal(ponder_context_decode(ctx, prompt, n_prompt, NULL, &err), PONDER_OK);
        double sum = 0;
        for (int k = 0; k < x->n_tokens[c]; k++) {
            const float *l = ponder_context_logits(ctx);
            double mx = -INFINITY, z = 0;
            for (int v = 0; v < n_vocab; v++)
                mx = fmax(mx, l[v]);
            for (int v = 0; v < n_vocab; v++)
                z += exp((double)l[v] - mx);
            const double lse = mx + log(z);
            const ponder_token tok = x->tokens[c][k];
            const double want = (double)l[tok] - lse;
            assert_true(fabs(x->chosen[c][k] - want) < 1e-5);
            sum += want;
            if (k < 4) {
                assert_int_equal(x->n_top[c][k], 5);
                const ponder_gen_token_logprob *top = x->top[c][k];
                for (int j = 0; j < 5; j++) {
                    assert_true(fabs(top[j].logprob - ((double)l[top[j].token] - lse)) < 1e-5);
                    if (j > 0)
                        assert_true(top[j].logprob <= top[j - 1].logprob);
                }
                /* nothing outside the list beats its last entry */
                for (int v = 0; v < n_vocab; v++) {
                    bool listed = false;
                    for (int j = 0; j < 5; j++)
                        listed |= top[j].token == v;
                    if (!listed)
                        assert_true(l[v] <= l[top[4].token]);
                }
                if (t == 2)
                    assert_int_equal(top[0].token, tok); /* greedy: the chosen one is the best */
            }
            if (k + 1 < x->n_tokens[c])
                assert_int_equal(ponder_context_decode(ctx, &tok, 1, NULL, &err), PONDER_OK);
        }
        assert_true(fabs(res.sum_logprob - sum) < 1e-3);
    }
    ponder_context_free(ctx);
    ponder_gen_free(g);
    free(prompt);
}

/* ---- (f) usage: the prompt is run once for all choices ---- */

static void test_usage(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Lily and Ben went to the park. They", &n_prompt);
    ponder_gen *g = make_gen(4, N_CTX, PONDER_TYPE_F16);
    static stream s;
    ponder_gen_request r = request(prompt, n_prompt, 4, 5, &s);
    r.max_tokens = 25;
    run_one(g, &r, &s);
    ponder_error err = {0};
    ponder_gen_usage u;
    assert_int_equal(ponder_gen_usage_of(g, s.id, &u, &err), PONDER_OK);
    assert_int_equal(u.prompt_tokens, n_prompt);
    assert_int_equal(u.prompt_tokens_evaluated, n_prompt);
    int32_t total = 0;
    uint64_t flops = 0;
    for (int p = 0; p < n_prompt; p++)
        flops += ponder_model_flops_per_token(M, p);
    for (int c = 0; c < 4; c++) {
        total += s.n_tokens[c];
        /* every sampled token but the last was run, at positions n_prompt, ... */
        for (int k = 0; k + 1 < s.n_tokens[c]; k++)
            flops += ponder_model_flops_per_token(M, n_prompt + k);
    }
    assert_int_equal(u.completion_tokens, total);
    assert_true(u.flops == flops);
    ponder_gen_free(g);
    free(prompt);
}

/* ---- (g) presence/frequency penalties ---- */

static void test_penalties(void **state)
{
    (void)state;
    int32_t n_prompt;
    ponder_token *prompt = encode("Once upon a time", &n_prompt);
    ponder_gen *g = make_gen(1, N_CTX, PONDER_TYPE_F32);
    static stream plain, pen;
    ponder_gen_request r = request(prompt, n_prompt, 1, 1, &plain);
    r.sampling.temp = 0.0f;
    r.max_tokens = 60;
    run_one(g, &r, &plain);
    r.user = &pen;
    r.presence_penalty = 0.5f;
    r.frequency_penalty = 0.7f;
    run_one(g, &r, &pen);
    assert_true(differ(&plain, 0, &pen, 0));

    /* the penalised greedy run by hand: logits from a plain decode, minus OpenAI's
     * penalties over the generated tokens (all within the 64-token window) */
    ponder_error err = {0};
    const int32_t n_vocab = ponder_model_hparams(M)->n_vocab;
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = N_CTX;
    cp.type_k = cp.type_v = PONDER_TYPE_F32;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(M, &cp, &ctx, &err), PONDER_OK);
    assert_int_equal(ponder_context_decode(ctx, prompt, n_prompt, NULL, &err), PONDER_OK);
    int *count = calloc((size_t)n_vocab, sizeof *count);
    float *l = malloc((size_t)n_vocab * sizeof *l);
    for (int k = 0; k < pen.n_tokens[0]; k++) {
        memcpy(l, ponder_context_logits(ctx), (size_t)n_vocab * sizeof *l);
        for (int v = 0; v < n_vocab; v++)
            if (count[v])
                l[v] -= (float)count[v] * 0.7f + 0.5f;
        ponder_token tok = ponder_argmax(l, n_vocab);
        assert_int_equal(pen.tokens[0][k], tok);
        count[tok]++;
        if (ponder_tokenizer_is_eog(T, tok))
            break;
        assert_int_equal(ponder_context_decode(ctx, &tok, 1, NULL, &err), PONDER_OK);
    }
    free(count);
    free(l);
    ponder_context_free(ctx);
    ponder_gen_free(g);
    free(prompt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_helpers),
        cmocka_unit_test(test_choices_equal_separate_requests),
        cmocka_unit_test(test_concurrent_equal_alone),
        cmocka_unit_test(test_greedy_matches_golden),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cancel_frees_sequences),
        cmocka_unit_test(test_cancel_inside_callback),
        cmocka_unit_test(test_queue_fifo),
        cmocka_unit_test(test_cells_run_out),
        cmocka_unit_test(test_long_prompt_interleaves),
        cmocka_unit_test(test_quantized_bpe_choices),
        cmocka_unit_test(test_logprobs),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_penalties),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
