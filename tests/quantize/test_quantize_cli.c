/*
 * test_quantize_cli.c — `ponder quantize` end to end ($PONDER_BIN, set by ponder_test()).
 *
 * Exit status (0 / 1 runtime error / 2 usage error), messages, the --json report against
 * llama-quantize's stories260K-Q4_K_M.gguf (types, sizes), and no output file after any
 * failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "testutil.h"

#define STORIES "models/stories260K/stories260K.gguf"
#define STORIES_Q4_K_M "models/stories260K/quantized/stories260K-Q4_K_M.gguf"

static char tmpdir[] = "/tmp/ponder-quantize-cli-XXXXXX";

typedef struct result {
    int status;
    char *out, *err;
    size_t out_len;
} result;

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs $PONDER_BIN args... with stdout and stderr captured and stdin from /dev/null. */
static result run(const char *const *args)
{
    const char *bin = getenv("PONDER_BIN");
    if (!bin || !*bin)
        fail_msg("PONDER_BIN is not set (run through ctest)");
    char out_path[600], err_path[600];
    snprintf(out_path, sizeof out_path, "%s.stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s.stderr", tmpdir);
    const char *argv[32];
    int argc = 0;
    argv[argc++] = bin;
    for (int i = 0; args[i]; i++) {
        assert_true(argc < 31);
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    extern char **environ;
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (!WIFEXITED(ws))
        fail_msg("ponder %s was killed by signal %d", args[0], WIFSIGNALED(ws) ? WTERMSIG(ws) : -1);
    result r = {.status = WEXITSTATUS(ws)};
    r.out = tu_read_file(out_path, &r.out_len);
    r.err = tu_read_file(err_path, NULL);
    unlink(out_path);
    unlink(err_path);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

/* Paths in the temporary folder, and how many files it holds (to catch leftovers). */
static const char *tmp_path(const char *name) { return tu_path_in(tmpdir, name); }
static int count_files(void) { return tu_count_files(tmpdir); }

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                unlink(tmp_path(e->d_name));
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static void assert_usage_error(result r, const char *mention)
{
    if (r.status != 2)
        fail_msg("expected exit 2, got %d; stderr: %s", r.status, r.err);
    assert_int_equal(r.out_len, 0);
    assert_non_null(strstr(r.err, "(try 'ponder quantize --help')"));
    assert_true(strchr(r.err, '\n')[1] == '\0'); /* one line */
    if (mention && !strstr(r.err, mention))
        fail_msg("stderr lacks '%s': %s", mention, r.err);
    result_free(&r);
}

static void assert_runtime_error(result r, const char *mention)
{
    if (r.status != 1)
        fail_msg("expected exit 1, got %d; stderr: %s", r.status, r.err);
    assert_true(strncmp(r.err, "ponder: ", 8) == 0);
    if (mention && !strstr(r.err, mention))
        fail_msg("stderr lacks '%s': %s", mention, r.err);
    result_free(&r);
}

static void test_help_and_usage(void **state)
{
    (void)state;
    result r = RUN("quantize", "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: ponder quantize"));
    assert_non_null(strstr(r.out, "Q4_K_M"));
    assert_non_null(strstr(r.out, "--allow-requantize"));
    result_free(&r);
    r = RUN("help", "quantize");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: ponder quantize"));
    result_free(&r);

    const char *in = tu_shared(STORIES), *out = tmp_path("out.gguf");
    assert_usage_error(RUN("quantize"), "expected IN.gguf OUT.gguf TYPE");
    assert_usage_error(RUN("quantize", in, out), "got 2 arguments");
    assert_usage_error(RUN("quantize", in, out, "Q4_K_M", "extra"), "too many arguments");
    /* a bad type lists the valid ones */
    assert_usage_error(RUN("quantize", in, out, "Q9_K"), "unknown type 'Q9_K' (one of: Q4_0 Q4_1");
    assert_usage_error(RUN("quantize", "-t", "0", in, out, "Q8_0"), "-t must be an integer");
    assert_usage_error(RUN("quantize", "--bogus", in, out, "Q8_0"), "unknown option '--bogus'");
    assert_int_equal(count_files(), 0);
}

static void test_runtime_errors(void **state)
{
    (void)state;
    const char *out = tmp_path("out.gguf");
    assert_runtime_error(RUN("quantize", tmp_path("missing.gguf"), out, "Q8_0"), "missing.gguf: cannot open");
    const char *text = tmp_path("text.gguf");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("not a model, only text\n", f);
    fclose(f);
    assert_runtime_error(RUN("quantize", text, out, "Q8_0"), "text.gguf");
    assert_runtime_error(RUN("quantize", tu_shared(STORIES), tmp_path("none/out.gguf"), "Q8_0"), "none/out.gguf");
    /* quantized input: refused without --allow-requantize, with a hint */
    assert_runtime_error(RUN("quantize", tu_shared(STORIES_Q4_K_M), out, "Q8_0"), "--allow-requantize");
    assert_int_equal(count_files(), 1); /* text.gguf */
    result r = RUN("quantize", "--allow-requantize", tu_shared(STORIES_Q4_K_M), out, "q8_0");
    assert_int_equal(r.status, 0);
    result_free(&r);
    unlink(out);
    unlink(text);
}

static void test_json_report(void **state)
{
    (void)state;
    const char *out = tmp_path("q4km.gguf");
    result r = RUN("quantize", "-t", "2", "--json", tu_shared(STORIES), out, "q4_k_m");
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.err, ""); /* no progress line off a terminal */
    json_error_t jerr;
    json_t *j = json_loadb(r.out, r.out_len, 0, &jerr);
    if (!j)
        fail_msg("stdout is not JSON (%s): %s", jerr.text, r.out);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "Q4_K_M");
    assert_int_equal(json_integer_value(json_object_get(j, "file_type")), 15);
    assert_int_equal(json_integer_value(json_object_get(j, "n_tensors")), 48);
    assert_int_equal(json_integer_value(json_object_get(j, "n_params")), 292800);
    assert_int_equal(json_integer_value(json_object_get(j, "tensor_bytes_in")), 292800 * 4);
    /* llama-quantize's file: F32 11, F16 5, Q5_0 29, Q8_0 3 (see `ponder info`) */
    json_t *types = json_object_get(j, "tensor_types");
    assert_int_equal(json_object_size(types), 4);
    assert_int_equal(json_integer_value(json_object_get(types, "F32")), 11);
    assert_int_equal(json_integer_value(json_object_get(types, "F16")), 5);
    assert_int_equal(json_integer_value(json_object_get(types, "Q5_0")), 29);
    assert_int_equal(json_integer_value(json_object_get(types, "Q8_0")), 3);
    struct stat ref, ours;
    assert_int_equal(stat(tu_shared(STORIES_Q4_K_M), &ref), 0);
    assert_int_equal(stat(out, &ours), 0);
    assert_int_equal(ours.st_size, ref.st_size);
    assert_int_equal(json_integer_value(json_object_get(j, "file_bytes_out")), ref.st_size);
    /* tensor data: 2816 F32 + 110080 F16 + 137632 Q5_0 + 39168 Q8_0 bytes */
    const json_int_t bytes_out = json_integer_value(json_object_get(j, "tensor_bytes_out"));
    assert_int_equal(bytes_out, 2816 + 110080 + 137632 + 39168);
    assert_true(fabs(json_real_value(json_object_get(j, "bits_per_weight")) - 8.0 * (double)bytes_out / 292800) < 1e-9);
    json_decref(j);
    result_free(&r);

    r = RUN("quantize", tu_shared(STORIES), out, "Q6_K");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Q6_K (file type 18)"));
    assert_non_null(strstr(r.out, "model size = 1.12 MiB, quant size = "));
    assert_non_null(strstr(r.out, "bits per weight"));
    assert_string_equal(r.err, "");
    result_free(&r);
    unlink(out);
    assert_int_equal(count_files(), 0);
}

