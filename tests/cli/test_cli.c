/*
 * test_cli.c — the `ponder` binary end to end ($PONDER_BIN, set by ponder_test()).
 *
 * Each case spawns the binary with stdout and stderr sent to temporary files, then checks
 * the exit status (0 success, 1 runtime error, 2 usage error; never a signal), the output
 * and the messages. Model-based checks use stories260K and its golden greedy tokens
 * (shared/models/stories260K/stories260K.greedy-t0.json, computed independently in
 * float64: ids from BOS with no prompt, whose first four are "Once upon a time").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

extern char **environ;

#define MODEL_REL "models/stories260K/stories260K.gguf"

typedef struct result {
    int status; /* exit status */
    char *out, *err;
    size_t out_len;
} result;

static char empty_models_dir[] = "/tmp/ponder-cli-models-XXXXXX";

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs $PONDER_BIN args... with env overrides ("NAME=value"; "NAME=" unsets NAME).
 * PONDER_MODELS points at an empty folder unless overridden, so a user's models never
 * change a result. */
static result run_env(const char *const *env_over, const char *const *args)
{
    const char *bin = getenv("PONDER_BIN");
    if (!bin || !*bin)
        fail_msg("PONDER_BIN is not set (run through ctest)");

    char out_path[] = "/tmp/ponder-cli-out-XXXXXX", err_path[] = "/tmp/ponder-cli-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    assert_true(out_fd >= 0 && err_fd >= 0);

    const char *argv[64];
    int argc = 0;
    argv[argc++] = bin;
    for (int i = 0; args[i]; i++) {
        assert_true(argc < 63);
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    /* environment: ours, minus overridden names, plus the overrides */
    char models_env[256];
    snprintf(models_env, sizeof models_env, "PONDER_MODELS=%s", empty_models_dir);
    const char *over[16];
    int n_over = 0;
    over[n_over++] = models_env;
    for (int i = 0; env_over && env_over[i]; i++) {
        assert_true(n_over < 15);
        over[n_over++] = env_over[i];
    }
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    const char **envp = calloc(n_env + (size_t)n_over + 1, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        bool replaced = false;
        for (int j = 0; j < n_over; j++) {
            size_t name_len = (size_t)(strchr(over[j], '=') - over[j]);
            if (strncmp(environ[i], over[j], name_len + 1) == 0)
                replaced = true;
        }
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (int j = 0; j < n_over; j++) {
        const char *eq = strchr(over[j], '=');
        bool later = false; /* a later override of the same name wins */
        for (int l = j + 1; l < n_over; l++)
            later |= strncmp(over[l], over[j], (size_t)(eq - over[j]) + 1) == 0;
        if (eq[1] != '\0' && !later) /* "NAME=" only removes */
            envp[k++] = over[j];
    }
    envp[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, (char *const *)envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    assert_int_equal(rc, 0);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    close(out_fd);
    close(err_fd);
    if (!WIFEXITED(wstatus))
        fail_msg("ponder %s ... was killed by signal %d", args[0], WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : -1);

    result r = { .status = WEXITSTATUS(wstatus) };
    r.out = tu_read_file(out_path, &r.out_len);
    r.err = tu_read_file(err_path, NULL);
    unlink(out_path);
    unlink(err_path);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

#define RUN(...) run_env(NULL, (const char *const[]){ __VA_ARGS__, NULL })
#define RUN_ENV(env, ...) run_env((const char *const[]){ env, NULL }, (const char *const[]){ __VA_ARGS__, NULL })

static const char *model(void)
{
    return tu_shared(MODEL_REL);
}

/* The golden greedy ids: generated_token_ids[from, from + n). */
static void golden_ids(int from, int n, int *out)
{
    size_t len;
    char *text = tu_read_file(tu_shared("models/stories260K/stories260K.greedy-t0.json"), &len);
    assert_non_null(text);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    assert_non_null(root);
    json_t *ids = json_object_get(root, "generated_token_ids");
    assert_true(json_is_array(ids));
    assert_true(json_array_size(ids) >= (size_t)(from + n));
    for (int i = 0; i < n; i++)
        out[i] = (int)json_integer_value(json_array_get(ids, (size_t)(from + i)));
    json_decref(root);
}

static json_t *parse_json(const result *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->out, r->out_len, 0, &jerr);
    if (!j)
        fail_msg("stdout is not JSON (%s): %s", jerr.text, r->out);
    return j;
}

static void assert_ids(json_t *arr, const int *want, size_t n)
{
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_integer_value(json_array_get(arr, i)), want[i]);
}

/* A usage error: exit 2, nothing on stdout, one stderr line pointing at --help. */
static void assert_usage_error(result r, const char *cmd, const char *mention)
{
    char hint[64];
    snprintf(hint, sizeof hint, "try 'ponder %s --help'", cmd);
    if (r.status != 2)
        fail_msg("expected exit 2, got %d; stderr: %s", r.status, r.err);
    assert_int_equal(r.out_len, 0);
    assert_non_null(strstr(r.err, hint));
    assert_non_null(strchr(r.err, '\n'));
    assert_true(strchr(r.err, '\n')[1] == '\0'); /* one line */
    if (mention)
        assert_non_null(strstr(r.err, mention));
    result_free(&r);
}

static void assert_runtime_error(result r, const char *mention)
{
    if (r.status != 1)
        fail_msg("expected exit 1, got %d; stderr: %s", r.status, r.err);
    assert_true(strncmp(r.err, "ponder: ", 8) == 0);
    if (mention)
        assert_non_null(strstr(r.err, mention));
    result_free(&r);
}

/* ---- tokenize ---- */

static void test_tokenize_ids(void **state)
{
    (void)state;
    result r = RUN("tokenize", "-m", model(), "-p", "Once upon a time", "--ids");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[1, 403, 407, 261, 378]\n");
    result_free(&r);

    r = RUN("tokenize", "-m", model(), "-p", "Once upon a time", "--ids", "--no-bos");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[403, 407, 261, 378]\n");
    result_free(&r);

    /* positional MODEL TEXT, as in `ponder tokenize MODEL TEXT` */
    r = RUN("tokenize", model(), "Once upon a time", "--ids");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[1, 403, 407, 261, 378]\n");
    result_free(&r);
}

static void test_tokenize_parse_special(void **state)
{
    (void)state;
    /* llama.cpp: "<s>" becomes BOS only with parse_special; the text after a special
     * token gets the SentencePiece space prefix, so the rest matches the plain prompt. */
    result r = RUN("tokenize", "-m", model(), "-p", "<s>Once upon a time", "--ids", "--no-bos", "--parse-special");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[1, 403, 407, 261, 378]\n");
    result_free(&r);

    r = RUN("tokenize", "-m", model(), "-p", "<s>Once upon a time", "--ids", "--no-bos");
    assert_int_equal(r.status, 0);
    json_error_t jerr;
    json_t *ids = json_loads(r.out, 0, &jerr);
    assert_non_null(ids);
    assert_true(json_array_size(ids) > 5);
    for (size_t i = 0; i < json_array_size(ids); i++)
        assert_int_not_equal(json_integer_value(json_array_get(ids, i)), 1);
    json_decref(ids);
    result_free(&r);
}

static void test_tokenize_pieces_and_file(void **state)
{
    (void)state;
    result r = RUN("tokenize", "-m", model(), "-p", "Once upon a time");
    assert_int_equal(r.status, 0);
    /* one line per token: id, then the quoted piece */
    assert_true(strncmp(r.out, "     1 -> '<s>'\n", 16) == 0);
    assert_non_null(strstr(r.out, "   407 -> ' upon'\n"));
    int lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 5);
    result_free(&r);

    /* -f reads the text from a file; a newline shows escaped */
    char path[] = "/tmp/ponder-cli-text-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "Once upon a time\n", 17), 17);
    close(fd);
    r = RUN("tokenize", "-m", model(), "-f", path, "--ids");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "[1, 403, 407, 261, 378, ", 24) == 0);
    result_free(&r);
    r = RUN("tokenize", "-m", model(), "-f", path);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\\n'"));
    result_free(&r);
    unlink(path);
}

