/*
 * test_train_cli.c — `ponder data arith` and `ponder train` end to end through the built
 * binary ($PONDER_BIN): the JSONL contract of the generator (fields, types, the final
 * "The answer is N." line, determinism, disjoint splits over thousands of items, usage
 * errors), and a tiny training run whose --json log parses and whose checkpoint
 * `ponder run` loads and continues.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "testutil.h"

#define VOCAB_REL "models/stories260K/stories260K.gguf"
#define SPLIT_COUNT 3000 /* difficulty 1 has a few thousand distinct questions */

/* Runs a shell command line; returns its stdout (malloc'ed) and exit status. */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; (got = fread(buf + len, 1, cap - len - 1, p)) > 0;) {
        len += got;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    const int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static const char *bin(void)
{
    const char *b = getenv("PONDER_BIN");
    if (!b || !*b)
        fail_msg("PONDER_BIN is not set (run through ctest)");
    return b;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Checks every line and returns the questions (n_out of them, malloc'ed copies). */
static char **check_lines(char *out, size_t *n_out)
{
    size_t n = 0, cap = 1024;
    char **qs = malloc(cap * sizeof *qs);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            fail_msg("not JSON: %s", line);
        json_t *q = json_object_get(o, "question"), *s = json_object_get(o, "solution"), *a = json_object_get(o, "answer");
        assert_true(json_is_string(q) && json_is_string(s) && json_is_integer(a));
        assert_int_equal(json_object_size(o), 3);
        char want[64];
        snprintf(want, sizeof want, "The answer is %lld.", (long long)json_integer_value(a));
        const char *sol = json_string_value(s);
        const char *last = strrchr(sol, '\n');
        assert_string_equal(last ? last + 1 : sol, want);
        if (n == cap)
            qs = realloc(qs, (cap *= 2) * sizeof *qs);
        qs[n++] = strdup(json_string_value(q));
        json_decref(o);
    }
    *n_out = n;
    return qs;
}

static void test_data_arith_contract(void **state)
{
    (void)state;
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "'%s' data arith --difficulty 1 --count %d --seed 5 --split train", bin(), SPLIT_COUNT);
    char *train = run(cmd, &st);
    assert_int_equal(st, 0);
    char *again = run(cmd, &st);
    assert_string_equal(train, again); /* same arguments, same bytes */
    free(again);
    snprintf(cmd, sizeof cmd, "'%s' data arith --difficulty 1 --count %d --seed 6 --split test", bin(), SPLIT_COUNT);
    char *test = run(cmd, &st);
    assert_int_equal(st, 0);
    size_t n_train = 0, n_test = 0;
    char **a = check_lines(train, &n_train), **b = check_lines(test, &n_test);
    assert_int_equal(n_train, SPLIT_COUNT);
    assert_int_equal(n_test, SPLIT_COUNT);
    qsort(a, n_train, sizeof *a, cmp_str);
    qsort(b, n_test, sizeof *b, cmp_str);
    size_t i = 0, j = 0, shared = 0;
    while (i < n_train && j < n_test) {
        const int c = strcmp(a[i], b[j]);
        shared += c == 0;
        if (c <= 0)
            i++;
        else
            j++;
    }
    assert_int_equal(shared, 0);
    for (size_t k = 0; k < n_train; k++)
        free(a[k]);
    for (size_t k = 0; k < n_test; k++)
        free(b[k]);
    free(a), free(b), free(train), free(test);

    /* higher difficulty: more steps, larger numbers */
    snprintf(cmd, sizeof cmd, "'%s' data arith --difficulty 4 --count 20 --seed 1", bin());
    char *d4 = run(cmd, &st);
    assert_int_equal(st, 0);
    size_t n4 = 0;
    char **q4 = check_lines(d4, &n4);
    assert_int_equal(n4, 20);
    for (size_t k = 0; k < n4; k++)
        free(q4[k]);
    free(q4), free(d4);
    /* usage errors exit 2 */
    const char *bad[] = {"--difficulty 0 --count 1", "--difficulty 6 --count 1", "--count 3",
                         "--difficulty 1 --count 1 --split dev", "--difficulty 1 --count x"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(cmd, sizeof cmd, "'%s' data arith %s 2>/dev/null", bin(), bad[k]);
        free(run(cmd, &st));
        assert_int_equal(st, 2);
    }
}

static void test_train_smoke(void **state)
{
    (void)state;
    char dir[] = "/tmp/ponder-train-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "'%s' data arith --difficulty 1 --count 16 --seed 3 > %s/d.jsonl", bin(), dir);
    free(run(cmd, &st));
    assert_int_equal(st, 0);
    snprintf(cmd, sizeof cmd,
             "'%s' train --data %s/d.jsonl --eval-data %s/d.jsonl -o %s/m.gguf --vocab-from '%s' --dim 32 "
             "--layers 1 --heads 2 --kv-heads 1 --ff 48 --ctx 96 --steps 4 --batch 2 --warmup 1 --log-every 2 "
             "--eval-every 4 --json",
             bin(), dir, dir, dir, tu_shared(VOCAB_REL));
    char *out = run(cmd, &st);
    assert_int_equal(st, 0);
    int n_step = 0, n_eval = 0, n_start = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            fail_msg("--json printed a non-JSON line: %s", line);
        const char *ev = json_string_value(json_object_get(o, "event"));
        assert_non_null(ev);
        if (strcmp(ev, "start") == 0) {
            n_start++;
            assert_true(json_integer_value(json_object_get(o, "n_params")) > 0);
        } else if (strcmp(ev, "step") == 0) {
            n_step++;
            assert_true(json_number_value(json_object_get(o, "loss")) > 0);
            assert_true(json_number_value(json_object_get(o, "tokens_per_s")) > 0);
            assert_true(json_number_value(json_object_get(o, "mfu")) > 0);
        } else if (strcmp(ev, "eval") == 0) {
            n_eval++;
            assert_true(json_number_value(json_object_get(o, "eval_loss")) > 0);
        }
        json_decref(o);
    }
    free(out);
    assert_int_equal(n_start, 1);
    assert_int_equal(n_step, 2);
    assert_int_equal(n_eval, 1);
    /* the checkpoint runs in the engine */
    snprintf(cmd, sizeof cmd, "'%s' run -m %s/m.gguf -p 'Tom has 3 apples.' -n 4 --temp 0 2>/dev/null", bin(), dir);
    free(run(cmd, &st));
    assert_int_equal(st, 0);
    /* resume continues at the saved step */
    snprintf(cmd, sizeof cmd,
             "'%s' train --data %s/d.jsonl -o %s/m.gguf --resume %s/m.gguf --vocab-from '%s' --steps 6 --batch 2 "
             "--warmup 1 --log-every 1 --json",
             bin(), dir, dir, dir, tu_shared(VOCAB_REL));
    out = run(cmd, &st);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "\"step\":5,"));
    assert_null(strstr(out, "\"step\":4,"));
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    free(run(cmd, &st));
}

