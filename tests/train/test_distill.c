/*
 * test_distill.c — the distillation library (distill.h) without running a model: which
 * chains a vote keeps (majority kept; minority, unanswered and truncated chains dropped;
 * min-agreement; duplicates), the kept-chain JSONL as the trainer reads it (loss on the
 * completion only), the question loader (labels optional and only reported), the
 * vocabulary check, and a fine-tuning step on a fresh optimizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ponder/distill.h"
#include "ponder/gguf.h"
#include "testutil.h"

#define VOCAB_REL "models/stories260K/stories260K.gguf"
#define OTHER_VOCAB_REL "models/synthetic/syn-tiny-qwen2-Q8_0.gguf" /* gpt2 vocabulary, 49152 tokens */

/* ---- hand-made vote results ---- */

typedef struct fake_chain {
    const char *text, *answer;
    ponder_finish finish;
} fake_chain;

/* A result as ponder_think_run leaves it: samples, and the vote over their answers. */
static ponder_think_result *fake_result(const fake_chain *c, int32_t n)
{
    ponder_think_result *r = calloc(1, sizeof *r);
    r->samples = calloc((size_t)n, sizeof *r->samples);
    r->votes = calloc((size_t)n, sizeof *r->votes);
    const char *answers[16];
    assert_true(n <= 16);
    for (int32_t i = 0; i < n; i++) {
        ponder_think_sample *s = &r->samples[i];
        s->text = strdup(c[i].text);
        s->text_len = strlen(c[i].text);
        snprintf(s->answer, sizeof s->answer, "%s", c[i].answer);
        s->finish = c[i].finish;
        answers[i] = s->answer;
    }
    r->n_samples = n;
    r->strategy = (ponder_strategy){ .kind = PONDER_THINK_SC, .n_samples = n };
    r->n_votes = ponder_vote_tally(answers, n, r->votes, &r->n_answered);
    if (r->n_votes > 0) {
        r->answer = r->votes[0].answer;
        r->agreement = (double)r->votes[0].count / r->n_answered;
    }
    return r;
}

static const fake_chain CHAINS[] = {
    { "3 + 4 = 7.\n7 * 2 = 14.\nThe answer is 14.", "14", PONDER_FINISH_STOP },      /* 0 majority */
    { "3 + 4 = 8.\n8 * 2 = 16.\nThe answer is 16.", "16", PONDER_FINISH_STOP },      /* 1 minority */
    { "3 + 4 = 7.\n7 * 2 = 14.\nThe answer is 14.", "14", PONDER_FINISH_STOP },      /* 2 majority, same text as 0 */
    { "3 + 4 = 7.\n7 *", "", PONDER_FINISH_LENGTH },                                 /* 3 unanswered */
    { "3 + 4 = 7.\n7 * 2 = 14.\nThe answer is 14. 3 +", "14", PONDER_FINISH_LENGTH }, /* 4 majority, truncated */
    { "3 + 4 = 7.\n2 * 7 = 14.\nThe answer is 14.", "14", PONDER_FINISH_STOP },      /* 5 majority, other text */
};
#define N_CHAINS ((int32_t)(sizeof CHAINS / sizeof CHAINS[0]))

static void test_select_majority(void **state)
{
    (void)state;
    ponder_think_result *r = fake_result(CHAINS, N_CHAINS);
    assert_string_equal(r->answer, "14");
    assert_int_equal(r->n_answered, 5);
    assert_true(r->agreement > 0.79 && r->agreement < 0.81); /* 4 of 5 answered */
    int32_t keep[N_CHAINS];
    ponder_distill_select_params p = { 0 };
    assert_int_equal(ponder_distill_select(r, &p, keep), 3);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 2);
    assert_int_equal(keep[2], 5);
    /* NULL params: the same as all zero */
    assert_int_equal(ponder_distill_select(r, NULL, keep), 3);
    /* duplicates collapse to the first copy */
    p.unique = true;
    assert_int_equal(ponder_distill_select(r, &p, keep), 2);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 5);
    ponder_think_result_free(r);
}

