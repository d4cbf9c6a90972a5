/*
 * test_model_errors.c — bad models and bad calls get a clear error, never a crash:
 * stories260K rewritten with one defect each (unsupported architecture, a missing key,
 * a missing tensor, a wrong shape, a tensor type we cannot compute with), and decode calls
 * with a token outside the vocabulary or more tokens than the context holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/model.h"
#include "testutil.h"

#define STORIES "models/stories260K/stories260K.gguf"

typedef struct defect {
    const char *skip_key;      /* key left out */
    const char *arch;          /* general.architecture replaced */
    const char *skip_tensor;   /* tensor left out */
    const char *reshape;       /* tensor written with ne0 halved */
    const char *retype;        /* tensor written as MXFP4 (known geometry, no kernels) */
} defect;

/* Writes stories260K with the defect to a temp file; returns its path (static buffer). */
static const char *write_defective(const defect *d)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/ponder-model-err-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    ponder_error err = {0};
    ponder_gguf *g = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared(STORIES), &g, &err), PONDER_OK);
    ponder_gguf_writer *w = NULL;
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    for (int64_t i = 0; i < ponder_gguf_n_kv(g); i++) {
        const char *key = ponder_gguf_kv_key(g, i);
        if (d->skip_key && strcmp(key, d->skip_key) == 0)
            continue;
        assert_int_equal(ponder_gguf_writer_set(w, key, ponder_gguf_kv_value(g, i), &err), PONDER_OK);
    }
    if (d->arch)
        assert_int_equal(ponder_gguf_writer_set_str(w, "general.architecture", d->arch, &err), PONDER_OK);
    static uint8_t zeros[1 << 16];
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        if (d->skip_tensor && strcmp(t->name, d->skip_tensor) == 0)
            continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (d->reshape && strcmp(t->name, d->reshape) == 0) {
            ne[0] /= 2;
            assert_int_equal(ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, &err),
                             PONDER_OK);
        } else if (d->retype && strcmp(t->name, d->retype) == 0) {
            const int mxfp4 = 39; /* GGML_TYPE_MXFP4: blocks of 32, a type the reader knows and we cannot run */
            assert_int_equal(ponder_gguf_writer_add_tensor(w, t->name, (ponder_type)mxfp4, t->n_dims, ne, zeros, &err),
                             PONDER_OK);
        } else {
            assert_int_equal(ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, &err),
                             PONDER_OK);
        }
    }
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    ponder_gguf_free(g);
    return path;
}

static void expect_load_error(const defect *d, ponder_status want, const char *needle)
{
    const char *path = write_defective(d);
    ponder_error err = {0};
    ponder_model *m = (ponder_model *)&err; /* must come back NULL */
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), want);
    assert_null(m);
    assert_int_equal(err.code, want);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    unlink(path);
}

static void test_unsupported_arch(void **state)
{
    (void)state;
    expect_load_error(&(defect){.arch = "gpt2"}, PONDER_ERR_UNSUPPORTED, "architecture 'gpt2' is not supported");
    expect_load_error(&(defect){.arch = "gpt2"}, PONDER_ERR_UNSUPPORTED, "llama, qwen2, gemma2, phi3");
}

static void test_missing_key(void **state)
{
    (void)state;
    expect_load_error(&(defect){.skip_key = "llama.embedding_length"}, PONDER_ERR_NOT_FOUND, "llama.embedding_length");
    expect_load_error(&(defect){.skip_key = "general.architecture"}, PONDER_ERR_FORMAT, "general.architecture");
}

static void test_missing_tensor(void **state)
{
    (void)state;
    expect_load_error(&(defect){.skip_tensor = "blk.3.ffn_down.weight"}, PONDER_ERR_NOT_FOUND,
                      "tensor 'blk.3.ffn_down.weight' is missing");
}

static void test_wrong_shape(void **state)
{
    (void)state;
    expect_load_error(&(defect){.reshape = "blk.0.attn_q.weight"}, PONDER_ERR_FORMAT,
                      "'blk.0.attn_q.weight' has wrong shape");
}

static void test_unsupported_type(void **state)
{
    (void)state;
    expect_load_error(&(defect){.retype = "blk.1.ffn_up.weight"}, PONDER_ERR_UNSUPPORTED,
                      "tensor 'blk.1.ffn_up.weight' has type MXFP4");
}

static void test_bad_decode_calls(void **state)
{
    (void)state;
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(tu_shared(STORIES), NULL, &m, &err), PONDER_OK);
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 8;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    const int32_t bad[] = {1, 512};
    assert_int_equal(ponder_context_decode(ctx, bad, 2, NULL, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "token id 512"));
    const int32_t neg = -3;
    assert_int_equal(ponder_context_decode(ctx, &neg, 1, NULL, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_context_n_past(ctx), 0); /* rejected calls leave the context as it was */
    const int32_t nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(ponder_context_decode(ctx, nine, 9, NULL, &err), PONDER_ERR_RANGE);
    assert_non_null(strstr(err.msg, "do not fit"));
    assert_int_equal(ponder_context_decode(ctx, nine, 8, NULL, &err), PONDER_OK);
    assert_int_equal(ponder_context_decode(ctx, nine, 1, NULL, &err), PONDER_ERR_RANGE);
    assert_int_equal(ponder_context_decode(ctx, nine, 0, NULL, &err), PONDER_ERR_INVALID_ARG);
    ponder_context_free(ctx);

    cp.type_k = PONDER_TYPE_Q8_0;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Q8_0"));
    cp.type_k = PONDER_TYPE_F16;
    cp.n_ctx = -1;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_ERR_INVALID_ARG);
    ponder_model_free(m);

    assert_int_equal(ponder_model_load("/nonexistent/model.gguf", NULL, &m, &err), PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/model.gguf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsupported_arch), cmocka_unit_test(test_missing_key),
        cmocka_unit_test(test_missing_tensor),   cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_unsupported_type), cmocka_unit_test(test_bad_decode_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