/* --override-kv: the key is added (or replaces the input's, never doubled) with its type;
 * malformed forms are usage errors that write nothing. */
static void test_override_kv(void **state)
{
    (void)state;
    const char *in = tu_shared(STORIES), *out = tmp_path("kv.gguf");
    assert_usage_error(RUN("quantize", "--override-kv", "ponder.sampled_temp", in, out, "F16"), "KEY=TYPE:VALUE");
    assert_usage_error(RUN("quantize", "--override-kv", "=float:1", in, out, "F16"), "KEY=TYPE:VALUE");
    assert_usage_error(RUN("quantize", "--override-kv", "k=int:3", in, out, "F16"), "float, bool or str");
    assert_usage_error(RUN("quantize", "--override-kv", "k=float:warm", in, out, "F16"), "not a number");
    assert_usage_error(RUN("quantize", "--override-kv", "k=bool:yes", in, out, "F16"), "true or false");
    assert_int_equal(count_files(), 0);

    ponder_gguf *g = NULL;
    ponder_error err;
    result r = RUN("quantize", "--override-kv", "ponder.sampled_temp=float:0.5", in, out, "F16");
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    result_free(&r);
    assert_int_equal(ponder_gguf_open(out, &g, &err), PONDER_OK);
    const ponder_gguf_value *v = ponder_gguf_get(g, "ponder.sampled_temp");
    assert_non_null(v);
    assert_int_equal(v->type, PONDER_GGUF_FLOAT32);
    assert_true(v->v.f64 == 0.5);
    ponder_gguf_free(g);

    r = RUN("quantize", "--override-kv", "general.name=str:renamed", in, out, "F16");
    assert_int_equal(r.status, 0);
    result_free(&r);
    assert_int_equal(ponder_gguf_open(out, &g, &err), PONDER_OK);
    v = ponder_gguf_get(g, "general.name");
    assert_non_null(v);
    assert_int_equal(v->type, PONDER_GGUF_STRING);
    assert_int_equal(v->v.str.len, 7);
    assert_memory_equal(v->v.str.data, "renamed", 7);
    const int64_t n_kv = ponder_gguf_n_kv(g);
    ponder_gguf_free(g);
    /* replaced, not doubled: as many keys as without the override */
    r = RUN("quantize", in, out, "F16");
    assert_int_equal(r.status, 0);
    result_free(&r);
    assert_int_equal(ponder_gguf_open(out, &g, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_n_kv(g), n_kv);
    ponder_gguf_free(g);
    unlink(out);
    assert_int_equal(count_files(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_json_report),
        cmocka_unit_test(test_override_kv),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
