/*
 * test_distill_cli.c — `ponder distill` end to end through the built binary ($PONDER_BIN):
 * arith-s1 teaches a tiny freshly trained student on a handful of questions; the --json
 * summary has every field and its counts are consistent (kept <= answered <= questions x
 * samples, the kept-chain file has one line per kept chain, the fine-tune saw them all);
 * the output GGUF loads and generates; labels in the question file change nothing that is
 * kept; a student with another vocabulary and bad flags are refused.
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
#include <jansson.h>

#include "testutil.h"

#define VOCAB_REL "models/stories260K/stories260K.gguf"
#define OTHER_VOCAB_REL "models/synthetic/syn-tiny-qwen2-Q8_0.gguf"
#define TEACHER PONDER_REPO_MODELS "/arith-s1.gguf"
#define N_QUESTIONS 6
#define N_SAMPLES 4
#define N_HELD 8

typedef struct fixture {
    char dir[64];
    char q[128], q_unlabeled[128], held[128], student[128];
} fixture;

static void write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/ponder-distill-cli-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->q, sizeof fx->q, "%s/q.jsonl", fx->dir);
    snprintf(fx->q_unlabeled, sizeof fx->q_unlabeled, "%s/q-unlabeled.jsonl", fx->dir);
    snprintf(fx->held, sizeof fx->held, "%s/held.jsonl", fx->dir);
    snprintf(fx->student, sizeof fx->student, "%s/student.gguf", fx->dir);
    char n[16], nh[16];
    snprintf(n, sizeof n, "%d", N_QUESTIONS);
    snprintf(nh, sizeof nh, "%d", N_HELD);
    tu_cli_result r = TU_RUN_CLI(NULL, "data", "arith", "--difficulty", "2", "--count", n, "--seed", "3");
    if (r.status != 0)
        return -1;
    write_text(fx->q, r.out, r.out_len);
    /* the same questions with nothing but the question */
    json_t *arr = json_array();
    for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        json_array_append_new(arr, json_pack("{s:O}", "question", json_object_get(o, "question")));
        json_decref(o);
    }
    FILE *f = fopen(fx->q_unlabeled, "w");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char *s = json_dumps(json_array_get(arr, i), JSON_COMPACT);
        fprintf(f, "%s\n", s);
        free(s);
    }
    fclose(f);
    json_decref(arr);
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "data", "arith", "--difficulty", "1", "--count", nh, "--seed", "4", "--split", "test");
    if (r.status != 0)
        return -1;
    write_text(fx->held, r.out, r.out_len);
    tu_cli_result_free(&r);
    /* a tiny student in the teacher's vocabulary, barely trained */
    r = TU_RUN_CLI(NULL, "train", "--data", fx->held, "-o", fx->student, "--vocab-from", tu_shared(VOCAB_REL), "--dim",
                   "32", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--ff", "64", "--ctx", "192", "--steps", "2",
                   "--batch", "2", "--seed", "5");
    if (r.status != 0) {
        fprintf(stderr, "train: %s\n", r.err);
        return -1;
    }
    tu_cli_result_free(&r);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
    return 0;
}

static json_t *get(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        fail_msg("summary has no \"%s\"", key);
    return v;
}

static json_int_t get_int(json_t *o, const char *key)
{
    json_t *v = get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* Runs a distillation and returns its parsed summary. */
static json_t *distill(const fixture *fx, const char *questions, const char *out, const char *chains)
{
    tu_cli_result r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", questions,
                                 "--eval-data", fx->held, "-o", out, "--strategy", "sc:4", "--steps", "3", "--batch", "2",
                                 "-n", "64", "--keep-chains", chains, "--json");
    if (r.status != 0)
        fail_msg("distill exited %d: %s", r.status, r.err);
    /* no progress line when stderr is not a terminal; at most the regression warning */
    assert_true(r.err[0] == '\0' || strncmp(r.err, "ponder: warning: the student got worse", 38) == 0);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    if (!j)
        fail_msg("not one JSON object: %s (%s)", r.out, je.text);
    tu_cli_result_free(&r);
    return j;
}

