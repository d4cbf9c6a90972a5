/*
 * test_think_tasks.c — the eval loaders on the real files in shared/data (first items'
 * questions and golds as the READMEs describe them), a hand-made arith file, bad files,
 * and log-likelihood choice scoring on stories260K checked against one full decode.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ponder/think.h"
#include "testutil.h"

static ponder_eval_items *load(const char *task, int32_t limit)
{
    ponder_error err = { 0 };
    ponder_eval_items *it = NULL;
    const char *rel = ponder_task_default_data(task);
    assert_non_null(rel);
    if (ponder_eval_load(task, tu_shared(rel), limit, &it, &err) != PONDER_OK)
        fail_msg("%s: %s", task, err.msg);
    return it;
}

static void test_generative_sets(void **state)
{
    (void)state;
    ponder_eval_items *it = load("gsm8k", 3);
    assert_int_equal(it->n, 3);
    assert_int_equal(it->kind, PONDER_TASK_GENERATIVE);
    assert_string_equal(it->items[0].gold, "18"); /* "... #### 18" */
    assert_true(strncmp(it->items[0].question, "Janet", 5) == 0);
    char *p = ponder_eval_prompt(&it->items[0], PONDER_THINK_COT);
    assert_true(strncmp(p, "Question: Janet", 15) == 0);
    assert_true(strcmp(p + strlen(p) - 8, "\nAnswer:") == 0);
    free(p);
    p = ponder_eval_prompt(&it->items[0], PONDER_THINK_DIRECT);
    assert_true(strcmp(p + strlen(p) - 22, "\nAnswer: The answer is") == 0);
    free(p);
    ponder_eval_items_free(it);

    /* few-shot exemplars from the train split: annotations dropped, "#### N" as "The answer is N." */
    ponder_error err = { 0 };
    ponder_eval_items *train = NULL;
    assert_int_equal(ponder_eval_load("gsm8k", tu_shared("data/gsm8k/train.jsonl"), 2, &train, &err), PONDER_OK);
    char *shots = NULL;
    assert_int_equal(ponder_eval_exemplars(train, 2, &shots, &err), PONDER_OK);
    assert_true(strncmp(shots, "Question: Natalia sold clips", 28) == 0);
    assert_non_null(strstr(shots, "\nAnswer: Natalia sold 48/2 = 24 clips in May.\n"));
    assert_non_null(strstr(shots, "The answer is 72.\n\nQuestion: "));
    assert_null(strstr(shots, "<<"));
    assert_null(strstr(shots, "####"));
    assert_true(strcmp(shots + strlen(shots) - 2, "\n\n") == 0);
    free(shots);
    assert_int_equal(ponder_eval_exemplars(train, 3, &shots, &err), PONDER_ERR_RANGE);
    ponder_eval_items_free(train);

    it = load("svamp", 0);
    assert_int_equal(it->n, 1000);
    assert_string_equal(it->items[0].gold, "51");
    assert_string_equal(it->items[0].question, "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on "
                                               "each pack How much do you have to pay to buy each pack?");
    ponder_eval_items_free(it);

    it = load("addsub", 0);
    assert_int_equal(it->n, 395);
    assert_string_equal(it->items[0].gold, "43"); /* a string "43" in the file */
    ponder_eval_items_free(it);
    it = load("multiarith", 0);
    assert_int_equal(it->n, 600);
    assert_string_equal(it->items[0].gold, "39");
    ponder_eval_items_free(it);
    it = load("singleeq", 0);
    assert_int_equal(it->n, 508);
    assert_string_equal(it->items[0].gold, "43");
    ponder_eval_items_free(it);
}

