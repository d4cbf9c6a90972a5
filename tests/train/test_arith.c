/*
 * test_arith.c — the arithmetic task: deterministic by seed, solutions that compute the
 * answer, train and test splits that never share a question (checked over many items),
 * and JSONL loading with the loss on the completion only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/train.h"
#include "testutil.h"

#define N_SPLIT_CHECK 20000 /* items per split and difficulty in the disjointness check */

/* Re-computes the solution's lines and checks they end in the stated answer. */
static void check_solution(const ponder_arith_item *it, int difficulty)
{
    const char *s = it->solution;
    long value = -1;
    int lines = 0;
    for (;;) {
        long a, b, c;
        char op;
        int used = 0;
        if (sscanf(s, "%ld %c %ld = %ld.%n", &a, &op, &b, &c, &used) == 4 && used > 0) {
            if (value >= 0)
                assert_int_equal(a, value); /* each line continues from the last result */
            assert_int_equal(c, op == '+' ? a + b : op == '-' ? a - b : a * b);
            assert_true(op == '+' || op == '-' || (op == '*' && difficulty >= 3));
            assert_true(c >= 0 && c <= 999);
            value = c;
            lines++;
            s += used;
            assert_true(*s == '\n');
            s++;
            continue;
        }
        long ans;
        assert_int_equal(sscanf(s, "The answer is %ld.", &ans), 1);
        assert_int_equal(ans, value);
        assert_int_equal(ans, it->answer);
        break;
    }
    assert_int_equal(lines, difficulty);
}