static void test_select_min_agreement(void **state)
{
    (void)state;
    ponder_think_result *r = fake_result(CHAINS, N_CHAINS);
    int32_t keep[N_CHAINS];
    ponder_distill_select_params p = { .min_agreement = 0.8 };
    assert_int_equal(ponder_distill_select(r, &p, keep), 3); /* agreement 0.8 >= 0.8 */
    p.min_agreement = 0.81;
    assert_int_equal(ponder_distill_select(r, &p, keep), 0);
    ponder_think_result_free(r);

    /* a 2-2 tie: the vote goes to the earlier answer, agreement 0.5 */
    const fake_chain tie[] = {
        { "The answer is 5.", "5", PONDER_FINISH_STOP },
        { "The answer is 6.", "6", PONDER_FINISH_STOP },
        { "The answer is 6.", "6", PONDER_FINISH_STOP },
        { "The answer is 5.", "5", PONDER_FINISH_STOP },
    };
    r = fake_result(tie, 4);
    assert_string_equal(r->answer, "5");
    p.min_agreement = 0.5;
    assert_int_equal(ponder_distill_select(r, &p, keep), 2);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 3);
    p.min_agreement = 0.51;
    assert_int_equal(ponder_distill_select(r, &p, keep), 0);
    ponder_think_result_free(r);
}

static void test_select_unanswered(void **state)
{
    (void)state;
    const fake_chain none[] = {
        { "I do not know", "", PONDER_FINISH_STOP },
        { "3 + 4 =", "", PONDER_FINISH_LENGTH },
    };
    ponder_think_result *r = fake_result(none, 2);
    assert_null(r->answer);
    int32_t keep[2] = { -1, -1 };
    assert_int_equal(ponder_distill_select(r, NULL, keep), 0);
    assert_int_equal(keep[0], -1);
    ponder_think_result_free(r);
    assert_int_equal(ponder_distill_select(NULL, NULL, keep), 0);
}

/* ---- the kept-chain set, through the trainer's data reader ---- */

static void test_set_jsonl_trains_on_completion(void **state)
{
    (void)state;
    ponder_error err;
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared(VOCAB_REL), &g, &err), PONDER_OK);
    assert_int_equal(ponder_tokenizer_create(g, &tok, &err), PONDER_OK);
    ponder_distill_set *s = NULL;
    assert_int_equal(ponder_distill_set_create(&s, &err), PONDER_OK);
    char *prompt = ponder_distill_prompt("Ann has 3 coins. She gets 4 more. How many coins does Ann have?");
    assert_non_null(prompt);
    assert_int_equal(prompt[strlen(prompt) - 1], '\n');
    const char *chain = "3 + 4 = 7.\nThe answer is 7.";
    assert_int_equal(ponder_distill_set_add(s, prompt, chain, strlen(chain), "7", 0.75, &err), PONDER_OK);
    assert_int_equal(ponder_distill_set_add(s, prompt, chain, 10, NULL, 1.0, &err), PONDER_OK); /* a prefix */
    assert_int_equal(ponder_distill_set_count(s), 2);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(ponder_distill_set_jsonl(s, &buf, &len, &err), PONDER_OK);
    assert_int_equal(strlen(buf), len);
    assert_non_null(strstr(buf, "\"completion\":\"3 + 4 = 7.\\nThe answer is 7.\",\"answer\":\"7\",\"agreement\":0.75"));
    assert_non_null(strstr(buf, "\"completion\":\"3 + 4 = 7.\",\"answer\":null"));

    ponder_train_data *d = NULL;
    assert_int_equal(ponder_train_data_from_text(buf, len, "kept", tok, 256, &d, &err), PONDER_OK);
    assert_int_equal(ponder_train_data_n_seqs(d), 2);
    /* the loss covers the completion and EOS, never the prompt */
    ponder_token *ptoks = NULL, *ctoks = NULL;
    size_t np = 0, nc = 0;
    assert_int_equal(ponder_tokenizer_encode(tok, prompt, strlen(prompt), true, false, &ptoks, &np, &err), PONDER_OK);
    ponder_train_seq q = ponder_train_data_seq(d, 0);
    int32_t first = -1, n_loss = 0;
    for (int32_t i = 0; i < q.n; i++)
        if (q.loss_mask[i]) {
            if (first < 0)
                first = i;
            n_loss++;
        }
    assert_true(first >= (int32_t)np - 1); /* at most the boundary token is shared */
    assert_int_equal(q.tokens[q.n - 1], ponder_tokenizer_eos(tok));
    char *joint = malloc(strlen(prompt) + strlen(chain) + 1);
    strcpy(joint, prompt);
    strcat(joint, chain);
    assert_int_equal(ponder_tokenizer_encode(tok, joint, strlen(joint), true, false, &ctoks, &nc, &err), PONDER_OK);
    assert_int_equal(q.n, (int32_t)nc + 1);                    /* + EOS */
    assert_int_equal(n_loss, q.n - first);
    assert_true(n_loss >= (int32_t)(nc - np) + 1);

    /* one step of fine-tuning on a fresh optimizer moves the loss */
    ponder_train_params tp = ponder_train_params_default();
    tp.shape = (ponder_train_shape){ .n_vocab = ponder_tokenizer_n_vocab(tok), .n_embd = 16, .n_layer = 1, .n_head = 2,
                                     .n_head_kv = 1, .n_ff = 32, .n_ctx = 256, .norm_eps = 1e-5f, .rope_base = 1e4f };
    tp.lr = 1e-2f, tp.warmup_steps = 0, tp.total_steps = 4;
    ponder_trainer *t = NULL;
    assert_int_equal(ponder_trainer_create(&tp, &t, &err), PONDER_OK);
    double l0 = 0, l1 = 0, l2 = 0;
    assert_int_equal(ponder_distill_train_step(t, d, 7, 2, 1, &l0, &err), PONDER_OK);
    ponder_status st2 = ponder_distill_train_step(t, d, 7, 2, 2, &l1, &err);
    if (st2 != PONDER_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ponder_trainer_step_count(t), 2);
    assert_true(l0 > 0 && l1 > 0 && l1 < l0);
    ponder_trainer_reset_optimizer(t);
    assert_int_equal(ponder_trainer_step_count(t), 0);
    assert_int_equal(ponder_distill_train_step(t, d, 7, 2, 1, &l2, &err), PONDER_OK);
    assert_true(l2 < l0);
    assert_int_equal(ponder_distill_train_step(t, d, 7, 0, 1, NULL, &err), PONDER_ERR_INVALID_ARG);
    ponder_trainer_free(t);

    free(joint);
    free(ptoks);
    free(ctoks);
    ponder_train_data_free(d);
    free(buf);
    free(prompt);
    ponder_distill_set_free(s);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(g);
}

