/* test_files.c — dequantize every tensor of real quantized GGUF files and compare with
 * the same tensor of the F32 file: verifies our block layouts against files written by
 * other tools (the synthetic models' generator, cross-checked with ggml, and llama.cpp's
 * llama-quantize for the stories260K files). Skips files that are absent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/gguf.h"
#include "ponder/tensor.h"
#include "tensor_test.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* Largest relative RMS error of one tensor of each type against its F32 original: a bit
 * above models/synthetic/README.md's figures (Q8_0 0.005, Q6_K 0.018, Q5_x 0.04, Q4_x
 * 0.08, Q3_K 0.15, Q2_K 0.32) and the worst stories260K tensors (a trained model, so less
 * even than the synthetic Gaussians: Q8_0 0.0062, Q5_0 0.050, Q5_1 0.042, IQ4_NL 0.084). */
static const struct {
    const char *name;
    double max_rel_rms;
} FILE_BOUNDS[] = {
    {"F32", 0.0},     {"F16", 0.0003},  {"BF16", 0.002},  {"Q8_0", 0.0065}, {"Q6_K", 0.02},
    {"Q5_0", 0.052},  {"Q5_1", 0.045},  {"Q5_K", 0.04},   {"Q4_0", 0.085},  {"Q4_1", 0.08},
    {"Q4_K", 0.08},   {"IQ4_NL", 0.09}, {"Q3_K", 0.16},   {"Q2_K", 0.34},
};

typedef struct {
    const char *type;
    double num, den; /* sums of squared error and squared reference */
    int n_tensors;
} type_stats;

static type_stats STATS[PONDER_TYPE_COUNT];

static double file_bound(const char *name)
{
    for (size_t i = 0; i < sizeof FILE_BOUNDS / sizeof FILE_BOUNDS[0]; i++)
        if (strcmp(FILE_BOUNDS[i].name, name) == 0)
            return FILE_BOUNDS[i].max_rel_rms;
    fail_msg("no file error bound for type %s", name);
    return 0;
}

static int64_t n_elems(const ponder_gguf_tensor *t)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        n *= t->ne[d];
    return n;
}

/* Compares every tensor of qrel with the same-named F32 tensor of frel; returns the
 * number of tensors compared (0 if a file is missing). */
static int compare_file(const char *qrel, const char *frel)
{
    if (!tu_shared_exists(qrel) || !tu_shared_exists(frel)) {
        print_message("  (skipping %s: not present)\n", qrel);
        return 0;
    }
    ponder_gguf *q = NULL, *f = NULL;
    ponder_error err;
    if (ponder_gguf_open(tu_shared(qrel), &q, &err) != PONDER_OK)
        fail_msg("%s: %s", qrel, err.msg);
    if (ponder_gguf_open(tu_shared(frel), &f, &err) != PONDER_OK)
        fail_msg("%s: %s", frel, err.msg);
    int n_compared = 0;
    for (int64_t i = 0; i < ponder_gguf_n_tensors(q); i++) {
        const ponder_gguf_tensor *tq = ponder_gguf_tensor_at(q, i);
        const ponder_gguf_tensor *tf = ponder_gguf_find_tensor(f, tq->name);
        if (!tf)
            fail_msg("%s: tensor %s missing from %s", qrel, tq->name, frel);
        assert_int_equal(tf->type, PONDER_TYPE_F32);
        assert_int_equal(tq->n_dims, tf->n_dims);
        for (uint32_t d = 0; d < tq->n_dims; d++)
            assert_int_equal(tq->ne[d], tf->ne[d]);
        const int64_t n = n_elems(tq), ne0 = tq->ne[0];
        size_t row_bytes;
        assert_int_equal(ponder_type_row_bytes(tq->type, ne0, &row_bytes, NULL), PONDER_OK);
        float *got = malloc((size_t)n * sizeof *got), *ref = malloc((size_t)n * sizeof *ref);
        assert_true(got && ref);
        memcpy(ref, tf->data, (size_t)n * sizeof *ref);
        for (int64_t r = 0; r < n / ne0; r++) {
            if (ponder_dequantize_row(tq->type, (const uint8_t *)tq->data + (size_t)r * row_bytes,
                                      got + r * ne0, ne0, &err) != PONDER_OK)
                fail_msg("%s: %s: %s", qrel, tq->name, err.msg);
        }
        const char *tname = ponder_type_name(tq->type);
        const double e = tt_rel_rms(got, ref, n);
        if (e > file_bound(tname))
            fail_msg("%s: %s (%s) rel rms %.5f > %.5f", qrel, tq->name, tname, e, file_bound(tname));
        /* plain float types: the file's rounding is ours, bit for bit */
        if (tq->type == PONDER_TYPE_F16 || tq->type == PONDER_TYPE_BF16) {
            const uint16_t *h = tq->data;
            for (int64_t k = 0; k < n; k++) {
                const uint16_t want = tq->type == PONDER_TYPE_F16 ? ponder_f32_to_f16(ref[k])
                                                                  : ponder_f32_to_bf16(ref[k]);
                if (h[k] != want)
                    fail_msg("%s: %s[%lld]: file 0x%04x, ours 0x%04x", qrel, tq->name, (long long)k, h[k], want);
            }
        }
        type_stats *s = &STATS[tq->type];
        s->type = tname;
        for (int64_t k = 0; k < n; k++) {
            const double d = (double)got[k] - ref[k];
            s->num += d * d;
            s->den += (double)ref[k] * ref[k];
        }
        s->n_tensors++;
        n_compared++;
        free(got);
        free(ref);
    }
    ponder_gguf_free(q);
    ponder_gguf_free(f);
    return n_compared;
}

