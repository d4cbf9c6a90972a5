/*
 * test_think_cli.c — the strategy contracts of the `ponder` binary ($PONDER_BIN) on
 * stories260K: `run --strategy S --json` (one object: answer, strategy, samples, votes,
 * agreement, usage with the prompt evaluated once, timings) and `eval --json` (the last
 * stdout line: task, strategy, n, accuracy, ci95, mean_tokens, mean_flops, mean_ms), the
 * JSONL log, --sweep's CSV and SVG, and the usage errors. Accuracy itself is near zero for
 * this model; the shapes and counts are what is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "ponder/think.h"
#include "testutil.h"

typedef tu_cli_result result;

static result run(const char *const *args)
{
    result r = tu_run_cli(NULL, args);
    if (r.status < 0)
        fail_msg("ponder %s did not run or was killed by a signal", args[0]);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

#define RUN(...) run((const char *const[]){ __VA_ARGS__, NULL })

static void result_free(result *r) { tu_cli_result_free(r); }

static const char *model(void) { return tu_shared("models/stories260K/stories260K.gguf"); }

static json_t *parse_obj(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    if (!json_is_object(j))
        fail_msg("not one JSON object (%s): %.300s", je.text, s);
    return j;
}

/* the last non-empty line of s */
static json_t *last_line_obj(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '\n')
        n--;
    size_t b = n;
    while (b > 0 && s[b - 1] != '\n')
        b--;
    char *line = strndup(s + b, n - b);
    json_t *j = parse_obj(line);
    free(line);
    return j;
}

static json_int_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("'%s' is not an integer", key);
    return json_integer_value(v);
}

static double num_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("'%s' is not a number", key);
    return json_number_value(v);
}

static void test_run_strategy_json(void **state)
{
    (void)state;
    result r = RUN("run", "-m", model(), "-p", "Once upon a time", "--strategy", "sc:4", "-n", "24", "--seed", "7",
                   "--json");
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *j = parse_obj(r.out);
    const char *keys[] = { "answer", "strategy", "samples", "votes", "agreement", "usage", "timings" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_object_get(j, keys[i]))
            fail_msg("missing '%s'", keys[i]);
    assert_int_equal(json_object_size(j), 7);
    assert_string_equal(json_string_value(json_object_get(j, "strategy")), "sc:4");
    json_t *answer = json_object_get(j, "answer");
    assert_true(json_is_null(answer) || json_is_string(answer));
    json_t *samples = json_object_get(j, "samples");
    assert_int_equal(json_array_size(samples), 4);
    json_int_t tokens = 0;
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(samples, i);
        assert_true(json_is_string(json_object_get(s, "text")));
        json_t *a = json_object_get(s, "answer");
        assert_true(json_is_null(a) || json_is_string(a));
        json_int_t t = int_of(s, "tokens");
        assert_true(t > 0 && t <= 24);
        tokens += t;
        assert_true(num_of(s, "mean_logprob") <= 0.0);
    }
    assert_true(json_is_object(json_object_get(j, "votes")));
    double agreement = num_of(j, "agreement");
    assert_true(agreement >= 0.0 && agreement <= 1.0);
    json_t *u = json_object_get(j, "usage");
    json_int_t pt = int_of(u, "prompt_tokens");
    assert_true(pt > 0);
    assert_int_equal(int_of(u, "prompt_tokens_evaluated"), pt); /* one request: the prompt ran once */
    assert_int_equal(int_of(u, "completion_tokens"), tokens);
    assert_true(int_of(u, "flops") > 0);
    assert_true(num_of(json_object_get(j, "timings"), "wall_ms") >= 0.0);

    /* the same seed gives the same chains; cot with that seed is chain 0 at the same temperature */
    result r2 = RUN("run", "-m", model(), "-p", "Once upon a time", "--strategy", "sc:4", "-n", "24", "--seed", "7",
                    "--json");
    assert_int_equal(r2.status, 0);
    json_t *j2 = parse_obj(r2.out);
    json_t *s2 = json_object_get(j2, "samples");
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(samples, i), "text")),
                            json_string_value(json_object_get(json_array_get(s2, i), "text")));
    result r3 = RUN("run", "-m", model(), "-p", "Once upon a time", "--strategy", "cot", "-n", "24", "--seed", "7",
                    "--temp", "0.7", "--json");
    assert_int_equal(r3.status, 0);
    json_t *j3 = parse_obj(r3.out);
    assert_int_equal(json_array_size(json_object_get(j3, "samples")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j3, "samples"), 0), "text")),
                        json_string_value(json_object_get(json_array_get(samples, 0), "text")));
    json_decref(j);
    json_decref(j2);
    json_decref(j3);
    result_free(&r);
    result_free(&r2);
    result_free(&r3);

    /* text answers always exist: the vote is well-formed */
    r = RUN("run", "-m", model(), "-p", "Once upon a time", "--strategy", "asc:8", "--answer", "text", "-n", "12",
            "--temp", "0", "--json");
    assert_int_equal(r.status, 0);
    j = parse_obj(r.out);
    assert_string_equal(json_string_value(json_object_get(j, "strategy")), "asc:8");
    /* greedy chains agree, so asc stops after its first round of 4 */
    assert_int_equal(json_array_size(json_object_get(j, "samples")), 4);
    assert_true(json_is_string(json_object_get(j, "answer")));
    assert_true(num_of(j, "agreement") == 1.0);
    json_t *votes = json_object_get(j, "votes");
    assert_int_equal(json_object_size(votes), 1);
    assert_int_equal(json_integer_value(json_object_get(votes, json_string_value(json_object_get(j, "answer")))), 4);
    json_decref(j);
    result_free(&r);
}