static void test_deterministic_and_correct(void **state)
{
    (void)state;
    ponder_arith_item a, b;
    ponder_error err;
    for (int d = 1; d <= PONDER_ARITH_MAX_DIFFICULTY; d++)
        for (uint64_t i = 0; i < 300; i++) {
            assert_int_equal(ponder_arith_generate(d, 7, PONDER_ARITH_TRAIN, i, &a, &err), PONDER_OK);
            assert_int_equal(ponder_arith_generate(d, 7, PONDER_ARITH_TRAIN, i, &b, &err), PONDER_OK);
            assert_memory_equal(&a, &b, sizeof a);
            check_solution(&a, d);
            assert_int_equal(ponder_arith_split_of(a.question), PONDER_ARITH_TRAIN);
        }
    /* another seed gives other items */
    int same = 0;
    for (uint64_t i = 0; i < 50; i++) {
        ponder_arith_generate(3, 1, PONDER_ARITH_TRAIN, i, &a, NULL);
        ponder_arith_generate(3, 2, PONDER_ARITH_TRAIN, i, &b, NULL);
        same += strcmp(a.question, b.question) == 0;
    }
    assert_true(same < 5);
    assert_int_equal(ponder_arith_generate(0, 1, PONDER_ARITH_TRAIN, 0, &a, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_arith_generate(6, 1, PONDER_ARITH_TEST, 0, &a, &err), PONDER_ERR_INVALID_ARG);
}

/* The value of an expression of +, - and * over non-negative integers ("20 * 4 + 8 * 4"),
 * products first; *end is set after it. */
static long eval_expr(const char *e, const char **end)
{
    long sum = 0, term = strtol(e, (char **)&e, 10);
    char pending = '+';
    for (;;) {
        char op;
        long x;
        int used = 0;
        if (sscanf(e, " %c %ld%n", &op, &x, &used) != 2 || (op != '+' && op != '-' && op != '*'))
            break;
        e += used;
        if (op == '*') {
            term *= x;
            continue;
        }
        sum = pending == '+' ? sum + term : sum - term;
        pending = op;
        term = x;
    }
    *end = e;
    return pending == '+' ? sum + term : sum - term;
}

/* Varied paths: the same question and answer, every "=" between equal values, each line
 * starting from the last result (as written or swapped), all three paths used, the
 * same seed giving the same text, and a solution not in the generator's format refused. */
static void test_vary_paths(void **state)
{
    (void)state;
    int swapped = 0, split = 0, as_written = 0;
    for (int d = 1; d <= PONDER_ARITH_MAX_DIFFICULTY; d++)
        for (uint64_t i = 0; i < 200; i++) {
            ponder_arith_item it, varied, again;
            ponder_error err;
            assert_int_equal(ponder_arith_generate(d, 5, PONDER_ARITH_TRAIN, i, &it, &err), PONDER_OK);
            varied = it;
            assert_int_equal(ponder_arith_vary_paths(&varied, 1000 + i, &err), PONDER_OK);
            again = it;
            assert_int_equal(ponder_arith_vary_paths(&again, 1000 + i, &err), PONDER_OK);
            assert_string_equal(varied.solution, again.solution);
            assert_string_equal(varied.question, it.question);
            assert_int_equal(varied.answer, it.answer);
            const char *s = varied.solution, *o = it.solution;
            for (int line = 0; line < d; line++) {
                long a, b, c, first;
                char op;
                assert_int_equal(sscanf(o, "%ld %c %ld = %ld.", &a, &op, &b, &c), 4);
                o = strchr(o, '\n') + 1;
                const char *e = s;
                first = strtol(e, NULL, 10);
                int terms = 0;
                for (;;) {
                    assert_int_equal(eval_expr(e, &e), c);
                    terms++;
                    if (strncmp(e, " = ", 3) != 0)
                        break;
                    e += 3;
                }
                assert_true(*e == '.' && e[1] == '\n');
                if (terms > 2)
                    split++;
                else if (first == a)
                    as_written++;
                else {
                    assert_true(op == '+' || op == '*');
                    assert_int_equal(first, b);
                    swapped++;
                }
                s = e + 2;
            }
            assert_string_equal(s, o); /* the answer line */
        }
    assert_true(swapped > 100 && split > 100 && as_written > 100);
    ponder_arith_item bad = {.question = "q", .solution = "3 / 4 = 1.\nThe answer is 1.", .answer = 1};
    ponder_error err;
    assert_int_equal(ponder_arith_vary_paths(&bad, 1, &err), PONDER_ERR_INVALID_ARG);
    snprintf(bad.solution, sizeof bad.solution, "3 + 4 = 7.\nso 7");
    assert_int_equal(ponder_arith_vary_paths(&bad, 1, &err), PONDER_ERR_INVALID_ARG);
    assert_string_equal(bad.solution, "3 + 4 = 7.\nso 7"); /* unchanged on error */
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Train and test questions of several seeds never coincide, even at difficulty 1 where
 * the problem space is small enough that each split repeats its own items. */
static void test_splits_disjoint(void **state)
{
    (void)state;
    for (int d = 1; d <= 2; d++) {
        const size_t n = 2 * N_SPLIT_CHECK;
        char **q = malloc(n * sizeof *q);
        ponder_arith_item it;
        for (size_t i = 0; i < n; i++) {
            const ponder_arith_split sp = i < N_SPLIT_CHECK ? PONDER_ARITH_TRAIN : PONDER_ARITH_TEST;
            assert_int_equal(ponder_arith_generate(d, 1 + i % 3, sp, i, &it, NULL), PONDER_OK);
            /* tag with the split so sorting brings equal questions of both splits together */
            const size_t l = strlen(it.question);
            q[i] = malloc(l + 2);
            memcpy(q[i], it.question, l + 1);
            q[i][l] = sp == PONDER_ARITH_TRAIN ? '\x01' : '\x02';
            q[i][l + 1] = '\0';
        }
        qsort(q, n, sizeof *q, cmp_str);
        size_t shared = 0, distinct_test = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            const size_t l = strlen(q[i]) - 1;
            if (strlen(q[i + 1]) - 1 == l && memcmp(q[i], q[i + 1], l) == 0 && q[i][l] != q[i + 1][l])
                shared++;
        }
        for (size_t i = 0; i < n; i++)
            distinct_test += q[i][strlen(q[i]) - 1] == '\x02' && (i == 0 || strcmp(q[i], q[i - 1]) != 0);
        for (size_t i = 0; i < n; i++)
            free(q[i]);
        free(q);
        assert_int_equal(shared, 0);
        assert_true(distinct_test > 100); /* the test split is not degenerate */
    }
}

static void test_jsonl_loss_mask(void **state)
{
    (void)state;
    ponder_error err;
    ponder_gguf *g = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared("models/stories260K/stories260K.gguf"), &g, &err), PONDER_OK);
    ponder_tokenizer *tok = NULL;
    assert_int_equal(ponder_tokenizer_create(g, &tok, &err), PONDER_OK);
    const char *text = "{\"question\":\"Tom has 3 apples.\",\"solution\":\"The answer is 3.\",\"answer\":3}\n"
                       "\n"
                       "{\"prompt\":\"Q\",\"completion\":\" A\"}\n";
    ponder_train_data *d = NULL;
    assert_int_equal(ponder_train_data_from_text(text, strlen(text), "t.jsonl", tok, 64, &d, &err), PONDER_OK);
    assert_int_equal(ponder_train_data_n_seqs(d), 2);
    ponder_train_seq s = ponder_train_data_seq(d, 0);
    ponder_token *pt = NULL;
    size_t np = 0;
    assert_int_equal(ponder_tokenizer_encode(tok, "Tom has 3 apples.\n", 18, true, false, &pt, &np, &err),
                     PONDER_OK);
    assert_int_equal(s.tokens[0], ponder_tokenizer_bos(tok));
    assert_int_equal(s.tokens[s.n - 1], ponder_tokenizer_eos(tok));
    for (int i = 0; i < s.n; i++) /* no loss on the prompt, loss on all the rest */
        assert_int_equal(s.loss_mask[i], (size_t)i >= np);
    free(pt);
    ponder_train_data_free(d);
    const char *bad = "{\"question\": 3}\n";
    assert_int_equal(ponder_train_data_from_text(bad, strlen(bad), "bad.jsonl", tok, 64, &d, &err),
                     PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "bad.jsonl:1"));
    ponder_tokenizer_free(tok);
    ponder_gguf_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_correct),
        cmocka_unit_test(test_splits_disjoint),
        cmocka_unit_test(test_vary_paths),
        cmocka_unit_test(test_jsonl_loss_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