static size_t count_lines(const char *path, char **text)
{
    size_t len = 0;
    *text = tu_read_file(path, &len);
    assert_non_null(*text);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (*text)[i] == '\n';
    return n;
}

static void test_distill_end_to_end(void **state)
{
    fixture *fx = *state;
    char out[128], chains[128], out2[128], chains2[128];
    snprintf(out, sizeof out, "%s/out.gguf", fx->dir);
    snprintf(chains, sizeof chains, "%s/kept.jsonl", fx->dir);
    snprintf(out2, sizeof out2, "%s/out2.gguf", fx->dir);
    snprintf(chains2, sizeof chains2, "%s/kept2.jsonl", fx->dir);
    json_t *j = distill(fx, fx->q, out, chains);

    assert_string_equal(json_string_value(get(j, "strategy")), "sc:4");
    const json_int_t q = get_int(j, "questions"), samples = get_int(j, "samples"), answered = get_int(j, "answered"),
                     kept = get_int(j, "kept"), qk = get_int(j, "questions_kept"), qv = get_int(j, "questions_voted");
    assert_int_equal(q, N_QUESTIONS);
    assert_int_equal(samples, N_QUESTIONS * N_SAMPLES);
    assert_true(answered <= samples);
    assert_true(kept >= 1 && kept <= answered);
    assert_true(qk >= 1 && qk <= qv && qv <= q);
    assert_true(kept <= qk * N_SAMPLES);
    const double agree = json_real_value(get(j, "mean_agreement"));
    assert_true(agree > 0.0 && agree <= 1.0);
    /* labels were present: reported, and within range */
    assert_int_equal(get_int(j, "labeled"), N_QUESTIONS);
    const double va = json_real_value(get(j, "teacher_vote_accuracy")), ka = json_real_value(get(j, "kept_accuracy"));
    assert_true(va >= 0 && va <= 1 && ka >= 0 && ka <= 1);

    json_t *train = get(j, "train");
    assert_int_equal(get_int(train, "steps"), 3);
    assert_int_equal(get_int(train, "sequences") + get_int(train, "skipped"), kept);
    assert_true(json_real_value(get(train, "final_loss")) > 0);

    json_t *ev = get(j, "eval"), *before = get(ev, "before"), *after = get(ev, "after");
    assert_int_equal(get_int(ev, "n"), N_HELD);
    json_t *grp[] = { before, after };
    for (int k = 0; k < 2; k++) {
        const json_int_t c = get_int(grp[k], "correct");
        assert_true(c >= 0 && c <= N_HELD);
        const double acc = json_real_value(get(grp[k], "accuracy"));
        assert_true(acc > (double)c / N_HELD - 1e-9 && acc < (double)c / N_HELD + 1e-9);
        json_t *ci = get(grp[k], "ci95");
        assert_int_equal(json_array_size(ci), 2);
        assert_true(json_real_value(json_array_get(ci, 0)) <= acc && acc <= json_real_value(json_array_get(ci, 1)));
    }
    json_t *bd = get(get(ev, "by_difficulty"), "1"); /* held-out items are difficulty 1: one solution line */
    assert_int_equal(get_int(bd, "n"), N_HELD);
    assert_int_equal(get_int(bd, "before"), get_int(before, "correct"));
    assert_int_equal(get_int(bd, "after"), get_int(after, "correct"));

    /* the kept chains: one line each, in the trainer's prompt/completion form, answers as voted */
    char *text = NULL;
    assert_int_equal(count_lines(chains, &text), (size_t)kept);
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        const char *p = json_string_value(json_object_get(o, "prompt")), *c = json_string_value(json_object_get(o, "completion"));
        const char *a = json_string_value(json_object_get(o, "answer"));
        assert_true(p && c && a);
        assert_int_equal(p[strlen(p) - 1], '\n');
        char want[96];
        snprintf(want, sizeof want, "The answer is %s", a);
        assert_non_null(strstr(c, want));
        json_decref(o);
    }
    free(text);

    /* the output is a model the engine loads and runs */
    tu_cli_result r = TU_RUN_CLI(NULL, "run", "-m", out, "-p", "Ann has 3 coins.\n", "-n", "4", "--temp", "0");
    assert_int_equal(r.status, 0);
    tu_cli_result_free(&r);

    /* without the labels: the same chains are kept, the report just has no label numbers */
    json_t *j2 = distill(fx, fx->q_unlabeled, out2, chains2);
    assert_int_equal(get_int(j2, "kept"), kept);
    assert_int_equal(get_int(j2, "labeled"), 0);
    assert_true(json_is_null(get(j2, "teacher_vote_accuracy")));
    assert_true(json_is_null(get(j2, "kept_accuracy")));
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    t1 = tu_read_file(chains, &l1);
    t2 = tu_read_file(chains2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(t1, t2, l1);
    assert_int_equal(get_int(get(get(j2, "eval"), "after"), "correct"), get_int(after, "correct"));
    free(t1);
    free(t2);
    json_decref(j2);
    json_decref(j);
}