static void print_stats(const char *title)
{
    print_message("  %s\n", title);
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        type_stats *s = &STATS[t];
        if (!s->n_tensors)
            continue;
        print_message("    %-7s %3d tensors  rel rms %.5f\n", s->type, s->n_tensors,
                      s->den > 0 ? sqrt(s->num / s->den) : 0.0);
    }
    memset(STATS, 0, sizeof STATS);
}

static void test_synthetic_tiny(void **state)
{
    (void)state;
    static const char *types[] = {"F16",  "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                  "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M"};
    int total = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/synthetic/syn-tiny-%s.gguf", types[i]);
        const int n = compare_file(rel, "models/synthetic/syn-tiny-F32.gguf");
        assert_true(n == 0 || n == 21); /* 16 matrices + 5 norms */
        total += n;
    }
    print_stats("syn-tiny-*.gguf vs syn-tiny-F32.gguf:");
    if (total == 0)
        skip();
}

static void test_stories260k(void **state)
{
    (void)state;
    static const char *files[] = {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"};
    int total = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/stories260K/quantized/stories260K-%s.gguf", files[i]);
        total += compare_file(rel, "models/stories260K/stories260K.gguf");
    }
    print_stats("stories260K-*.gguf vs stories260K.gguf:");
    if (total == 0)
        skip();
}

/* The stories260K files were written by llama-quantize (no importance matrix), whose
 * quantizers are the reference ones ours follow: requantizing the F32 tensors must give
 * the file's bytes. */
static void test_stories260k_requantize(void **state)
{
    (void)state;
    static const char *files[] = {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"};
    const char *frel = "models/stories260K/stories260K.gguf";
    int n_checked = 0;
    int64_t n_blocks_total = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/stories260K/quantized/stories260K-%s.gguf", files[i]);
        if (!tu_shared_exists(rel) || !tu_shared_exists(frel))
            continue;
        ponder_gguf *q = NULL, *f = NULL;
        ponder_error err;
        assert_int_equal(ponder_gguf_open(tu_shared(rel), &q, &err), PONDER_OK);
        assert_int_equal(ponder_gguf_open(tu_shared(frel), &f, &err), PONDER_OK);
        for (int64_t k = 0; k < ponder_gguf_n_tensors(q); k++) {
            const ponder_gguf_tensor *tq = ponder_gguf_tensor_at(q, k);
            const ponder_gguf_tensor *tf = ponder_gguf_find_tensor(f, tq->name);
            assert_non_null(tf);
            const ponder_type_traits *tr = ponder_type_get_traits(tq->type);
            if (tq->type == PONDER_TYPE_F32)
                continue;
            const int64_t n = n_elems(tq), ne0 = tq->ne[0];
            size_t row_bytes;
            assert_int_equal(ponder_type_row_bytes(tq->type, ne0, &row_bytes, NULL), PONDER_OK);
            uint8_t *mine = malloc(row_bytes);
            float *row = malloc((size_t)ne0 * sizeof *row);
            assert_true(mine && row);
            int64_t bad_blocks = 0, n_blocks = 0;
            for (int64_t r = 0; r < n / ne0; r++) {
                memcpy(row, (const float *)tf->data + r * ne0, (size_t)ne0 * sizeof *row);
                assert_int_equal(ponder_quantize_row(tq->type, row, mine, ne0, NULL), PONDER_OK);
                const uint8_t *theirs = (const uint8_t *)tq->data + (size_t)r * row_bytes;
                for (int64_t b = 0; b < ne0 / tr->block_elems; b++, n_blocks++)
                    if (memcmp(mine + b * tr->block_bytes, theirs + b * tr->block_bytes, tr->block_bytes))
                        bad_blocks++;
            }
            if (bad_blocks)
                fail_msg("%s: %s (%s): %lld of %lld requantized blocks differ from the file", rel, tq->name,
                         tr->name, (long long)bad_blocks, (long long)n_blocks);
            n_checked++;
            n_blocks_total += n_blocks;
            free(mine);
            free(row);
        }
        ponder_gguf_free(q);
        ponder_gguf_free(f);
    }
    print_message("  requantized %d tensors (%lld blocks) bit-identical to llama-quantize's\n", n_checked,
                  (long long)n_blocks_total);
    if (n_checked == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_tiny),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_stories260k_requantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
