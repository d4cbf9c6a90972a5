/*
 * test_quantize_file.c — ponder_quantize_file on real files.
 *
 * References:
 *  - shared/models/stories260K/quantized/stories260K-<preset>.gguf, written by
 *    llama-quantize (c392e509) from stories260K.gguf: our output must have the same
 *    tensor types, the same tensor bytes and the same metadata, key for key, in order.
 *  - shared/models/synthetic/syn-tiny-*.gguf: types chosen by llama-quantize's rules
 *    (the weights are round-to-nearest, not llama-quantize's, so only types and, for
 *    plain float conversions, bytes are compared).
 *  - ponder_quantize_row / ponder_dequantize_row (the tensor module's reference
 *    quantizers) for the converted values, so the row splitting across threads and the
 *    F16/BF16/requantize input paths are checked element for element.
 * Plus the model loading the result, and each failure mode leaving no file behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/quantize.h"
#include "testutil.h"

#define STORIES "models/stories260K/stories260K.gguf"
#define SYN "models/synthetic/"
#define ROW_STRIDE 7

static char tmpdir[] = "/tmp/ponder-quantize-XXXXXX";
static ponder_pool *pool2;

/* Paths in the temporary folder, and how many files it holds (to catch leftovers). */
static const char *tmp_path(const char *name) { return tu_path_in(tmpdir, name); }
static int count_files(void) { return tu_count_files(tmpdir); }

static void clean_dir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rmdir(p);
        else
            unlink(p);
    }
    closedir(d);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    ponder_error err = {0};
    return ponder_pool_create(2, &pool2, &err) == PONDER_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    clean_dir();
    rmdir(tmpdir);
    ponder_pool_free(pool2);
    return 0;
}

static ponder_gguf *open_ok(const char *path)
{
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    if (ponder_gguf_open(path, &g, &err) != PONDER_OK)
        fail_msg("open %s: %s", path, err.msg);
    return g;
}

static ponder_quantize_report quantize_ok(const char *in, const char *out, const char *target, bool pure,
                                          bool requant, ponder_pool *pool)
{
    ponder_quantize_params p = ponder_quantize_params_default();
    p.target = target;
    p.pure = pure;
    p.allow_requantize = requant;
    p.pool = pool;
    ponder_quantize_report r;
    ponder_error err = {0};
    if (ponder_quantize_file(in, out, &p, &r, &err) != PONDER_OK)
        fail_msg("quantize %s to %s: %s", in, target, err.msg);
    return r;
}

static size_t elem_size(ponder_gguf_type t)
{
    switch (t) {
    case PONDER_GGUF_UINT8: case PONDER_GGUF_INT8: case PONDER_GGUF_BOOL: return 1;
    case PONDER_GGUF_UINT16: case PONDER_GGUF_INT16: return 2;
    case PONDER_GGUF_UINT32: case PONDER_GGUF_INT32: case PONDER_GGUF_FLOAT32: return 4;
    default: return 8;
    }
}

static bool value_equal(const ponder_gguf_value *a, const ponder_gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case PONDER_GGUF_STRING:
        return a->v.str.len == b->v.str.len && memcmp(a->v.str.data, b->v.str.data, (size_t)a->v.str.len) == 0;
    case PONDER_GGUF_ARRAY: {
        const ponder_gguf_array *x = &a->v.arr, *y = &b->v.arr;
        if (x->elem_type != y->elem_type || x->n != y->n)
            return false;
        if (x->elems) {
            for (uint64_t i = 0; i < x->n; i++)
                if (!value_equal(&x->elems[i], &y->elems[i]))
                    return false;
            return true;
        }
        return memcmp(x->data, y->data, (size_t)x->n * elem_size(x->elem_type)) == 0;
    }
    case PONDER_GGUF_FLOAT32: case PONDER_GGUF_FLOAT64: return a->v.f64 == b->v.f64;
    case PONDER_GGUF_BOOL: return a->v.b == b->v.b;
    default: return a->v.u64 == b->v.u64;
    }
}

/* Every tensor of `ours` has the type (and with `bytes`, the data) of the same-named
 * tensor of `ref`; the tensor sets are equal. Returns the number of byte mismatches. */
