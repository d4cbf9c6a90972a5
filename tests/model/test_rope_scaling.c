/*
 * test_rope_scaling.c — Phi-3 LongRoPE (rope_factors_long/short tensors, the context-size
 * switch at rope.scaling.original_context_length, rope.scaling.attn_factor) on copies of the
 * synthetic phi3 file with those keys and tensors added.
 *
 * No reference implementation is at hand for LongRoPE files, so the checks are identities
 * that must hold bit for bit: divisors of 1 change nothing; divisors of 2 equal linear
 * scaling by 2 (theta / 2 and 0.5 * theta round alike); the long factors are used exactly
 * when the context exceeds the original length; attn_factor 1 is the default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "ponder/model.h"
#include "testutil.h"

#define PHI3 "models/synthetic/syn-tiny-phi3-F32.gguf"
#define ORIG_CTX 64

typedef struct variant {
    const float *short_div, *long_div; /* NULL: no such tensor */
    float attn_factor;                 /* 0: key absent */
    float linear_factor;               /* 0: no rope.scaling.type */
} variant;

/* Writes the phi3 file with the variant's keys and tensors to a temporary path. */
static char *write_variant(const variant *v, int n_rot)
{
    ponder_error err = {0};
    ponder_gguf *src = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared(PHI3), &src, &err), PONDER_OK);
    ponder_gguf_writer *w = NULL;
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_copy_kv(w, src, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_u32(w, "phi3.rope.scaling.original_context_length", ORIG_CTX, &err),
                     PONDER_OK);
    if (v->attn_factor > 0)
        assert_int_equal(ponder_gguf_writer_set_f32(w, "phi3.rope.scaling.attn_factor", v->attn_factor, &err),
                         PONDER_OK);
    if (v->linear_factor > 0) {
        assert_int_equal(ponder_gguf_writer_set_str(w, "phi3.rope.scaling.type", "linear", &err), PONDER_OK);
        assert_int_equal(ponder_gguf_writer_set_f32(w, "phi3.rope.scaling.factor", v->linear_factor, &err),
                         PONDER_OK);
    }
    for (int64_t i = 0; i < ponder_gguf_n_tensors(src); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(src, i);
        assert_int_equal(ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err),
                         PONDER_OK);
    }
    const int64_t ne[1] = {n_rot / 2};
    if (v->long_div)
        assert_int_equal(ponder_gguf_writer_add_tensor(w, "rope_factors_long.weight", PONDER_TYPE_F32, 1, ne,
                                                       v->long_div, &err),
                         PONDER_OK);
    if (v->short_div)
        assert_int_equal(ponder_gguf_writer_add_tensor(w, "rope_factors_short.weight", PONDER_TYPE_F32, 1, ne,
                                                       v->short_div, &err),
                         PONDER_OK);
    char *path = strdup("/tmp/ponder-rope-XXXXXX");
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    ponder_gguf_free(src);
    return path;
}

static const int32_t PROMPT[] = {1, 400, 261, 306, 263, 285, 297, 443, 338, 304, 266, 412, 290, 471, 317, 269};
#define N_PROMPT ((int32_t)(sizeof PROMPT / sizeof PROMPT[0]))

/* All logits of the prompt from a context of n_ctx tokens (malloc'ed). */
static float *logits_of(const char *path, int32_t n_ctx, int32_t *n_vocab)
{
    ponder_error err = {0};
    ponder_model *m = NULL;
    if (ponder_model_load(path, NULL, &m, &err) != PONDER_OK)
        fail_msg("%s: %s", path, err.msg);
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = n_ctx;
    cp.type_k = PONDER_TYPE_F32;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    *n_vocab = ponder_model_hparams(m)->n_vocab;
    float *out = malloc((size_t)N_PROMPT * (size_t)*n_vocab * sizeof(float));
    assert_non_null(out);
    assert_int_equal(ponder_context_decode(ctx, PROMPT, N_PROMPT, out, &err), PONDER_OK);
    ponder_context_free(ctx);
    ponder_model_free(m);
    return out;
}

static int n_rot_of_phi3(void)
{
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_equal(ponder_model_load(tu_shared(PHI3), NULL, &m, &err), PONDER_OK);
    const int n_rot = ponder_model_hparams(m)->n_rot;
    ponder_model_free(m);
    return n_rot;
}

static bool same(const float *a, const float *b, int32_t n_vocab)
{
    return memcmp(a, b, (size_t)N_PROMPT * (size_t)n_vocab * sizeof(float)) == 0;
}

static void test_longrope_identities(void **state)
{
    (void)state;
    const int n_rot = n_rot_of_phi3();
    float ones[256], twos[256];
    assert_true(n_rot / 2 <= 256);
    for (int i = 0; i < n_rot / 2; i++) {
        ones[i] = 1.0f;
        twos[i] = 2.0f;
    }
    int32_t nv = 0;
    float *base = logits_of(tu_shared(PHI3), 32, &nv);

    char *linear = write_variant(&(variant){.linear_factor = 2.0f}, n_rot);
    char *unit = write_variant(&(variant){.short_div = ones, .long_div = ones, .attn_factor = 1.0f}, n_rot);
    char *switched = write_variant(&(variant){.short_div = ones, .long_div = twos}, n_rot);
    char *scaled = write_variant(&(variant){.short_div = ones, .long_div = ones, .attn_factor = 1.25f}, n_rot);

    float *lin = logits_of(linear, 32, &nv);
    assert_false(same(base, lin, nv)); /* the scaling matters on this prompt */

    float *u = logits_of(unit, 32, &nv);
    assert_true(same(base, u, nv));
    free(u);
    u = logits_of(unit, 2 * ORIG_CTX, &nv);
    assert_true(same(base, u, nv));
    free(u);

    /* within the original context: the short factors (1); past it: the long ones (2) */
    float *s = logits_of(switched, ORIG_CTX, &nv);
    assert_true(same(base, s, nv));
    free(s);
    s = logits_of(switched, ORIG_CTX + 1, &nv);
    assert_true(same(lin, s, nv));
    free(s);

    /* the attention factor scales cos and sin: a different model, not a no-op */
    s = logits_of(scaled, 32, &nv);
    assert_false(same(base, s, nv));
    free(s);

    free(lin);
    free(base);
    const char *paths[] = {linear, unit, switched, scaled};
    for (size_t i = 0; i < 4; i++) {
        unlink(paths[i]);
        free((char *)paths[i]);
    }
}

static void test_longrope_needs_both_tables(void **state)
{
    (void)state;
    const int n_rot = n_rot_of_phi3();
    float ones[256];
    for (int i = 0; i < n_rot / 2; i++)
        ones[i] = 1.0f;
    char *path = write_variant(&(variant){.long_div = ones}, n_rot);
    ponder_error err = {0};
    ponder_model *m = NULL;
    assert_int_not_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    assert_null(m);
    assert_non_null(strstr(err.msg, "rope_factors_short"));
    unlink(path);
    free(path);
}

int main(void)
{
    if (!tu_shared_exists(PHI3)) {
        printf("SKIP: %s not present\n", PHI3);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longrope_identities),
        cmocka_unit_test(test_longrope_needs_both_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