/* ---- errors ---- */

static void test_usage_errors(void **state)
{
    (void)state;
    assert_usage_error(RUN("run", "-m", model(), "-n", "abc"), "run", "-n");
    assert_usage_error(RUN("run", "-m", model(), "--temp", "x"), "run", "--temp");
    assert_usage_error(RUN("run", "--bogus"), "run", "--bogus");
    assert_usage_error(RUN("run", "-m", model(), "-n"), "run", NULL);
    assert_usage_error(RUN("run", "-m", model(), "--top-p", "1.5"), "run", "--top-p");
    assert_usage_error(RUN("run", "-m", model(), "--seed", "x"), "run", NULL);
    assert_usage_error(RUN("run", "-m", model(), "-ctk", "q5_1"), "run", "f16, f32, q8_0, q4_0");
    assert_usage_error(RUN("run", "-m", model(), "-fa", "maybe"), "run", "on, off, auto");
    assert_usage_error(RUN("run", "-m", model(), "-ctv", "bf16"), "run", "f16, f32");
    assert_usage_error(RUN("run", "-m", model(), "-p", "a", "-f", "b"), "run", NULL);
    assert_usage_error(RUN("run", "-m", model(), "stray"), "run", "stray");
    assert_usage_error(RUN("tokenize", "-m", model()), "tokenize", NULL); /* no text */
    assert_usage_error(RUN("tokenize", "-m", model(), "-p", "x", "--idz"), "tokenize", "--idz");
    assert_usage_error(RUN("info", "--jsn"), "info", "--jsn");

    result r = RUN("frobnicate");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "frobnicate"));
    result_free(&r);
    r = RUN("--bogus");
    assert_int_equal(r.status, 2);
    result_free(&r);
}