static int compare_tensors(const ponder_gguf *ours, const ponder_gguf *ref, bool bytes)
{
    assert_int_equal(ponder_gguf_n_tensors(ours), ponder_gguf_n_tensors(ref));
    int n_diff = 0;
    for (int64_t i = 0; i < ponder_gguf_n_tensors(ours); i++) {
        const ponder_gguf_tensor *a = ponder_gguf_tensor_at(ours, i);
        const ponder_gguf_tensor *b = ponder_gguf_find_tensor(ref, a->name);
        if (!b)
            fail_msg("%s: tensor %s missing from %s", ponder_gguf_path(ours), a->name, ponder_gguf_path(ref));
        if (a->type != b->type)
            fail_msg("%s: tensor %s is %s, reference %s", ponder_gguf_path(ours), a->name, ponder_type_name(a->type),
                     ponder_type_name(b->type));
        assert_memory_equal(a->ne, b->ne, sizeof a->ne);
        if (bytes && (a->n_bytes != b->n_bytes || memcmp(a->data, b->data, (size_t)a->n_bytes) != 0)) {
            print_message("%s: tensor %s (%s) differs from the reference\n", ponder_gguf_path(ours), a->name,
                          ponder_type_name(a->type));
            n_diff++;
        }
    }
    return n_diff;
}

/* stories260K: llama-quantize's files, reproduced tensor for tensor and key for key. */
static void test_stories_matches_llama_quantize(void **state)
{
    (void)state;
    static const char *const PRESETS[] = {"Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"};
    for (size_t k = 0; k < sizeof PRESETS / sizeof PRESETS[0]; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/stories260K/quantized/stories260K-%s.gguf", PRESETS[k]);
        const char *out = tmp_path("stories.gguf");
        ponder_quantize_report r = quantize_ok(tu_shared(STORIES), out, PRESETS[k], false, false, pool2);
        ponder_gguf *a = open_ok(out), *b = open_ok(tu_shared(rel));
        assert_int_equal(compare_tensors(a, b, true), 0);
        /* metadata: the same keys in the same order with the same values */
        assert_int_equal(ponder_gguf_n_kv(a), ponder_gguf_n_kv(b));
        for (int64_t i = 0; i < ponder_gguf_n_kv(a); i++) {
            assert_string_equal(ponder_gguf_kv_key(a, i), ponder_gguf_kv_key(b, i));
            if (!value_equal(ponder_gguf_kv_value(a, i), ponder_gguf_kv_value(b, i)))
                fail_msg("%s: key %s differs", PRESETS[k], ponder_gguf_kv_key(a, i));
        }
        /* the input's tensor order (llama-quantize sorts by layer and name instead) */
        ponder_gguf *in = open_ok(tu_shared(STORIES));
        for (int64_t i = 0; i < ponder_gguf_n_tensors(in); i++)
            assert_string_equal(ponder_gguf_tensor_at(a, i)->name, ponder_gguf_tensor_at(in, i)->name);
        assert_int_equal(r.n_tensors, 48);
        assert_int_equal(r.file_bytes_out, ponder_gguf_file_size(b)); /* same alignment and padding */
        assert_int_equal(r.bytes_in, 292800 * 4);
        ponder_gguf_free(in);
        ponder_gguf_free(a);
        ponder_gguf_free(b);
    }
    assert_int_equal(count_files(), 1); /* no temporary files left */
    clean_dir();
}

