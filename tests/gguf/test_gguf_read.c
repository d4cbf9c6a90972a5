/*
 * test_gguf_read.c — the reader against real files: every shared GGUF opens, and
 * stories260K.gguf has the counts, layout and metadata llama.cpp's gguf-dump reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "testutil.h"

static const char *STORIES = "models/stories260K/stories260K.gguf";

static void test_stories_layout(void **state)
{
    (void)state;
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_open(tu_shared(STORIES), &g, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_version(g), 3);
    assert_int_equal(ponder_gguf_n_tensors(g), 48);
    assert_int_equal(ponder_gguf_n_kv(g), 19);
    assert_int_equal(ponder_gguf_data_offset(g), 14176);
    assert_int_equal(ponder_gguf_alignment(g), PONDER_GGUF_ALIGNMENT_DEFAULT);
    assert_int_equal(ponder_gguf_file_size(g), 1185376);

    ponder_gguf_str arch;
    assert_int_equal(ponder_gguf_get_str(g, "general.architecture", &arch, &err), PONDER_OK);
    assert_true(ponder_gguf_str_eq(arch, "llama"));

    const ponder_gguf_array *tokens;
    assert_int_equal(ponder_gguf_get_arr(g, "tokenizer.ggml.tokens", PONDER_GGUF_STRING, &tokens, &err),
                     PONDER_OK);
    assert_int_equal(tokens->n, 512);
    assert_true(ponder_gguf_str_eq(ponder_gguf_array_str(tokens, 0), "<unk>"));
    assert_true(ponder_gguf_str_eq(ponder_gguf_array_str(tokens, 1), "<s>"));
    assert_true(ponder_gguf_str_eq(ponder_gguf_array_str(tokens, 2), "</s>"));

    const ponder_gguf_array *scores;
    assert_int_equal(ponder_gguf_get_arr(g, "tokenizer.ggml.scores", PONDER_GGUF_FLOAT32, &scores, &err),
                     PONDER_OK);
    assert_int_equal(scores->n, 512);

    uint32_t u;
    assert_int_equal(ponder_gguf_get_u32(g, "llama.embedding_length", &u, &err), PONDER_OK);
    assert_int_equal(u, 64);
    assert_int_equal(ponder_gguf_get_u32(g, "llama.block_count", &u, &err), PONDER_OK);
    assert_int_equal(u, 5);

    const ponder_gguf_tensor *t = ponder_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, PONDER_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->n_bytes, 64 * 512 * 4);
    assert_ptr_equal(t, ponder_gguf_tensor_at(g, 0));
    assert_null(ponder_gguf_find_tensor(g, "no.such.tensor"));

    /* Tensor data lies inside the file, aligned, after the data section start. */
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *ti = ponder_gguf_tensor_at(g, i);
        assert_int_equal(ti->offset % 32, 0);
        assert_true(ponder_gguf_data_offset(g) + ti->offset + ti->n_bytes <= ponder_gguf_file_size(g));
        assert_ptr_equal(ponder_gguf_find_tensor(g, ti->name), ti);
    }
    ponder_gguf_free(g);
}

/* Opens every .gguf in shared/<dir> (if the directory exists); returns how many opened. */
static int open_all_in(const char *dir)
{
    const char *path = tu_shared(dir);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0)
            continue;
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        ponder_gguf *g = NULL;
        ponder_error err = {0};
        ponder_status st = ponder_gguf_open(file, &g, &err);
        if (st != PONDER_OK)
            fail_msg("%s: %s", file, err.msg);
        assert_int_equal(ponder_gguf_version(g), 3);
        assert_true(ponder_gguf_n_kv(g) > 0);
        ponder_gguf_str arch;
        assert_int_equal(ponder_gguf_get_str(g, "general.architecture", &arch, &err), PONDER_OK);
        assert_true(arch.len > 0);
        ponder_gguf_free(g);
        n++;
    }
    closedir(d);
    return n;
}

static void test_open_all_shared(void **state)
{
    (void)state;
    assert_true(open_all_in("models/stories260K") >= 1);
    assert_true(open_all_in("reference/tokenizer") >= 1);
    open_all_in("models/stories260K/quantized");
    open_all_in("models/synthetic");
}

static void test_open_errors(void **state)
{
    (void)state;
    ponder_gguf *g = (ponder_gguf *)0x1;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_open("/nonexistent/x.gguf", &g, &err), PONDER_ERR_IO);
    assert_null(g);
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
    assert_int_equal(ponder_gguf_open(tu_shared("models"), &g, &err), PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));

    char path[64];
    snprintf(path, sizeof path, "/tmp/ponder-gguf-empty-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ponder_gguf_open(path, &g, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "empty"));
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("GGUF\x03", f); /* truncated in the version field */
    fclose(f);
    assert_int_equal(ponder_gguf_open(path, &g, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "offset 4: truncated"));
    unlink(path);
    assert_int_equal(ponder_gguf_open(NULL, &g, &err), PONDER_ERR_INVALID_ARG);
    ponder_gguf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_layout),
        cmocka_unit_test(test_open_all_shared),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
