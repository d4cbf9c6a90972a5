/*
 * test_grammar_gen.c — grammar-constrained generation through gen on random-weight
 * synthetic models (label "grammar"), which unconstrained emit garbage: for every schema
 * of data/schemas.jsonl, every choice — sampled (n = 2, two seeds) and greedy — parses as
 * JSON and validates against its schema (jsv.c), finishing "stop" or, cut by max_tokens,
 * still complete; streamed events add up to the final text; speculative decoding with a
 * draft gives the same greedy tokens as without it; n choices give what separate
 * requests with their seeds give.
 */
#include "jsv.h"
#include "ponder/gen.h"
#include "ponder/gguf.h"
#include "ponder/grammar.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "testmodel.h"

#define MAX_TOKENS 160 /* small on purpose: texts must complete within the budget */

static ponder_gen *make_gen(const loaded *t, const ponder_model *draft, int32_t n_seq)
{
    ponder_error err = { 0 };
    ponder_gen_params p = ponder_gen_params_default();
    p.n_seq_max = n_seq;
    p.context.n_ctx = 512;
    p.draft = draft;
    ponder_gen *g = NULL;
    if (ponder_gen_create(t->m, t->tok, &p, &g, &err) != PONDER_OK)
        fail_msg("gen_create: %s", err.msg);
    return g;
}

typedef struct streamed {
    char text[4][16384];
    size_t len[4];
} streamed;

static void on_event(const ponder_gen_event *ev, void *user)
{
    streamed *s = user;
    if (ev->choice < 4 && s->len[ev->choice] + ev->text_len < sizeof s->text[0]) {
        memcpy(s->text[ev->choice] + s->len[ev->choice], ev->text, ev->text_len);
        s->len[ev->choice] += ev->text_len;
    }
}

typedef struct run_out {
    char *text[4];
    ponder_token *tokens[4];
    int32_t n_tokens[4];
    ponder_finish finish[4];
} run_out;

static void run_free(run_out *o, int n)
{
    for (int i = 0; i < n; i++) {
        free(o->text[i]);
        free(o->tokens[i]);
    }
}

/* One request: n choices with the grammar, seeds seed + i (temp <= 0: greedy). */
static run_out run(ponder_gen *g, const loaded *t, const ponder_grammar *gr, int n, float temp, uint64_t seed,
                   int32_t max_tokens)
{
    ponder_error err = { 0 };
    const char *prompt = "Answer in JSON:";
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    assert_int_equal(ponder_tokenizer_encode(t->tok, prompt, strlen(prompt), true, false, &ids, &n_ids, &err),
                     PONDER_OK);
    streamed *s = calloc(1, sizeof *s);
    ponder_gen_request q = { 0 };
    q.prompt = ids;
    q.n_prompt = (int32_t)n_ids;
    q.n_choices = n;
    q.max_tokens = max_tokens;
    q.sampling = ponder_sampler_params_default();
    q.sampling.temp = temp;
    q.sampling.top_k = 0;
    q.sampling.top_p = 1.0f;
    q.sampling.min_p = 0.0f;
    q.sampling.seed = seed;
    q.grammar = gr;
    q.on_event = on_event;
    q.user = s;
    int32_t id = 0;
    if (ponder_gen_run(g, &q, &id, &err) != PONDER_OK)
        fail_msg("gen_run: %s", err.msg);
    run_out o = { 0 };
    for (int i = 0; i < n; i++) {
        ponder_gen_choice_result res;
        assert_int_equal(ponder_gen_result(g, id, i, &res, &err), PONDER_OK);
        o.text[i] = strndup(res.text, res.text_len);
        o.tokens[i] = malloc(((size_t)res.n_tokens + 1) * sizeof *o.tokens[i]);
        memcpy(o.tokens[i], res.tokens, (size_t)res.n_tokens * sizeof *res.tokens);
        o.n_tokens[i] = res.n_tokens;
        o.finish[i] = res.finish;
        if (s->len[i] != res.text_len || memcmp(s->text[i], res.text, res.text_len) != 0)
            fail_msg("choice %d: the streamed text differs from the result", i);
    }
    ponder_gen_release(g, id);
    free(s);
    free(ids);
    return o;
}

static void check_valid(const char *name, json_t *schema, const run_out *o, int n, int *n_stop, int *n_length)
{
    for (int i = 0; i < n; i++) {
        json_error_t je;
        json_t *inst = json_loads(o->text[i], JSON_DECODE_ANY, &je);
        if (!inst)
            fail_msg("%s choice %d (%s): not JSON (%s): %s", name, i, ponder_finish_name(o->finish[i]), je.text,
                     o->text[i]);
        char why[512];
        if (!jsv_validate(schema, inst, why, sizeof why))
            fail_msg("%s choice %d: invalid (%s): %s", name, i, why, o->text[i]);
        json_decref(inst);
        assert_true(o->finish[i] == PONDER_FINISH_STOP || o->finish[i] == PONDER_FINISH_LENGTH);
        *n_stop += o->finish[i] == PONDER_FINISH_STOP;
        *n_length += o->finish[i] == PONDER_FINISH_LENGTH;
    }
}