/* Relative RMS error of the dequantized output against the float input. */
static double rel_rms(const float *x, const float *y, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        den += (double)x[i] * x[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Row r of tensor o equals ponder_quantize_row of its input floats x (q: row scratch). */
static void check_row(const ponder_gguf_tensor *o, const float *x, int64_t r, void *q, size_t row_bytes,
                      const char *out_path)
{
    ponder_error err = {0};
    assert_int_equal(ponder_quantize_row(o->type, x, q, o->ne[0], &err), PONDER_OK);
    if (memcmp(q, (const uint8_t *)o->data + (size_t)r * row_bytes, row_bytes) != 0)
        fail_msg("%s: tensor %s (%s) row %lld is not the reference quantization", out_path, o->name,
                 ponder_type_name(o->type), (long long)r);
}

/* Each converted tensor of `out` holds exactly ponder_quantize_row of the input rows
 * (read as floats, dequantized first if needed; sampled rows) and stays within max_rel of
 * the input. */
static void check_values(const char *in_path, const char *out_path, double max_rel)
{
    ponder_gguf *in = open_ok(in_path), *out = open_ok(out_path);
    ponder_error err = {0};
    int n_checked = 0;
    for (int64_t i = 0; i < ponder_gguf_n_tensors(out); i++) {
        const ponder_gguf_tensor *o = ponder_gguf_tensor_at(out, i);
        const ponder_gguf_tensor *s = ponder_gguf_find_tensor(in, o->name);
        assert_non_null(s);
        if (o->type == s->type) {
            assert_int_equal(o->n_bytes, s->n_bytes);
            assert_memory_equal(o->data, s->data, (size_t)o->n_bytes);
            continue;
        }
        size_t n = (size_t)(s->ne[0] * s->ne[1] * s->ne[2] * s->ne[3]);
        const int64_t ne0 = s->ne[0], n_rows = (int64_t)n / ne0;
        size_t row_bytes;
        assert_int_equal(ponder_type_row_bytes(o->type, ne0, &row_bytes, &err), PONDER_OK);
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        void *q = malloc(row_bytes);
        assert_true(x && y && q);
        assert_int_equal(ponder_dequantize_row(s->type, s->data, x, (int64_t)n, &err), PONDER_OK);
        /* rows 0, ROW_STRIDE, ... and the last: requantizing everything would double the
         * test's time, and the thread split is checked separately */
        for (int64_t r = 0; r < n_rows; r += ROW_STRIDE)
            check_row(o, x + r * ne0, r, q, row_bytes, out_path);
        check_row(o, x + (n_rows - 1) * ne0, n_rows - 1, q, row_bytes, out_path);
        assert_int_equal(ponder_dequantize_row(o->type, o->data, y, (int64_t)n, &err), PONDER_OK);
        double e = rel_rms(x, y, n);
        if (e > max_rel)
            fail_msg("%s: tensor %s (%s) relative RMS error %g > %g", out_path, o->name, ponder_type_name(o->type), e,
                     max_rel);
        n_checked++;
        free(x);
        free(y);
        free(q);
    }
    assert_true(n_checked > 0);
    ponder_gguf_free(in);
    ponder_gguf_free(out);
}

/* The types ponder_quantize_file would give the tensors of `in` (plan only). */
static void check_plan_matches(const char *in_path, const char *target, bool pure, const char *ref_path)
{
    ponder_gguf *in = open_ok(in_path), *ref = open_ok(ref_path);
    ponder_error err = {0};
    ponder_quantize_model_info info;
    assert_int_equal(ponder_quantize_model_info_read(in, &info, &err), PONDER_OK);
    const int64_t n = ponder_gguf_n_tensors(in);
    ponder_quantize_tensor_desc *d = calloc((size_t)n, sizeof *d);
    ponder_type *types = calloc((size_t)n, sizeof *types);
    assert_true(d && types);
    for (int64_t i = 0; i < n; i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(in, i);
        d[i] = (ponder_quantize_tensor_desc){t->name, {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}, t->type};
    }
    assert_int_equal(ponder_quantize_plan(ponder_quantize_preset_find(target), pure, &info, d, n, types, NULL, &err),
                     PONDER_OK);
    for (int64_t i = 0; i < n; i++) {
        const ponder_gguf_tensor *r = ponder_gguf_find_tensor(ref, d[i].name);
        assert_non_null(r);
        if (types[i] != r->type)
            fail_msg("%s %s: %s is %s, reference %s", target, pure ? "pure" : "", d[i].name,
                     ponder_type_name((int)types[i]), ponder_type_name(r->type));
    }
    free(d);
    free(types);
    ponder_gguf_free(in);
    ponder_gguf_free(ref);
}

/* syn-tiny: the mixes as llama-quantize assigns them, and the pure files with --pure
 * (names llama.cpp uses for mixes) or the pure presets Q3_K / Q4_K / Q5_K. The
 * conversions run for a few targets (the row plumbing does not depend on the type; the
 * quantizers have their own tests); the plan is checked for all. */
static void test_syn_tiny_types(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        bool pure, convert;
        double max_rel; /* error bound for random normal weights (about twice the measured) */
    } CASES[] = {
        {"Q4_K_M", false, true, 0.12}, {"Q8_0", false, true, 0.01}, {"Q6_K", false, true, 0.03},
        {"Q4_0", true, true, 0.15},    {"Q5_1", true, true, 0.08},  {"Q3_K", false, true, 0.25},
        {"F16", false, true, 5e-4},    {"BF16", false, true, 4e-3}, {"Q4_1", true, false, 0},
        {"Q5_0", true, false, 0},      {"Q2_K", true, false, 0},    {"Q4_K", false, false, 0},
        {"Q5_K", false, false, 0},
    };
    char in[512];
    snprintf(in, sizeof in, "%s", tu_shared(SYN "syn-tiny-F32.gguf"));
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        char ref[512];
        snprintf(ref, sizeof ref, "%s", tu_shared(SYN "syn-tiny-"));
        snprintf(ref + strlen(ref), sizeof ref - strlen(ref), "%s.gguf", CASES[k].target);
        check_plan_matches(in, CASES[k].target, CASES[k].pure, ref);
        if (!CASES[k].convert)
            continue;
        const char *out = tmp_path("tiny.gguf");
        quantize_ok(in, out, CASES[k].target, CASES[k].pure, false, pool2);
        ponder_gguf *a = open_ok(out), *b = open_ok(ref);
        /* plain float conversions round the same way as the generator: equal bytes */
        bool floats = strcmp(CASES[k].target, "F16") == 0 || strcmp(CASES[k].target, "BF16") == 0;
        assert_int_equal(compare_tensors(a, b, floats), 0);
        const ponder_gguf_value *fa = ponder_gguf_get(a, "general.file_type"),
                                *fb = ponder_gguf_get(b, "general.file_type");
        assert_non_null(fa);
        assert_non_null(fb);
        assert_int_equal(fa->v.u64, fb->v.u64);
        ponder_gguf_free(a);
        ponder_gguf_free(b);
        check_values(in, out, CASES[k].max_rel);
    }
    clean_dir();
}