static void test_missing_model(void **state)
{
    (void)state;
    assert_runtime_error(RUN("tokenize", "-m", "/nonexistent/dir/model.gguf", "-p", "hi"),
                         "/nonexistent/dir/model.gguf");
    assert_runtime_error(RUN("run", "-m", "/nonexistent/dir/model.gguf", "-p", "hi"), "No such file");
    assert_runtime_error(RUN("info", "no-such-model-name"), "no-such-model-name");
    /* a file that is not GGUF */
    assert_runtime_error(RUN("info", tu_shared("models/stories260K/stories260K.bin")), NULL);
    assert_runtime_error(RUN("run", "-m", tu_shared("models/stories260K/stories260K.bin"), "-n", "1"), NULL);
    /* a missing prompt file */
    assert_runtime_error(RUN("run", "-m", model(), "-f", "/nonexistent/prompt.txt"), "/nonexistent/prompt.txt");
}

static void test_help(void **state)
{
    (void)state;
    const char *cmds[] = { "run", "tokenize", "info" };
    for (size_t i = 0; i < 3; i++) {
        result r = RUN(cmds[i], "--help");
        assert_int_equal(r.status, 0);
        char want[64];
        snprintf(want, sizeof want, "usage: ponder %s", cmds[i]);
        assert_true(strncmp(r.out, want, strlen(want)) == 0);
        assert_string_equal(r.err, "");
        result_free(&r);
    }
    result r = RUN("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "tokenize"));
    result_free(&r);
    r = RUN("help", "run");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "usage: ponder run", 17) == 0);
    result_free(&r);
    r = RUN("--version");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "ponder ", 7) == 0);
    result_free(&r);
}

/* ---- model lookup ---- */

static void test_model_lookup(void **state)
{
    (void)state;
    /* a name resolved in $PONDER_MODELS, with and without .gguf */
    char env[4096];
    snprintf(env, sizeof env, "PONDER_MODELS=%s", tu_shared("models/stories260K"));
    result r = RUN_ENV(env, "tokenize", "-m", "stories260K", "-p", "Once upon a time", "--ids");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[1, 403, 407, 261, 378]\n");
    result_free(&r);
    r = RUN_ENV(env, "tokenize", "-m", "stories260K.gguf", "-p", "Once upon a time", "--ids");
    assert_int_equal(r.status, 0);
    result_free(&r);

    /* the default model from $PONDER_SHARED when -m is absent */
    char shared[4096];
    snprintf(shared, sizeof shared, "PONDER_SHARED=%s", tu_shared("."));
    r = RUN_ENV(shared, "tokenize", "-p", "Once upon a time", "--ids");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[1, 403, 407, 261, 378]\n");
    result_free(&r);
}