/* A fine-tune that ruins the student (arith-s1, right on every difficulty-1 item, at a
 * learning rate of 0.5) is written, but reported on stderr and as eval.regressed. */
static void test_distill_regression_warned(void **state)
{
    fixture *fx = *state;
    char out[128];
    snprintf(out, sizeof out, "%s/ruined.gguf", fx->dir);
    tu_cli_result r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", TEACHER, "--data", fx->q,
                                 "--eval-data", fx->held, "-o", out, "--strategy", "sc:2", "--steps", "4", "--batch",
                                 "2", "--lr", "0.5", "-n", "48", "--json");
    if (r.status != 0)
        fail_msg("distill exited %d: %s", r.status, r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    json_t *ev = get(j, "eval");
    const json_int_t b = get_int(get(ev, "before"), "correct"), a = get_int(get(ev, "after"), "correct");
    assert_true(a < b);
    assert_true(json_is_true(get(ev, "regressed")));
    assert_non_null(strstr(r.err, "warning: the student got worse on the held-out items"));
    assert_non_null(strstr(r.err, "--lr"));
    json_decref(j);
    tu_cli_result_free(&r);
}

static void test_distill_refusals(void **state)
{
    fixture *fx = *state;
    char out[128];
    snprintf(out, sizeof out, "%s/refused.gguf", fx->dir);
    if (tu_shared_exists(OTHER_VOCAB_REL)) {
        tu_cli_result r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", tu_shared(OTHER_VOCAB_REL),
                                     "--data", fx->q, "--eval-data", fx->held, "-o", out);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "vocabularies differ"));
        assert_int_equal(access(out, F_OK), -1); /* refused before anything was written */
        tu_cli_result_free(&r);
    }
    tu_cli_result r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", fx->q,
                                 "--eval-data", fx->held);
    assert_int_equal(r.status, 2); /* no -o */
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", fx->q, "--eval-data",
                   fx->held, "-o", fx->student);
    assert_int_equal(r.status, 2); /* would overwrite the student */
    assert_non_null(strstr(r.err, "student itself"));
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", fx->q, "--eval-data",
                   fx->held, "-o", out, "--strategy", "bon:4");
    assert_int_equal(r.status, 2);
    tu_cli_result_free(&r);
    r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", fx->q, "--eval-data",
                   fx->held, "-o", out, "--min-agreement", "1.5");
    assert_int_equal(r.status, 2);
    tu_cli_result_free(&r);
    /* held-out data without answers cannot be scored */
    r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", fx->q, "--eval-data",
                   fx->q_unlabeled, "-o", out);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "q-unlabeled.jsonl:1"));
    tu_cli_result_free(&r);
    /* one token per chain: no chain ends with an answer, so nothing is kept and nothing written */
    r = TU_RUN_CLI(NULL, "distill", "--teacher", TEACHER, "--student", fx->student, "--data", fx->q, "--eval-data",
                   fx->held, "-o", out, "--strategy", "sc:2", "-n", "1", "--steps", "1");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "kept no chain"));
    assert_int_equal(access(out, F_OK), -1);
    tu_cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distill_end_to_end),
        cmocka_unit_test(test_distill_regression_warned),
        cmocka_unit_test(test_distill_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