/* The other architectures: fused QKV (phi3), experts (MoE, requantized from Q8_0). */
static void test_syn_other_archs(void **state)
{
    (void)state;
    const char *out = tmp_path("arch.gguf");
    quantize_ok(tu_shared(SYN "syn-tiny-phi3-F32.gguf"), out, "Q8_0", false, false, pool2);
    ponder_gguf *a = open_ok(out), *b = open_ok(tu_shared(SYN "syn-tiny-phi3-Q8_0.gguf"));
    assert_int_equal(compare_tensors(a, b, false), 0);
    ponder_gguf_free(a);
    ponder_gguf_free(b);
    check_values(tu_shared(SYN "syn-tiny-phi3-F32.gguf"), out, 0.01);

    quantize_ok(tu_shared(SYN "syn-tiny-moe-Q8_0.gguf"), out, "Q4_K_M", false, true, pool2);
    a = open_ok(out);
    b = open_ok(tu_shared(SYN "syn-tiny-moe-Q4_K_M.gguf"));
    assert_int_equal(compare_tensors(a, b, false), 0);
    ponder_gguf_free(a);
    ponder_gguf_free(b);
    check_values(tu_shared(SYN "syn-tiny-moe-Q8_0.gguf"), out, 0.12);
    clean_dir();
}

/* The on-demand F32 models (scripts/make-fixtures.sh), when present: their types against
 * the shipped files of the same preset. Skipped if the fixtures were not made. */