static void expect_usage(result r, const char *mention)
{
    if (r.status != 2)
        fail_msg("expected exit 2, got %d: %s", r.status, r.err);
    if (mention && !strstr(r.err, mention))
        fail_msg("message does not mention '%s': %s", mention, r.err);
    assert_string_equal(r.out, "");
    result_free(&r);
}

static json_int_t prompt_tokens_of(const char *const *args)
{
    result r = run(args);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *j = parse_obj(r.out);
    json_int_t n = int_of(json_object_get(j, "usage"), "prompt_tokens");
    json_decref(j);
    result_free(&r);
    return n;
}

/* A copy of stories260K whose metadata says ponder.cue = false (as `ponder train` marks a
 * model trained on its own format). */
static void write_no_cue_model(const char *out)
{
    ponder_error err = { 0 };
    ponder_gguf *g = NULL;
    ponder_gguf_writer *w = NULL;
    assert_int_equal(ponder_gguf_open(model(), &g, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_copy_kv(w, g, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_bool(w, PONDER_THINK_CUE_KEY, false, &err), PONDER_OK);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        assert_int_equal(ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err), PONDER_OK);
    }
    if (ponder_gguf_writer_write(w, out, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    ponder_gguf_writer_free(w);
    ponder_gguf_free(g);
}

/* One cue rule: cot appends the cue unless --no-cue or the model's ponder.cue = false says
 * otherwise (--cue wins over the model); direct is the prompt as given. */
static void test_run_cue(void **state)
{
    (void)state;
    const char *p = "Once upon a time";
#define PT(...) prompt_tokens_of((const char *const[]){ "run", "-p", p, "-n", "4", "--json", __VA_ARGS__, NULL })
    json_int_t with = PT("-m", model(), "--strategy", "cot");
    json_int_t without = PT("-m", model(), "--strategy", "cot", "--no-cue");
    json_int_t direct = PT("-m", model(), "--strategy", "direct", "--cue");
    assert_true(with > without);
    assert_int_equal(without, direct);
    char path[] = "/tmp/ponder-test-nocue-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_no_cue_model(path);
    assert_int_equal(PT("-m", path, "--strategy", "cot"), without);
    assert_int_equal(PT("-m", path, "--strategy", "sc:2", "--cue"), with);
#undef PT
    unlink(path);
    expect_usage(RUN("run", "-m", model(), "--no-cue"), "--strategy");
    expect_usage(RUN("run", "-m", model(), "--strategy", "cot", "--cue", "--no-cue"), "--no-cue");
    expect_usage(RUN("eval", "-m", model(), "--task", "gsm8k", "--cue", "--no-cue"), "--no-cue");
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_usage(RUN("run", "-m", model(), "--strategy", "foo"), "strategy");
    expect_usage(RUN("run", "-m", model(), "--strategy", "sc:0"), "strategy");
    expect_usage(RUN("run", "-m", model(), "--strategy", "sc:2", "--answer", "bogus"), "--answer");
    expect_usage(RUN("run", "-m", model(), "--answer", "text"), "--strategy");
    expect_usage(RUN("run", "-m", model(), "--strategy", "sc:2", "-n", "0"), "-n");
    expect_usage(RUN("eval", "-m", model()), "--task");
    expect_usage(RUN("eval", "-m", model(), "--task", "nope"), "gsm8k");
    expect_usage(RUN("eval", "-m", model(), "--task", "arith"), "--data");
    expect_usage(RUN("eval", "-m", model(), "--task", "gsm8k", "--plot", "x.pdf"), ".svg");
    expect_usage(RUN("eval", "-m", model(), "--task", "gsm8k", "--strategy", "loglik"), "multiple-choice");
    expect_usage(RUN("eval", "-m", model(), "--task", "gsm8k", "--strategy", "sc:2", "--sweep", "cot"), NULL);
    expect_usage(RUN("eval", "-m", model(), "--task", "arc-easy", "--fewshot", "2"), "--shots");
    result r = RUN("eval", "-m", model(), "--task", "gsm8k", "--data", "/nonexistent/gsm8k.jsonl");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "/nonexistent/gsm8k.jsonl"));
    result_free(&r);
}