/* --vocab bytes: any UTF-8 text is one token per byte (a space is U+2581's one token), the
 * checkpoint carries the 260-token vocabulary, and a resume takes it from the checkpoint. */
static void test_train_byte_vocab(void **state)
{
    (void)state;
    char dir[] = "/tmp/ponder-train-bytes-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[2048], path[256];
    int st;
    static const char text[] = "Grüße aus Zürich: 3 × 4 = 12 ✓ 🙂";
    snprintf(path, sizeof path, "%s/t.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 20; i++)
        fprintf(f, "%s\n", text);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s' train --vocab bytes --data %s -o %s/b.gguf --dim 32 --layers 1 --heads 2 --kv-heads 1 --ff 48 "
             "--ctx 64 --steps 3 --batch 2 --warmup 1 --json > /dev/null",
             bin(), path, dir);
    free(run(cmd, &st));
    assert_int_equal(st, 0);
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m %s/b.gguf -p '%s' --ids", bin(), dir, text);
    char *out = run(cmd, &st);
    assert_int_equal(st, 0);
    json_t *ids = json_loads(out, 0, NULL);
    assert_true(json_is_array(ids));
    assert_int_equal(json_array_size(ids), 1 + strlen(text)); /* BOS + one per byte */
    assert_int_equal(json_integer_value(json_array_get(ids, 0)), 1);
    assert_int_equal(json_integer_value(json_array_get(ids, 1)), 3 + 'G');
    assert_int_equal(json_integer_value(json_array_get(ids, 8)), 259); /* the space after "Grüße" (7 bytes) */
    json_decref(ids);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' info -m %s/b.gguf --json", bin(), dir);
    out = run(cmd, &st);
    assert_int_equal(st, 0);
    json_t *info = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(info, "n_vocab")), 260);
    json_decref(info);
    free(out);
    /* resuming needs no vocabulary flag: the checkpoint's own is used */
    snprintf(cmd, sizeof cmd, "'%s' train --data %s -o %s/b.gguf --resume %s/b.gguf --steps 4 --batch 2 --json > /dev/null",
             bin(), path, dir, dir);
    free(run(cmd, &st));
    assert_int_equal(st, 0);
    snprintf(cmd, sizeof cmd, "'%s' run -m %s/b.gguf -p 'Grüße' -n 4 --temp 0 > /dev/null 2>&1", bin(), dir);
    free(run(cmd, &st));
    assert_int_equal(st, 0);
    /* one vocabulary source only; an unknown --vocab kind is a usage error */
    snprintf(cmd, sizeof cmd, "'%s' train --vocab bytes --vocab-from x.gguf --data %s -o %s/c.gguf 2>/dev/null", bin(),
             path, dir);
    free(run(cmd, &st));
    assert_int_equal(st, 2);
    snprintf(cmd, sizeof cmd, "'%s' train --vocab words --data %s -o %s/c.gguf 2>/dev/null", bin(), path, dir);
    free(run(cmd, &st));
    assert_int_equal(st, 2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    free(run(cmd, &st));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_arith_contract),
        cmocka_unit_test(test_train_smoke),
        cmocka_unit_test(test_train_byte_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