static void test_fixture_models(void **state)
{
    (void)state;
    static const struct {
        const char *in, *target, *ref;
        double max_rel;
    } CASES[] = {
        {"syn-tiny-qwen2-F32.gguf", "Q8_0", "syn-tiny-qwen2-Q8_0.gguf", 0.01},
        {"syn-tiny-gemma2-F32.gguf", "Q8_0", "syn-tiny-gemma2-Q8_0.gguf", 0.01},
        {"syn-tiny-moe-F32.gguf", "Q4_K_M", "syn-tiny-moe-Q4_K_M.gguf", 0.12},
    };
    int n_run = 0;
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        char rel[128], in[4096];
        snprintf(rel, sizeof rel, "shared/" SYN "%s", CASES[k].in);
        const char *found = tu_model_path(rel);
        if (!found)
            continue;
        snprintf(in, sizeof in, "%s", found);
        const char *out = tmp_path("fixture.gguf");
        quantize_ok(in, out, CASES[k].target, false, false, pool2);
        snprintf(rel, sizeof rel, SYN "%s", CASES[k].ref);
        ponder_gguf *a = open_ok(out), *b = open_ok(tu_shared(rel));
        assert_int_equal(compare_tensors(a, b, false), 0);
        ponder_gguf_free(a);
        ponder_gguf_free(b);
        check_values(in, out, CASES[k].max_rel);
        n_run++;
    }
    clean_dir();
    if (n_run == 0)
        skip();
}

/* F16 and BF16 inputs go through their to_float; the thread count changes no byte. */
static void test_inputs_and_threads(void **state)
{
    (void)state;
    const char *o1 = tmp_path("one.gguf"), *o3 = tmp_path("three.gguf");
    quantize_ok(tu_shared(SYN "syn-tiny-F16.gguf"), o1, "Q8_0", false, false, NULL);
    ponder_gguf *a = open_ok(o1), *b = open_ok(tu_shared(SYN "syn-tiny-Q8_0.gguf"));
    assert_int_equal(compare_tensors(a, b, false), 0);
    ponder_gguf_free(a);
    ponder_gguf_free(b);
    check_values(tu_shared(SYN "syn-tiny-F16.gguf"), o1, 0.01);

    quantize_ok(tu_shared(SYN "syn-tiny-BF16.gguf"), o1, "Q5_K_M", false, false, NULL);
    check_values(tu_shared(SYN "syn-tiny-BF16.gguf"), o1, 0.06);
    ponder_pool *pool3 = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_pool_create(3, &pool3, &err), PONDER_OK);
    quantize_ok(tu_shared(SYN "syn-tiny-BF16.gguf"), o3, "Q5_K_M", false, false, pool3);
    ponder_pool_free(pool3);
    size_t n1, n3;
    char *f1 = tu_read_file(o1, &n1), *f3 = tu_read_file(o3, &n3);
    assert_non_null(f1);
    assert_non_null(f3);
    assert_int_equal(n1, n3);
    assert_memory_equal(f1, f3, n1);
    free(f1);
    free(f3);
    clean_dir();
}

/* Metadata overrides the CLI cannot express are refused by the library, and nothing is
 * written: a key-less one, a string without its text, a type other than float/bool/str. */
static void test_override_errors(void **state)
{
    (void)state;
    const char *out = tmp_path("kv.gguf");
    const ponder_quantize_kv bad[] = {
        {.key = "", .type = PONDER_GGUF_FLOAT32, .f = 1.0},
        {.key = "k", .type = PONDER_GGUF_STRING, .str = NULL},
        {.key = "k", .type = PONDER_GGUF_UINT32},
    };
    const char *why[] = {"no key", "no string", "only float, bool and str"};
    for (int i = 0; i < 3; i++) {
        ponder_quantize_params p = ponder_quantize_params_default();
        p.target = "F16";
        p.kv = &bad[i];
        p.n_kv = 1;
        ponder_error err = {0};
        assert_int_equal(ponder_quantize_file(tu_shared(STORIES), out, &p, NULL, &err), PONDER_ERR_INVALID_ARG);
        if (!strstr(err.msg, why[i]))
            fail_msg("override %d: '%s' lacks '%s'", i, err.msg, why[i]);
        assert_int_equal(count_files(), 0);
    }
}

/* A quantized input needs allow_requantize when a quantized tensor must change type;
 * tensors that keep their type are copied without it. */