static void test_set_rejects_bad_utf8(void **state)
{
    (void)state;
    ponder_error err;
    ponder_distill_set *s = NULL;
    assert_int_equal(ponder_distill_set_create(&s, &err), PONDER_OK);
    assert_int_equal(ponder_distill_set_add(s, "q\n", "ok", 2, "1", 1.0, &err), PONDER_OK);
    assert_int_equal(ponder_distill_set_add(s, "q\n", "bad \xff", 5, "1", 1.0, &err), PONDER_OK);
    char *buf = (char *)"unchanged";
    size_t len = 7;
    assert_int_equal(ponder_distill_set_jsonl(s, &buf, &len, &err), PONDER_ERR_FORMAT);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err.msg, "chain 1"));
    ponder_distill_set_free(s);
    ponder_distill_set_free(NULL);
}

/* ---- questions ---- */

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/ponder-distill-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_questions_load(void **state)
{
    (void)state;
    ponder_error err;
    char *p = write_tmp("{\"question\":\"q one\",\"answer\":5,\"solution\":\"ignored\"}\n"
                        "{\"question\":\"q two\"}\n"
                        "   \n"
                        "{\"question\":\"q three\",\"answer\":\"1,234\"}\n");
    ponder_distill_questions *q = NULL;
    assert_int_equal(ponder_distill_questions_load(p, 0, &q, &err), PONDER_OK);
    assert_int_equal(ponder_distill_questions_count(q), 3);
    assert_string_equal(ponder_distill_questions_text(q, 1), "q two");
    assert_string_equal(ponder_distill_questions_gold(q, 0), "5");
    assert_null(ponder_distill_questions_gold(q, 1));
    assert_string_equal(ponder_distill_questions_gold(q, 2), "1234");
    assert_null(ponder_distill_questions_text(q, 3));
    ponder_distill_questions_free(q);
    assert_int_equal(ponder_distill_questions_load(p, 2, &q, &err), PONDER_OK);
    assert_int_equal(ponder_distill_questions_count(q), 2);
    ponder_distill_questions_free(q);
    unlink(p);
    free(p);

    p = write_tmp("{\"question\":\"fine\"}\n{\"prompt\":\"no question\"}\n");
    assert_int_equal(ponder_distill_questions_load(p, 0, &q, &err), PONDER_ERR_FORMAT);
    assert_null(q);
    assert_non_null(strstr(err.msg, ":2:"));
    unlink(p);
    free(p);
    p = write_tmp("\n\n");
    assert_int_equal(ponder_distill_questions_load(p, 0, &q, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no questions"));
    unlink(p);
    free(p);
    assert_int_equal(ponder_distill_questions_load("/nonexistent/q.jsonl", 0, &q, &err), PONDER_ERR_IO);
}

/* ---- vocabulary ---- */

static ponder_tokenizer *tok_of(const char *path, ponder_gguf **g)
{
    ponder_error err;
    ponder_tokenizer *tok = NULL;
    if (ponder_gguf_open(path, g, &err) != PONDER_OK || ponder_tokenizer_create(*g, &tok, &err) != PONDER_OK)
        fail_msg("%s: %s", path, err.msg);
    return tok;
}

static void test_vocab_check(void **state)
{
    (void)state;
    ponder_error err;
    ponder_gguf *ga = NULL, *gb = NULL, *gc = NULL;
    ponder_tokenizer *a = tok_of(tu_shared(VOCAB_REL), &ga);
    ponder_tokenizer *b = tok_of(PONDER_REPO_MODELS "/arith-s1.gguf", &gb); /* its vocabulary came from a */
    assert_int_equal(ponder_distill_check_vocab(a, b, &err), PONDER_OK);
    assert_int_equal(ponder_distill_check_vocab(b, b, &err), PONDER_OK);
    if (!tu_shared_exists(OTHER_VOCAB_REL)) {
        fprintf(stderr, "skip: %s missing\n", OTHER_VOCAB_REL);
    } else {
        ponder_tokenizer *c = tok_of(tu_shared(OTHER_VOCAB_REL), &gc);
        assert_int_equal(ponder_distill_check_vocab(b, c, &err), PONDER_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, "512"));
        assert_non_null(strstr(err.msg, "49152"));
        ponder_tokenizer_free(c);
    }
    /* same size, one token spelled differently: a copy of a's metadata with token 300 renamed */
    const ponder_gguf_value *toks = ponder_gguf_get(ga, "tokenizer.ggml.tokens");
    assert_non_null(toks);
    assert_int_equal(toks->type, PONDER_GGUF_ARRAY);
    const uint64_t n = toks->v.arr.n;
    ponder_gguf_value *elems = malloc(n * sizeof *elems);
    memcpy(elems, toks->v.arr.elems, n * sizeof *elems);
    elems[300].v.str = (ponder_gguf_str){ .data = "zzqzz", .len = 5 };
    ponder_gguf_value changed = *toks;
    changed.v.arr.elems = elems;
    ponder_gguf_writer *w = NULL;
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_copy_kv(w, ga, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set(w, "tokenizer.ggml.tokens", &changed, &err), PONDER_OK);
    char path[] = "/tmp/ponder-distill-vocab-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    free(elems);
    ponder_gguf *gd = NULL;
    ponder_tokenizer *d = tok_of(path, &gd);
    assert_int_equal(ponder_tokenizer_n_vocab(d), ponder_tokenizer_n_vocab(a));
    assert_int_equal(ponder_distill_check_vocab(a, d, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "token 300"));
    assert_non_null(strstr(err.msg, "zzqzz"));
    ponder_tokenizer_free(d);
    ponder_gguf_free(gd);
    unlink(path);

    assert_int_equal(ponder_distill_check_vocab(a, NULL, &err), PONDER_ERR_INVALID_ARG);
    ponder_tokenizer_free(a);
    ponder_tokenizer_free(b);
    ponder_gguf_free(ga);
    ponder_gguf_free(gb);
    ponder_gguf_free(gc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_majority),
        cmocka_unit_test(test_select_min_agreement),
        cmocka_unit_test(test_select_unanswered),
        cmocka_unit_test(test_set_jsonl_trains_on_completion),
        cmocka_unit_test(test_set_rejects_bad_utf8),
        cmocka_unit_test(test_questions_load),
        cmocka_unit_test(test_vocab_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