static void test_choice_sets(void **state)
{
    (void)state;
    ponder_eval_items *it = load("arc-easy", 2);
    assert_int_equal(it->kind, PONDER_TASK_CHOICE);
    assert_int_equal(it->items[0].n_choices, 4);
    assert_int_equal(it->items[0].gold_index, 0);
    assert_string_equal(it->items[0].gold, "A");
    assert_string_equal(it->items[0].choices[0], " Sunlight is the source of energy for nearly all ecosystems.");
    assert_true(strcmp(it->items[0].question + strlen(it->items[0].question) - 8, "\nAnswer:") == 0);
    assert_int_equal(it->items[1].gold_index, 1);
    ponder_eval_items_free(it);

    it = load("arc-challenge", 0);
    assert_int_equal(it->n, 1172);
    ponder_eval_items_free(it);

    it = load("hellaswag", 2);
    assert_int_equal(it->n, 2);
    assert_string_equal(it->items[0].question, "Roof shingle removal: A man is sitting on a roof. he");
    assert_int_equal(it->items[0].gold_index, 3);
    assert_string_equal(it->items[0].choices[3], " starts pulling up roofing on a roof.");
    ponder_eval_items_free(it);

    it = load("mmlu", 2);
    assert_int_equal(it->n, 2);
    assert_string_equal(it->items[0].subject, "abstract algebra");
    assert_int_equal(it->items[0].gold_index, 1);
    assert_string_equal(it->items[0].choices[2], " C");
    assert_non_null(strstr(it->items[0].question, "about abstract algebra.\n\nFind the degree"));
    assert_non_null(strstr(it->items[0].question, "\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:"));
    ponder_eval_items_free(it);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/ponder-think-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_arith_and_bad_files(void **state)
{
    (void)state;
    char *path = write_tmp("{\"question\": \"What is 2 + 3?\", \"solution\": \"2 + 3 = 5.\", \"answer\": 5}\n"
                           "\n"
                           "{\"question\": \"What is 7 - 9?\", \"solution\": \"7 - 9 = -2.\", \"answer\": \"-2\"}\n");
    ponder_eval_items *it = NULL;
    ponder_error err = { 0 };
    assert_int_equal(ponder_eval_load("arith", path, 0, &it, &err), PONDER_OK);
    assert_int_equal(it->n, 2);
    assert_string_equal(it->items[1].gold, "-2");
    assert_string_equal(it->items[0].solution, "2 + 3 = 5.");
    /* the generator's own format, the one ponder train learns: question, newline, solution */
    char *p = ponder_eval_prompt(&it->items[0], PONDER_THINK_COT);
    assert_string_equal(p, "What is 2 + 3?\n");
    free(p);
    p = ponder_eval_prompt(&it->items[0], PONDER_THINK_DIRECT);
    assert_string_equal(p, "What is 2 + 3?\nThe answer is");
    free(p);
    char *shots = NULL;
    assert_int_equal(ponder_eval_exemplars(it, 1, &shots, &err), PONDER_OK);
    assert_string_equal(shots, "What is 2 + 3?\n2 + 3 = 5.\n\n");
    free(shots);
    ponder_eval_items_free(it);
    unlink(path);
    free(path);

    path = write_tmp("{\"question\": \"ok\", \"answer\": 1}\n{\"question\": 3}\n");
    assert_int_equal(ponder_eval_load("arith", path, 0, &it, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, ":2:")); /* names the line */
    assert_null(it);
    unlink(path);
    free(path);

    path = write_tmp("not json\n");
    assert_int_equal(ponder_eval_load("gsm8k", path, 0, &it, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, ":1:"));
    unlink(path);
    free(path);

    path = write_tmp("ctx\n7\na\nb\nc\nd\n");
    assert_int_equal(ponder_eval_load("hellaswag", path, 0, &it, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "0..3"));
    unlink(path);
    free(path);

    assert_int_equal(ponder_eval_load("nosuchtask", "/dev/null", 0, &it, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "gsm8k"));
    assert_int_equal(ponder_eval_load("gsm8k", "/nonexistent/x.jsonl", 0, &it, &err), PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.jsonl"));
    assert_null(ponder_task_default_data("arith"));
}

static double logsoftmax(const float *row, int32_t n, int32_t t)
{
    double mx = row[0], s = 0.0;
    for (int32_t i = 1; i < n; i++)
        mx = row[i] > mx ? row[i] : mx;
    for (int32_t i = 0; i < n; i++)
        s += exp(row[i] - mx);
    return row[t] - mx - log(s);
}

static void test_score_choices(void **state)
{
    (void)state;
    ponder_error err = { 0 };
    ponder_model *m = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_model_load(tu_shared("models/stories260K/stories260K.gguf"), NULL, &m, &err), PONDER_OK);
    assert_int_equal(ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err), PONDER_OK);
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 128;
    cp.type_k = cp.type_v = PONDER_TYPE_F32;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);

    const char *context = "Once upon a time, there was a little girl named Lily. She";
    const char *conts[] = { " liked to play outside.", " xylophone quantum zebra", " was" };
    ponder_choice_scores sc;
    assert_int_equal(ponder_think_score_choices(ctx, m, tok, context, conts, 3, &sc, &err), PONDER_OK);
    /* a fluent continuation beats gibberish for the TinyStories model */
    assert_true(sc.sum_logprob[0] > sc.sum_logprob[1]);
    for (int c = 0; c < 3; c++)
        assert_true(sc.sum_logprob[c] < 0.0 && isfinite(sc.sum_logprob[c]));
    assert_int_equal(sc.n_bytes[2], 4);

    /* the same sums from one decode of context + continuation with every row's logits */
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab;
    ponder_token *ci = NULL;
    size_t n_ci = 0;
    assert_int_equal(ponder_tokenizer_encode(tok, context, strlen(context), true, false, &ci, &n_ci, &err), PONDER_OK);
    uint64_t evaluated = 0;
    size_t shared = SIZE_MAX;
    for (int c = 0; c < 3; c++) {
        char joined[256];
        snprintf(joined, sizeof joined, "%s%s", context, conts[c]);
        ponder_token *fi = NULL;
        size_t n_fi = 0;
        assert_int_equal(ponder_tokenizer_encode(tok, joined, strlen(joined), true, false, &fi, &n_fi, &err), PONDER_OK);
        size_t start = 0;
        while (start < n_ci && start < n_fi && fi[start] == ci[start])
            start++;
        assert_int_equal(sc.n_tokens[c], (int32_t)(n_fi - start));
        float *rows = malloc(n_fi * (size_t)n_vocab * sizeof *rows);
        ponder_context_reset(ctx);
        assert_int_equal(ponder_context_decode(ctx, fi, (int32_t)n_fi, rows, &err), PONDER_OK);
        double want = 0.0;
        for (size_t j = start; j < n_fi; j++)
            want += logsoftmax(rows + (j - 1) * (size_t)n_vocab, n_vocab, fi[j]);
        assert_true(fabs(want - sc.sum_logprob[c]) < 1e-3);
        evaluated += n_fi - 1; /* minus the shared prefix counted once, below */
        shared = start < shared ? start : shared;
        free(rows);
        free(fi);
    }
    /* the shared prefix ran once, not once per choice */
    assert_int_equal(sc.tokens_evaluated, evaluated - 2 * shared);
    assert_true(sc.flops > 0);
    free(ci);
    ponder_choice_scores_free(&sc);

    /* an empty continuation is an error, not a crash */
    const char *empty[] = { "" };
    assert_int_equal(ponder_think_score_choices(ctx, m, tok, context, empty, 1, &sc, &err), PONDER_ERR_INVALID_ARG);
    ponder_context_free(ctx);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generative_sets),
        cmocka_unit_test(test_choice_sets),
        cmocka_unit_test(test_arith_and_bad_files),
        cmocka_unit_test(test_score_choices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