static void test_requantize(void **state)
{
    (void)state;
    const char *q = tmp_path("q.gguf"), *out = tmp_path("out.gguf");
    quantize_ok(tu_shared(STORIES), q, "Q4_K_M", false, false, pool2);
    ponder_quantize_params p = ponder_quantize_params_default();
    p.target = "Q8_0";
    ponder_error err = {0};
    assert_int_equal(ponder_quantize_file(q, out, &p, NULL, &err), PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "already quantized"));
    assert_non_null(strstr(err.msg, "token_embd.weight")); /* Q5_0 → Q8_0 is the first one */
    assert_int_equal(count_files(), 1);

    /* the same preset again: nothing changes type, so every byte is copied */
    quantize_ok(q, out, "Q4_K_M", false, false, NULL);
    ponder_gguf *a = open_ok(out), *b = open_ok(q);
    assert_int_equal(compare_tensors(a, b, true), 0);
    ponder_gguf_free(a);
    ponder_gguf_free(b);

    ponder_quantize_report r = quantize_ok(q, out, "Q8_0", false, true, pool2);
    assert_true(r.n_converted > 0);
    check_values(q, out, 0.1);
    clean_dir();
}

/* general.alignment is kept (and tensors placed on it). */
static void test_alignment_kept(void **state)
{
    (void)state;
    ponder_gguf *src = open_ok(tu_shared(STORIES));
    ponder_gguf_writer *w = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_copy_kv(w, src, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_alignment(w, 64, &err), PONDER_OK);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(src); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(src, i);
        assert_int_equal(ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err),
                         PONDER_OK);
    }
    const char *in = tmp_path("aligned.gguf"), *out = tmp_path("out.gguf");
    assert_int_equal(ponder_gguf_writer_write(w, in, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    ponder_gguf_free(src);
    quantize_ok(in, out, "Q4_K_M", false, false, pool2);
    ponder_gguf *g = open_ok(out);
    assert_int_equal(ponder_gguf_alignment(g), 64);
    assert_true(ponder_gguf_find_kv(g, "general.alignment") >= 0);
    assert_int_equal(ponder_gguf_data_offset(g) % 64, 0);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++)
        assert_int_equal(ponder_gguf_tensor_at(g, i)->offset % 64, 0);
    ponder_gguf_free(g);
    clean_dir();
}

/* The quantized model loads and computes exactly what llama-quantize's file computes. */
static void test_model_round_trip(void **state)
{
    (void)state;
    const char *out = tmp_path("model.gguf");
    quantize_ok(tu_shared(STORIES), out, "Q4_K_M", false, false, pool2);
    const char *paths[2] = {out, tu_shared("models/stories260K/quantized/stories260K-Q4_K_M.gguf")};
    float *logits[2] = {NULL, NULL};
    int32_t n_vocab = 0;
    const int32_t tokens[] = {1, 403, 407, 261, 378}; /* BOS and a few pieces */
    for (int k = 0; k < 2; k++) {
        ponder_model *m = NULL;
        ponder_context *ctx = NULL;
        ponder_error err = {0};
        if (ponder_model_load(paths[k], NULL, &m, &err) != PONDER_OK)
            fail_msg("load %s: %s", paths[k], err.msg);
        assert_int_equal(ponder_context_create(m, NULL, &ctx, &err), PONDER_OK);
        n_vocab = ponder_model_hparams(m)->n_vocab;
        logits[k] = malloc(sizeof tokens / sizeof tokens[0] * (size_t)n_vocab * sizeof(float));
        assert_non_null(logits[k]);
        assert_int_equal(ponder_context_decode(ctx, tokens, 5, logits[k], &err), PONDER_OK);
        ponder_context_free(ctx);
        ponder_model_free(m);
    }
    assert_memory_equal(logits[0], logits[1], 5 * (size_t)n_vocab * sizeof(float));
    free(logits[0]);
    free(logits[1]);
    clean_dir();
}

static bool stop_after_3(const ponder_quantize_progress *p, void *user)
{
    int *calls = user;
    (*calls)++;
    assert_true(p->index == *calls - 1 && p->n_tensors == 48 && p->name);
    return p->index < 2;
}