static void test_eval_json_and_log(void **state)
{
    (void)state;
    char log[] = "/tmp/ponder-think-log-XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    result r = RUN("eval", "-m", model(), "--task", "gsm8k", "--limit", "3", "--strategy", "sc:2", "-n", "16", "--json",
                   "--log", log);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.err, ""); /* no progress line when stderr is not a terminal */
    json_t *j = last_line_obj(r.out);
    assert_string_equal(json_string_value(json_object_get(j, "task")), "gsm8k");
    assert_string_equal(json_string_value(json_object_get(j, "strategy")), "sc:2");
    assert_int_equal(int_of(j, "n"), 3);
    double acc = num_of(j, "accuracy");
    json_t *ci = json_object_get(j, "ci95");
    assert_int_equal(json_array_size(ci), 2);
    double lo = json_number_value(json_array_get(ci, 0)), hi = json_number_value(json_array_get(ci, 1));
    assert_true(lo >= 0.0 && lo <= acc && acc <= hi && hi <= 1.0);
    assert_true(hi > 0.0); /* Wilson never collapses to [0, 0] */
    double mean_tokens = num_of(j, "mean_tokens");
    assert_true(mean_tokens > 0.0 && mean_tokens <= 2 * 16);
    assert_true(num_of(j, "mean_flops") > 0.0);
    assert_true(num_of(j, "mean_ms") >= 0.0);
    json_decref(j);
    result_free(&r);

    char *text = tu_read_file(log, NULL);
    assert_non_null(text);
    int lines = 0, correct = 0;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        json_t *it = parse_obj(p);
        assert_int_equal(int_of(it, "i"), lines);
        assert_true(json_is_string(json_object_get(it, "prompt")));
        assert_true(json_is_string(json_object_get(it, "gold")));
        assert_int_equal(json_array_size(json_object_get(it, "samples")), 2);
        assert_true(json_is_boolean(json_object_get(it, "correct")));
        correct += json_is_true(json_object_get(it, "correct"));
        json_t *u = json_object_get(it, "usage");
        assert_int_equal(int_of(u, "prompt_tokens_evaluated"), int_of(u, "prompt_tokens"));
        json_decref(it);
        lines++;
    }
    assert_int_equal(lines, 3);
    assert_true((double)correct / 3 == acc);
    free(text);
    unlink(log);

    /* a choice task by log-likelihood */
    r = RUN("eval", "-m", model(), "--task", "arc-easy", "--limit", "4", "--json");
    assert_int_equal(r.status, 0);
    j = last_line_obj(r.out);
    assert_string_equal(json_string_value(json_object_get(j, "strategy")), "loglik");
    assert_int_equal(int_of(j, "n"), 4);
    double an = num_of(j, "acc_norm");
    assert_true(an >= 0.0 && an <= 1.0);
    json_decref(j);
    result_free(&r);
}