/* ---- run ---- */

static void test_run_greedy_matches_golden(void **state)
{
    (void)state;
    int want[20];
    golden_ids(4, 20, want);
    result r = RUN("run", "-m", model(), "-p", "Once upon a time", "-n", "20", "--temp", "0", "--json");
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *j = parse_json(&r);
    const int prompt[] = { 1, 403, 407, 261, 378 };
    assert_ids(json_object_get(j, "prompt_tokens"), prompt, 5);
    assert_ids(json_object_get(j, "tokens"), want, 20);
    assert_string_equal(json_string_value(json_object_get(j, "stop")), "length");
    const char *text = json_string_value(json_object_get(j, "text"));
    assert_non_null(text);
    assert_true(strncmp(text, ", there was a little girl named Lily.", 37) == 0);
    json_t *t = json_object_get(j, "timings");
    assert_int_equal(json_integer_value(json_object_get(t, "prompt_n")), 5);
    assert_int_equal(json_integer_value(json_object_get(t, "predicted_n")), 20);
    const char *keys[] = { "prompt_ms", "prompt_per_second", "predicted_ms", "predicted_per_second" };
    for (size_t i = 0; i < 4; i++)
        assert_true(json_is_number(json_object_get(t, keys[i])));
    json_decref(j);
    /* the timing line */
    assert_non_null(strstr(r.err, "prompt 5 tokens"));
    assert_non_null(strstr(r.err, "generation 20 tokens"));
    result_free(&r);

    /* the same tokens with an f32 KV cache and in exact-float mode (an F32 model) */
    r = RUN("run", "-m", model(), "-n", "20", "--temp", "0", "--json", "-ctk", "f32", "-ctv", "f32",
            "--float-activations");
    assert_int_equal(r.status, 0);
    j = parse_json(&r);
    assert_ids(json_object_get(j, "tokens"), want, 20);
    json_decref(j);
    result_free(&r);

    /* text mode prints exactly the JSON text */
    r = RUN("run", "-m", model(), "-p", "Once upon a time", "-n", "20", "--temp", "0");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, ", there was a little girl named Lily.", 37) == 0);
    result_free(&r);
}

static void test_run_seeded_is_reproducible(void **state)
{
    (void)state;
    result a = RUN("run", "-m", model(), "-n", "30", "--seed", "42", "--temp", "0.8");
    result b = RUN("run", "-m", model(), "-n", "30", "--seed", "42", "--temp", "0.8");
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_true(a.out_len > 0);
    assert_string_equal(a.out, b.out);
    assert_non_null(strstr(a.err, "seed 42"));

    /* --json gives the same text and reports the seed */
    result c = RUN("run", "-m", model(), "-n", "30", "--seed", "42", "--temp", "0.8", "--json");
    assert_int_equal(c.status, 0);
    json_t *j = parse_json(&c);
    assert_string_equal(json_string_value(json_object_get(j, "text")), a.out);
    assert_int_equal(json_integer_value(json_object_get(j, "seed")), 42);
    json_decref(j);

    /* other seeds give other stories (fixed seeds: deterministic) */
    result d = RUN("run", "-m", model(), "-n", "30", "--seed", "43", "--temp", "0.8");
    result e = RUN("run", "-m", model(), "-n", "30", "--seed", "44", "--temp", "0.8");
    assert_true(strcmp(a.out, d.out) != 0 || strcmp(a.out, e.out) != 0);
    result_free(&a);
    result_free(&b);
    result_free(&c);
    result_free(&d);
    result_free(&e);
}