static ponder_status quantize_status(const char *in, const char *out, const char *target, ponder_error *err)
{
    ponder_quantize_params p = ponder_quantize_params_default();
    p.target = target;
    return ponder_quantize_file(in, out, &p, NULL, err);
}

/* Every failure: the right status, a message naming the problem, no file left. */
static void test_failures_leave_nothing(void **state)
{
    (void)state;
    ponder_error err = {0};
    const char *out = tmp_path("out.gguf");

    assert_int_equal(quantize_status(tmp_path("missing.gguf"), out, "Q8_0", &err), PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.gguf"));
    assert_int_equal(count_files(), 0);

    const char *text = tmp_path("text.gguf");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("this is not a GGUF file, just some text that is long enough to have a header\n", f);
    fclose(f);
    assert_int_equal(quantize_status(text, out, "Q8_0", &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "text.gguf"));

    /* a truncated model */
    size_t n;
    char *bytes = tu_read_file(tu_shared(STORIES), &n);
    assert_non_null(bytes);
    const char *cut = tmp_path("cut.gguf");
    f = fopen(cut, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n / 2, f), n / 2);
    fclose(f);
    free(bytes);
    assert_int_equal(quantize_status(cut, out, "Q8_0", &err), PONDER_ERR_FORMAT);

    assert_int_equal(quantize_status(tu_shared(STORIES), out, "Q4_K_X", &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "Q4_K_X"));
    assert_int_equal(quantize_status(tu_shared(STORIES), tmp_path("no/such/dir/out.gguf"), "Q8_0", &err),
                     PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "no/such/dir/out.gguf"));
    /* an existing directory is not replaced */
    assert_int_equal(mkdir(tmp_path("adir"), 0700), 0);
    assert_int_equal(quantize_status(tu_shared(STORIES), tmp_path("adir"), "Q8_0", &err), PONDER_ERR_IO);
    assert_int_equal(rmdir(tmp_path("adir")), 0);
    assert_int_equal(count_files(), 2); /* text.gguf and cut.gguf only */

    /* stopped by the progress callback after 3 tensors */
    int calls = 0;
    ponder_quantize_params p = ponder_quantize_params_default();
    p.target = "Q8_0";
    p.progress = stop_after_3;
    p.progress_user = &calls;
    assert_int_equal(ponder_quantize_file(tu_shared(STORIES), out, &p, NULL, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(calls, 3);
    assert_int_equal(count_files(), 2);

    /* an existing output survives a failed run untouched */
    f = fopen(out, "w");
    assert_non_null(f);
    fputs("old", f);
    fclose(f);
    calls = 0;
    assert_int_equal(ponder_quantize_file(tu_shared(STORIES), out, &p, NULL, &err), PONDER_ERR_INVALID_ARG);
    char *old = tu_read_file(out, &n);
    assert_non_null(old);
    assert_string_equal(old, "old");
    free(old);
    assert_int_equal(count_files(), 3);
    clean_dir();
}

/* Writes a GGUF with the given tensors (zero-filled data) and no metadata but the arch. */
static void write_model(const char *path, const char *const *names, const ponder_type *types,
                        const int64_t (*ne)[2], int n)
{
    ponder_gguf_writer *w = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_str(w, "general.architecture", "llama", &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_u32(w, "llama.block_count", 1, &err), PONDER_OK);
    static uint8_t zeros[4096];
    for (int i = 0; i < n; i++)
        assert_int_equal(ponder_gguf_writer_add_tensor(w, names[i], types[i], 2, ne[i], zeros, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
}

/* Tensors a converter would not write but a GGUF may hold: an integer matrix (cannot be
 * converted: a clean error), an empty one (converted to nothing), zeros (exact). */
static void test_odd_tensors(void **state)
{
    (void)state;
    const char *in = tmp_path("odd.gguf"), *out = tmp_path("out.gguf");
    const char *names[] = {"blk.0.attn_q.weight", "blk.0.empty.weight", "blk.0.ints.weight"};
    const ponder_type types[] = {PONDER_TYPE_F32, PONDER_TYPE_F32, PONDER_TYPE_I32};
    const int64_t ne[][2] = {{256, 4}, {0, 4}, {32, 2}};
    write_model(in, names, types, ne, 3);
    ponder_error err = {0};
    assert_int_equal(quantize_status(in, out, "Q4_K_M", &err), PONDER_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "blk.0.ints.weight"));
    assert_non_null(strstr(err.msg, "I32"));
    assert_int_equal(count_files(), 1);

    write_model(in, names, types, ne, 2);
    ponder_quantize_report r = quantize_ok(in, out, "Q4_K_M", false, false, pool2);
    assert_int_equal(r.n_converted, 2);
    ponder_gguf *g = open_ok(out);
    const ponder_gguf_tensor *q = ponder_gguf_find_tensor(g, "blk.0.attn_q.weight");
    const ponder_gguf_tensor *e = ponder_gguf_find_tensor(g, "blk.0.empty.weight");
    assert_int_equal(q->type, PONDER_TYPE_Q4_K);
    assert_int_equal(e->type, PONDER_TYPE_Q4_K);
    assert_int_equal(e->n_bytes, 0);
    float back[1024];
    assert_int_equal(ponder_dequantize_row(q->type, q->data, back, 1024, &err), PONDER_OK);
    for (int i = 0; i < 1024; i++)
        assert_true(back[i] == 0.0f);
    ponder_gguf_free(g);
    clean_dir();
}

/* Hyper-parameters from metadata: per-layer arrays give layer 0's value (as llama.cpp's
 * n_head(0)), head_count_kv defaults to head_count, wrong types are format errors. */
static void test_model_info(void **state)
{
    (void)state;
    ponder_gguf_writer *w = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_str(w, "general.architecture", "qwen2", &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_u32(w, "qwen2.block_count", 24, &err), PONDER_OK);
    const int32_t heads[3] = {14, 7, 7};
    ponder_gguf_value arr = {.type = PONDER_GGUF_ARRAY,
                             .v.arr = {.elem_type = PONDER_GGUF_INT32, .n = 3, .data = heads}};
    assert_int_equal(ponder_gguf_writer_set(w, "qwen2.attention.head_count", &arr, &err), PONDER_OK);
    const char *path = tmp_path("info.gguf");
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf *g = open_ok(path);
    ponder_quantize_model_info info;
    assert_int_equal(ponder_quantize_model_info_read(g, &info, &err), PONDER_OK);
    assert_string_equal(info.arch, "qwen2");
    assert_int_equal(info.n_layer, 24);
    assert_int_equal(info.n_head, 14);
    assert_int_equal(info.n_head_kv, 14);
    assert_int_equal(info.n_expert, 0);
    ponder_gguf_free(g);

    assert_int_equal(ponder_gguf_writer_set_str(w, "qwen2.expert_count", "eight", &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    g = open_ok(path);
    assert_int_equal(ponder_quantize_model_info_read(g, &info, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "qwen2.expert_count"));
    ponder_gguf_free(g);
    clean_dir();
}

/* IN and OUT may be the same file. */
static void test_in_place(void **state)
{
    (void)state;
    size_t n;
    char *bytes = tu_read_file(tu_shared(STORIES), &n);
    assert_non_null(bytes);
    const char *path = tmp_path("model.gguf");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    free(bytes);
    quantize_ok(path, path, "Q6_K", false, false, pool2);
    ponder_gguf *a = open_ok(path), *b = open_ok(tu_shared("models/stories260K/quantized/stories260K-Q6_K.gguf"));
    assert_int_equal(compare_tensors(a, b, true), 0);
    ponder_gguf_free(a);
    ponder_gguf_free(b);
    assert_int_equal(count_files(), 1);
    clean_dir();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_matches_llama_quantize),
        cmocka_unit_test(test_syn_tiny_types),
        cmocka_unit_test(test_syn_other_archs),
        cmocka_unit_test(test_fixture_models),
        cmocka_unit_test(test_inputs_and_threads),
        cmocka_unit_test(test_requantize),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_alignment_kept),
        cmocka_unit_test(test_model_round_trip),
        cmocka_unit_test(test_failures_leave_nothing),
        cmocka_unit_test(test_odd_tensors),
        cmocka_unit_test(test_model_info),
        cmocka_unit_test(test_in_place),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