static void test_eval_arith_and_sweep(void **state)
{
    (void)state;
    char data[] = "/tmp/ponder-think-arith-XXXXXX";
    int fd = mkstemp(data);
    assert_true(fd >= 0);
    const char *items = "{\"question\": \"What is 2 + 3?\", \"solution\": \"2 + 3 = 5. The answer is 5.\", \"answer\": 5}\n"
                        "{\"question\": \"What is 4 * 3?\", \"solution\": \"4 * 3 = 12. The answer is 12.\", \"answer\": 12}\n";
    assert_int_equal(write(fd, items, strlen(items)), (ssize_t)strlen(items));
    close(fd);
    /* --fewshot 1: the first item becomes the exemplar, the second is evaluated */
    result f = RUN("eval", "-m", model(), "--task", "arith", "--data", data, "--fewshot", "1", "-n", "8", "--json");
    if (f.status != 0)
        fail_msg("exit %d: %s", f.status, f.err);
    json_t *fj = last_line_obj(f.out);
    assert_int_equal(int_of(fj, "n"), 1);
    json_decref(fj);
    result_free(&f);

    char csv[] = "/tmp/ponder-think-csv-XXXXXX";
    fd = mkstemp(csv);
    close(fd);
    char svg[64];
    snprintf(svg, sizeof svg, "%s.svg", csv);
    result r = RUN("eval", "-m", model(), "--task", "arith", "--data", data, "--sweep", "direct,cot,sc:2,asc:4", "-n",
                   "12", "--json", "--csv", csv, "--plot", svg);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    /* one object per strategy, in sweep order */
    const char *want[] = { "direct", "cot", "sc:2", "asc:4" };
    char *p = r.out;
    for (int i = 0; i < 4; i++) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        json_t *j = parse_obj(p);
        assert_string_equal(json_string_value(json_object_get(j, "strategy")), want[i]);
        assert_string_equal(json_string_value(json_object_get(j, "task")), "arith");
        assert_int_equal(int_of(j, "n"), 2);
        json_decref(j);
        p = nl + 1;
    }
    assert_string_equal(p, "");
    char *c = tu_read_file(csv, NULL);
    assert_non_null(c);
    const char *header = "task,strategy,n,correct,accuracy,ci95_lo,ci95_hi,mean_tokens,mean_flops,";
    assert_true(strncmp(c, header, strlen(header)) == 0);
    int rows = 0;
    for (char *q = c; (q = strchr(q, '\n')); q++)
        rows++;
    assert_int_equal(rows, 5);
    assert_non_null(strstr(c, "\narith,sc:2,2,"));
    free(c);
    char *s = tu_read_file(svg, NULL);
    assert_non_null(s);
    assert_true(strncmp(s, "<?xml", 5) == 0);
    assert_non_null(strstr(s, "<svg"));
    assert_non_null(strstr(s, "asc:4"));
    assert_non_null(strstr(s, "</svg>"));
    free(s);
    unlink(svg);
    unlink(csv);
    unlink(data);
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_strategy_json),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_run_cue),
        cmocka_unit_test(test_eval_json_and_log),
        cmocka_unit_test(test_eval_arith_and_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