static void test_run_context_limits(void **state)
{
    (void)state;
    /* prompt longer than the context: a clear runtime error */
    assert_runtime_error(RUN("run", "-m", model(), "-c", "4", "-p", "Once upon a time there was"), "context");

    /* -n -1 with a 12-token context: 5 prompt tokens, then 12 - 5 + 1 = 8 generated
     * (the last sampled token needs no KV slot); the golden run has no EOS that early */
    int want[8];
    golden_ids(4, 8, want);
    result r = RUN("run", "-m", model(), "-c", "12", "-n", "-1", "--temp", "0", "--json");
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *j = parse_json(&r);
    assert_ids(json_object_get(j, "tokens"), want, 8);
    assert_string_equal(json_string_value(json_object_get(j, "stop")), "context");
    json_decref(j);
    result_free(&r);

    /* -n 0: the prompt is decoded, nothing generated */
    r = RUN("run", "-m", model(), "-n", "0", "--json");
    assert_int_equal(r.status, 0);
    j = parse_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "tokens")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "");
    json_decref(j);
    result_free(&r);
}

/* ---- info ---- */

static void test_info(void **state)
{
    (void)state;
    result r = RUN("info", model(), "--json");
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *j = parse_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "n_layer")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "n_embd")), 64);
    assert_int_equal(json_integer_value(json_object_get(j, "n_head")), 8);
    assert_int_equal(json_integer_value(json_object_get(j, "n_head_kv")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "n_vocab")), 512);
    assert_int_equal(json_integer_value(json_object_get(j, "n_ctx_train")), 2048);
    assert_int_equal(json_integer_value(json_object_get(j, "n_tensors")), 48);
    assert_int_equal(json_integer_value(json_object_get(j, "file_size")), 1185376);
    assert_int_equal(json_integer_value(json_object_get(j, "n_params")), 292800);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "llama");
    assert_true(json_is_true(json_object_get(j, "runnable")));
    assert_true(json_is_false(json_object_get(j, "chat_template")));
    json_t *f32 = json_object_get(json_object_get(j, "tensor_types"), "F32");
    assert_int_equal(json_integer_value(json_object_get(f32, "n_tensors")), 48);
    assert_int_equal(json_integer_value(json_object_get(f32, "n_elements")), 292800);
    /* at least 2 FLOPs per weight of every matrix product: all 292800 elements minus
     * token_embd (a lookup, 512 x 64) and the 11 norm vectors of 64 */
    json_int_t flops = json_integer_value(json_object_get(j, "flops_per_token"));
    assert_true(flops >= 2 * (292800 - 512 * 64 - 11 * 64) && flops < 2 * 292800);
    json_decref(j);
    result_free(&r);

    r = RUN("info", "-m", model());
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "n_layer"));
    assert_non_null(strstr(r.out, "F32"));
    assert_non_null(strstr(r.out, "1185376 bytes"));
    result_free(&r);

    /* a template-carrying model says so */
    const char *smol = tu_shared("models/synthetic/syn-tiny-smollm-Q4_K_M.gguf");
    if (access(smol, R_OK) == 0) {
        r = RUN("info", smol, "--json");
        assert_int_equal(r.status, 0);
        j = parse_json(&r);
        assert_true(json_is_true(json_object_get(j, "chat_template")));
        assert_non_null(json_object_get(json_object_get(j, "tensor_types"), "Q4_K"));
        json_decref(j);
        result_free(&r);
    }
}

static void test_info_unrunnable(void **state)
{
    (void)state;
    /* a vocabulary-only GGUF of an architecture we do not run: GGUF facts, then why */
    const char *vocab = tu_shared("reference/tokenizer/ggml-vocab-gpt-2.gguf");
    result r = RUN("info", vocab, "--json");
    assert_int_equal(r.status, 1);
    json_t *j = parse_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "gpt2");
    assert_true(json_is_false(json_object_get(j, "runnable")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "gpt2"));
    json_decref(j);
    assert_true(strncmp(r.err, "ponder: ", 8) == 0);
    result_free(&r);

    /* tokenize only needs the vocabulary */
    r = RUN("tokenize", "-m", vocab, "-p", "Hello world", "--ids");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[15496, 995]\n");
    result_free(&r);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(empty_models_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rmdir(empty_models_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_ids),
        cmocka_unit_test(test_tokenize_parse_special),
        cmocka_unit_test(test_tokenize_pieces_and_file),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_model_lookup),
        cmocka_unit_test(test_run_greedy_matches_golden),
        cmocka_unit_test(test_run_seeded_is_reproducible),
        cmocka_unit_test(test_run_context_limits),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_info_unrunnable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