static void test_schemas(void **state)
{
    (void)state;
    loaded t;
    if (!load(tu_model_path("shared/models/synthetic/syn-tiny-smollm-Q4_K_M.gguf"), &t))
        skip();
    ponder_gen *g = make_gen(&t, NULL, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/schemas.jsonl", GRAMMAR_DATA);
    size_t len;
    char *all = tu_read_file(path, &len);
    assert_non_null(all);
    int n_schemas = 0, n_stop = 0, n_length = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *schema = json_object_get(c, "schema");
        char *stext = json_dumps(schema, JSON_COMPACT);
        ponder_grammar *gr = NULL;
        ponder_error err;
        if (ponder_grammar_from_json_schema(stext, strlen(stext), &gr, &err) != PONDER_OK)
            fail_msg("%s: %s", name, err.msg);
        run_out o = run(g, &t, gr, 2, 1.0f, 1000 + (uint64_t)n_schemas, MAX_TOKENS);
        check_valid(name, schema, &o, 2, &n_stop, &n_length);
        print_message("%-20s %s %.100s\n", name, ponder_finish_name(o.finish[0]), o.text[0]);
        run_free(&o, 2);
        o = run(g, &t, gr, 1, 0.0f, 7, MAX_TOKENS);
        check_valid(name, schema, &o, 1, &n_stop, &n_length);
        run_free(&o, 1);
        ponder_grammar_free(gr);
        free(stext);
        json_decref(c);
        n_schemas++;
    }
    print_message("%d schemas, %d outputs valid (%d stop, %d cut at %d tokens and complete)\n", n_schemas,
                  n_stop + n_length, n_stop, n_length, MAX_TOKENS);
    assert_true(n_schemas >= 30);
    free(all);
    ponder_gen_free(g);
    unload(&t);
}

/* n choices = separate requests with their seeds; greedy with a draft = greedy alone. */
static void test_choices_and_draft(void **state)
{
    (void)state;
    loaded t, d;
    if (!load(tu_model_path("shared/models/synthetic/syn-tiny-smollm-Q4_K_M.gguf"), &t))
        skip();
    if (!load(tu_model_path("shared/models/synthetic/syn-tiny-smollm-F16.gguf"), &d)) {
        unload(&t);
        skip();
    }
    const char *schema = "{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 12}, "
                         "\"tags\": {\"type\": \"array\", \"items\": {\"enum\": [\"a\", \"bc\", \"def\"]}, "
                         "\"maxItems\": 3}, \"n\": {\"type\": \"integer\", \"minimum\": -50, \"maximum\": 50}}, "
                         "\"required\": [\"name\", \"tags\", \"n\"]}";
    ponder_grammar *gr = NULL;
    ponder_error err;
    assert_int_equal(ponder_grammar_from_json_schema(schema, strlen(schema), &gr, &err), PONDER_OK);
    ponder_gen *g = make_gen(&t, NULL, 3);
    run_out all = run(g, &t, gr, 3, 0.9f, 42, 120);
    for (int i = 0; i < 3; i++) {
        run_out one = run(g, &t, gr, 1, 0.9f, 42 + (uint64_t)i, 120);
        assert_string_equal(one.text[0], all.text[i]);
        run_free(&one, 1);
    }
    run_free(&all, 3);
    run_out plain = run(g, &t, gr, 1, 0.0f, 1, 120);
    ponder_gen_free(g);

    ponder_gen *gs = make_gen(&t, d.m, 1);
    run_out spec = run(gs, &t, gr, 1, 0.0f, 1, 120);
    assert_int_equal(spec.n_tokens[0], plain.n_tokens[0]);
    assert_memory_equal(spec.tokens[0], plain.tokens[0], (size_t)plain.n_tokens[0] * sizeof(ponder_token));
    print_message("greedy with a draft: %d tokens, identical: %s\n", spec.n_tokens[0], spec.text[0]);
    /* sampled with a draft: still valid */
    run_out sampled = run(gs, &t, gr, 1, 1.0f, 5, 120);
    json_t *sj = json_loads(schema, 0, NULL), *inst = json_loads(sampled.text[0], JSON_DECODE_ANY, NULL);
    char why[256];
    assert_non_null(inst);
    assert_true(jsv_validate(sj, inst, why, sizeof why));
    json_decref(sj);
    json_decref(inst);
    run_free(&sampled, 1);
    run_free(&spec, 1);
    run_free(&plain, 1);
    ponder_gen_free(gs);
    ponder_grammar_free(gr);
    unload(&d);
    unload(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas),
        cmocka_unit_test(test_choices_and_draft),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
