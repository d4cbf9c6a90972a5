/*
 * test_quantize_plan.c — the per-tensor type choice without any weights.
 *
 * 1. The fixtures in plans/ hold llama-quantize's choice (c392e509, captured through
 *    shared/tools/synth_gguf.py --plan, which was checked against it tensor by tensor)
 *    for the real shapes of SmolLM2-135M, Qwen2.5-0.5B and the tiny llama / qwen2 /
 *    gemma2 / phi3 / MoE presets, for six mixes and two pure targets.
 * 2. Hand-worked cases of the rules the fixtures do not reach (Q2_K / Q3_K mixes with
 *    grouped-query attention, 8 experts, the 70B bump, falcon, the fallback chain, the
 *    tensors that are never quantized), each derived from llama_tensor_get_type's text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/quantize.h"

#ifndef PLANS_DIR
#error "PLANS_DIR must name tests/quantize/plans"
#endif

#define MAX_TENSORS 1024
#define MAX_COLS 12

typedef struct fixture {
    ponder_quantize_model_info info;
    int n_cols;
    char cols[MAX_COLS][16];
    int n;
    char names[MAX_TENSORS][64];
    ponder_quantize_tensor_desc desc[MAX_TENSORS];
    ponder_type want[MAX_TENSORS][MAX_COLS];
} fixture;

static ponder_type type_by_name(const char *s)
{
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        if (tr && strcmp(tr->name, s) == 0)
            return (ponder_type)t;
    }
    fail_msg("unknown type name '%s' in a fixture", s);
    return PONDER_TYPE_COUNT;
}

static void load_fixture(const char *preset, fixture *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.txt", PLANS_DIR, preset);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("cannot open %s", path);
    memset(f, 0, sizeof *f);
    char line[1024];
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        if (!tok)
            continue;
        if (strcmp(tok, "model") == 0) {
            while ((tok = strtok_r(NULL, " ", &save))) {
                char *eq = strchr(tok, '=');
                assert_non_null(eq);
                *eq = '\0';
                if (strcmp(tok, "arch") == 0)
                    snprintf(f->info.arch, sizeof f->info.arch, "%s", eq + 1);
                else if (strcmp(tok, "n_layer") == 0)
                    f->info.n_layer = atoi(eq + 1);
                else if (strcmp(tok, "n_head") == 0)
                    f->info.n_head = atoi(eq + 1);
                else if (strcmp(tok, "n_head_kv") == 0)
                    f->info.n_head_kv = atoi(eq + 1);
                else if (strcmp(tok, "n_expert") == 0)
                    f->info.n_expert = atoi(eq + 1);
            }
            continue;
        }
        if (strcmp(tok, "columns") == 0) {
            while ((tok = strtok_r(NULL, " ", &save))) {
                assert_true(f->n_cols < MAX_COLS);
                snprintf(f->cols[f->n_cols++], sizeof f->cols[0], "%s", tok);
            }
            continue;
        }
        assert_true(f->n < MAX_TENSORS);
        ponder_quantize_tensor_desc *d = &f->desc[f->n];
        snprintf(f->names[f->n], sizeof f->names[0], "%s", tok);
        d->name = f->names[f->n];
        d->type = PONDER_TYPE_F32; /* the plans are for F32 inputs */
        for (int k = 0; k < PONDER_GGUF_MAX_DIMS; k++)
            d->ne[k] = 1;
        char *shape = strtok_r(NULL, " ", &save);
        assert_non_null(shape);
        int k = 0;
        for (char *p = shape; *p && k < PONDER_GGUF_MAX_DIMS; k++) {
            d->ne[k] = strtoll(p, &p, 10);
            if (*p == 'x')
                p++;
        }
        for (int c = 0; c < f->n_cols; c++) {
            tok = strtok_r(NULL, " ", &save);
            assert_non_null(tok);
            f->want[f->n][c] = type_by_name(tok);
        }
        f->n++;
    }
    fclose(fp);
    assert_true(f->n > 0 && f->n_cols > 0 && f->info.n_layer > 0);
}

static void check_preset_file(const char *preset)
{
    fixture *f = malloc(sizeof *f);
    assert_non_null(f);
    load_fixture(preset, f);
    ponder_type got[MAX_TENSORS];
    int mismatches = 0;
    for (int c = 0; c < f->n_cols; c++) {
        char target[16];
        snprintf(target, sizeof target, "%s", f->cols[c]);
        char *colon = strchr(target, ':');
        bool pure = colon && strcmp(colon, ":pure") == 0;
        if (colon)
            *colon = '\0';
        const ponder_quantize_preset *p = ponder_quantize_preset_find(target);
        assert_non_null(p);
        ponder_error err = {0};
        int64_t n_fallback = -1;
        assert_int_equal(ponder_quantize_plan(p, pure, &f->info, f->desc, f->n, got, &n_fallback, &err), PONDER_OK);
        for (int i = 0; i < f->n; i++) {
            if (got[i] != f->want[i][c]) {
                if (mismatches++ < 20)
                    print_message("%s %s: %s is %s, want %s\n", preset, f->cols[c], f->names[i],
                                  ponder_type_name((int)got[i]), ponder_type_name((int)f->want[i][c]));
            }
        }
        assert_true(n_fallback >= 0);
    }
    free(f);
    assert_int_equal(mismatches, 0);
}

static void test_smollm2_135m(void **state) { (void)state; check_preset_file("smollm2-135m"); }
static void test_qwen2_0_5b(void **state) { (void)state; check_preset_file("qwen2-0.5b"); }
static void test_tiny_gemma2(void **state) { (void)state; check_preset_file("tiny-gemma2"); }
static void test_tiny(void **state) { (void)state; check_preset_file("tiny"); }
static void test_tiny_qwen2(void **state) { (void)state; check_preset_file("tiny-qwen2"); }
static void test_tiny_phi3(void **state) { (void)state; check_preset_file("tiny-phi3"); }
static void test_tiny_moe(void **state) { (void)state; check_preset_file("tiny-moe"); }

/* ---- hand-worked cases ---- */

/* A llama-style model of n_layer layers (rows of `embd`, ff rows of `ff`), tensors in the
 * converter's order; names live in a static buffer. */
typedef struct model {
    ponder_quantize_model_info info;
    int n;
    char names[MAX_TENSORS][64];
    ponder_quantize_tensor_desc d[MAX_TENSORS];
    ponder_type got[MAX_TENSORS];
} model;

static void add(model *m, const char *name, int64_t ne0, int64_t ne1, int64_t ne2)
{
    assert_true(m->n < MAX_TENSORS);
    snprintf(m->names[m->n], sizeof m->names[0], "%s", name);
    m->d[m->n] = (ponder_quantize_tensor_desc){m->names[m->n], {ne0, ne1, ne2, 1}, PONDER_TYPE_F16};
    m->n++;
}

static model *make_model(const char *arch, int n_layer, int n_head, int n_head_kv, int n_expert, int64_t embd,
                         int64_t ff, bool tied)
{
    model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    snprintf(m->info.arch, sizeof m->info.arch, "%s", arch);
    m->info.n_layer = n_layer;
    m->info.n_head = n_head;
    m->info.n_head_kv = n_head_kv;
    m->info.n_expert = n_expert;
    char name[64];
    add(m, "token_embd.weight", embd, 1000, 1);
    for (int il = 0; il < n_layer; il++) {
        const char *two_d[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", il);
        add(m, name, embd, 1, 1);
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, two_d[k]);
            add(m, name, embd, embd, 1);
        }
        if (n_expert > 0) {
            snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", il);
            add(m, name, embd, n_expert, 1);
            snprintf(name, sizeof name, "blk.%d.ffn_gate_exps.weight", il);
            add(m, name, embd, ff, n_expert);
            snprintf(name, sizeof name, "blk.%d.ffn_down_exps.weight", il);
            add(m, name, ff, embd, n_expert);
            snprintf(name, sizeof name, "blk.%d.ffn_up_exps.weight", il);
            add(m, name, embd, ff, n_expert);
        } else {
            snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", il);
            add(m, name, embd, ff, 1);
            snprintf(name, sizeof name, "blk.%d.ffn_down.weight", il);
            add(m, name, ff, embd, 1);
            snprintf(name, sizeof name, "blk.%d.ffn_up.weight", il);
            add(m, name, embd, ff, 1);
        }
    }
    add(m, "output_norm.weight", embd, 1, 1);
    if (!tied)
        add(m, "output.weight", embd, 1000, 1);
    return m;
}

static ponder_type type_of(const model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return m->got[i];
    fail_msg("no tensor %s", name);
    return PONDER_TYPE_COUNT;
}

static void plan(model *m, const char *target, bool pure)
{
    ponder_error err = {0};
    const ponder_quantize_preset *p = ponder_quantize_preset_find(target);
    assert_non_null(p);
    if (ponder_quantize_plan(p, pure, &m->info, m->d, m->n, m->got, NULL, &err) != PONDER_OK)
        fail_msg("plan %s: %s", target, err.msg);
}

#define EXPECT(m, name, type) assert_string_equal(ponder_type_name((int)type_of(m, name)), #type)

static void layer_name(char *buf, size_t cap, int il, const char *what)
{
    snprintf(buf, cap, "blk.%d.%s.weight", il, what);
}

/* Q2_K: attn_v Q4_K with n_gqa >= 4 else Q3_K; ffn_down and attn_output Q3_K; the rest
 * Q2_K; output Q6_K; 1-D tensors and the embedding of an untied model as they are. */
static void test_q2_k_rules(void **state)
{
    (void)state;
    model *m = make_model("llama", 4, 32, 8, 0, 512, 1024, false); /* n_gqa 4 */
    plan(m, "Q2_K", false);
    EXPECT(m, "blk.0.attn_v.weight", Q4_K);
    EXPECT(m, "blk.3.ffn_down.weight", Q3_K);
    EXPECT(m, "blk.2.attn_output.weight", Q3_K);
    EXPECT(m, "blk.1.attn_q.weight", Q2_K);
    EXPECT(m, "blk.1.ffn_up.weight", Q2_K);
    EXPECT(m, "token_embd.weight", Q2_K);
    EXPECT(m, "output.weight", Q6_K);
    EXPECT(m, "blk.0.attn_norm.weight", F16); /* copied: input type */
    m->info.n_head_kv = 16; /* n_gqa 2 */
    plan(m, "q2_k", false);
    EXPECT(m, "blk.0.attn_v.weight", Q3_K);
    free(m);
}

/* Q3_K_M: the first two attn_v Q5_K, then Q4_K; ffn_down Q5_K below n/16, else Q4_K;
 * attn_output Q4_K. Q3_K_L: attn_v, ffn_down, attn_output Q5_K. Q3_K_S: all Q3_K. */
static void test_q3_k_rules(void **state)
{
    (void)state;
    model *m = make_model("llama", 32, 32, 8, 0, 512, 1024, false);
    char name[64];
    plan(m, "Q3_K_M", false);
    for (int il = 0; il < 32; il++) {
        layer_name(name, sizeof name, il, "attn_v");
        assert_int_equal(type_of(m, name), il < 2 ? PONDER_TYPE_Q5_K : PONDER_TYPE_Q4_K);
        layer_name(name, sizeof name, il, "ffn_down");
        assert_int_equal(type_of(m, name), il < 2 ? PONDER_TYPE_Q5_K : PONDER_TYPE_Q4_K);
    }
    EXPECT(m, "blk.5.attn_output.weight", Q4_K);
    EXPECT(m, "blk.5.attn_k.weight", Q3_K);
    plan(m, "Q3_K_L", false);
    EXPECT(m, "blk.7.attn_v.weight", Q5_K);
    EXPECT(m, "blk.7.ffn_down.weight", Q5_K);
    EXPECT(m, "blk.7.attn_output.weight", Q5_K);
    EXPECT(m, "blk.7.ffn_gate.weight", Q3_K);
    plan(m, "Q3_K_S", false);
    EXPECT(m, "blk.0.attn_v.weight", Q3_K);
    EXPECT(m, "blk.0.ffn_down.weight", Q3_K);
    EXPECT(m, "output.weight", Q6_K);
    free(m);
}

/* use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2 → layers 0-3, 6, 9, ..., 27,
 * 28-31. Q4_K_M gives those attn_v and ffn_down Q6_K; Q4_K_S bumps the first four attn_v
 * and the first n/8 = 4 ffn_down to Q5_K. */
static void test_use_more_bits_layers(void **state)
{
    (void)state;
    model *m = make_model("llama", 32, 32, 8, 0, 512, 1024, false);
    char name[64];
    plan(m, "Q4_K_M", false);
    int n_more = 0;
    for (int il = 0; il < 32; il++) {
        bool more = il < 4 || il >= 28 || (il >= 4 && (il - 4) % 3 == 2);
        n_more += more;
        layer_name(name, sizeof name, il, "attn_v");
        assert_int_equal(type_of(m, name), more ? PONDER_TYPE_Q6_K : PONDER_TYPE_Q4_K);
        layer_name(name, sizeof name, il, "ffn_down");
        assert_int_equal(type_of(m, name), more ? PONDER_TYPE_Q6_K : PONDER_TYPE_Q4_K);
    }
    assert_int_equal(n_more, 16);
    plan(m, "Q4_K_S", false);
    for (int il = 0; il < 32; il++) {
        layer_name(name, sizeof name, il, "attn_v");
        assert_int_equal(type_of(m, name), il < 4 ? PONDER_TYPE_Q5_K : PONDER_TYPE_Q4_K);
        layer_name(name, sizeof name, il, "ffn_down");
        assert_int_equal(type_of(m, name), il < 4 ? PONDER_TYPE_Q5_K : PONDER_TYPE_Q4_K);
    }
    free(m);
}

/* The counters follow layer order, not file order: shuffling the tensors changes nothing. */
static void test_visit_order(void **state)
{
    (void)state;
    model *m = make_model("llama", 12, 8, 8, 0, 256, 512, false);
    plan(m, "Q3_K_M", false);
    ponder_type before[MAX_TENSORS];
    memcpy(before, m->got, sizeof before);
    /* reverse the tensor list (descriptors keep pointing at their own names) */
    for (int i = 0, j = m->n - 1; i < j; i++, j--) {
        ponder_quantize_tensor_desc t = m->d[i];
        m->d[i] = m->d[j];
        m->d[j] = t;
    }
    ponder_error err = {0};
    ponder_type got[MAX_TENSORS];
    assert_int_equal(ponder_quantize_plan(ponder_quantize_preset_find("Q3_K_M"), false, &m->info, m->d, m->n, got,
                                          NULL, &err), PONDER_OK);
    for (int i = 0; i < m->n; i++)
        assert_int_equal(got[m->n - 1 - i], before[i]);
    free(m);
}

/* Eight experts: attn_v and attn_k Q8_0, attn_output Q5_K (Q4_K_M); expert ffn_down
 * follows the layer parsed from its name. Four experts: none of that. */
static void test_moe_rules(void **state)
{
    (void)state;
    model *m = make_model("llama", 8, 32, 8, 8, 512, 256, false);
    plan(m, "Q4_K_M", false);
    EXPECT(m, "blk.3.attn_v.weight", Q8_0);
    EXPECT(m, "blk.3.attn_k.weight", Q8_0);
    EXPECT(m, "blk.3.attn_output.weight", Q5_K);
    EXPECT(m, "blk.3.ffn_gate_inp.weight", F16);           /* never quantized */
    EXPECT(m, "blk.0.ffn_down_exps.weight", Q6_K);         /* 0 < 8/8 */
    EXPECT(m, "blk.2.ffn_down_exps.weight", Q4_K);         /* (2 - 1) % 3 != 2 */
    EXPECT(m, "blk.3.ffn_down_exps.weight", Q6_K);         /* (3 - 1) % 3 == 2 */
    EXPECT(m, "blk.4.ffn_down_exps.weight", Q4_K);
    EXPECT(m, "blk.7.ffn_down_exps.weight", Q6_K);         /* 7 >= 7*8/8 */
    EXPECT(m, "blk.4.ffn_up_exps.weight", Q4_K);
    m->info.n_expert = 4;
    plan(m, "Q4_K_M", false);
    EXPECT(m, "blk.3.attn_k.weight", Q4_K);
    EXPECT(m, "blk.3.attn_output.weight", Q4_K);
    /* an expert tensor outside blk.N cannot be placed: llama.cpp throws, we fail */
    snprintf(m->names[m->n], sizeof m->names[0], "x.ffn_down_exps.weight");
    m->d[m->n] = (ponder_quantize_tensor_desc){m->names[m->n], {256, 512, 4, 1}, PONDER_TYPE_F16};
    ponder_error err = {0};
    assert_int_equal(ponder_quantize_plan(ponder_quantize_preset_find("Q4_K_M"), false, &m->info, m->d, m->n + 1,
                                          m->got, NULL, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "x.ffn_down_exps.weight"));
    free(m);
}

/* 80-layer llama with GQA is llama.cpp's 70B: attn_v Q3_K/Q4_K become Q5_K. Without GQA
 * (the 65B) they do not. */
static void test_70b_rule(void **state)
{
    (void)state;
    model *m = make_model("llama", 80, 64, 8, 0, 256, 256, false);
    plan(m, "Q3_K_S", false);
    EXPECT(m, "blk.40.attn_v.weight", Q5_K);
    EXPECT(m, "blk.40.attn_k.weight", Q3_K);
    m->info.n_head_kv = 64;
    plan(m, "Q3_K_S", false);
    EXPECT(m, "blk.40.attn_v.weight", Q3_K);
    free(m);
}

/* Falcon keeps its output in Q8_0 and has its own ffn_down ladder. */
static void test_falcon_rules(void **state)
{
    (void)state;
    model *m = make_model("falcon", 32, 32, 8, 0, 512, 1024, false);
    plan(m, "Q4_K_M", false);
    EXPECT(m, "output.weight", Q8_0);
    EXPECT(m, "blk.1.ffn_down.weight", Q6_K);  /* 1 < 32/16 */
    EXPECT(m, "blk.6.ffn_down.weight", Q5_K);  /* use_more_bits */
    EXPECT(m, "blk.7.ffn_down.weight", Q4_K);
    plan(m, "Q3_K_M", false);
    EXPECT(m, "blk.7.ffn_down.weight", Q3_K);
    EXPECT(m, "blk.6.ffn_down.weight", Q4_K);
    EXPECT(m, "blk.7.attn_output.weight", Q3_K);
    free(m);
}

/* Tied embeddings: token_embd takes the output's rule; rows of 576 send Q6_K to Q8_0.
 * A type without a fallback, or whose fallback does not fit, ends in F16. */
static void test_tied_and_fallbacks(void **state)
{
    (void)state;
    model *m = make_model("llama", 2, 9, 3, 0, 576, 1536, true);
    plan(m, "Q5_K_M", false);
    EXPECT(m, "token_embd.weight", Q8_0);
    EXPECT(m, "blk.0.attn_q.weight", Q5_1);
    EXPECT(m, "blk.1.ffn_down.weight", Q6_K); /* 1536 = 6 x 256 */
    plan(m, "Q4_0", false);
    EXPECT(m, "token_embd.weight", Q8_0); /* 576 % 32 == 0: Q6_K, whose fallback is Q8_0 */
    free(m);
    m = make_model("llama", 2, 4, 4, 0, 48, 80, false); /* rows of 48 and 80 */
    plan(m, "Q8_0", false);
    EXPECT(m, "blk.0.attn_q.weight", F16);  /* Q8_0 has no fallback */
    plan(m, "Q2_K", false);
    EXPECT(m, "blk.0.attn_q.weight", F16);  /* IQ4_NL needs 32 */
    plan(m, "F32", false);
    EXPECT(m, "blk.0.attn_q.weight", F32);
    EXPECT(m, "blk.0.attn_norm.weight", F16);
    free(m);
}

/* Names and shapes llama-quantize never quantizes. */
static void test_never_quantized(void **state)
{
    (void)state;
    model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    snprintf(m->info.arch, sizeof m->info.arch, "llama");
    m->info.n_layer = 1;
    add(m, "blk.0.attn_q.weight", 256, 256, 1);
    add(m, "blk.0.attn_q_norm.weight", 256, 256, 1);
    add(m, "blk.0.ffn_gate_inp.weight", 256, 8, 1);
    add(m, "blk.0.attn_q.bias", 256, 256, 1);
    add(m, "blk.0.ssm_conv1d.weight", 256, 4, 1);
    add(m, "position_embd.weight", 256, 512, 1);
    add(m, "blk.0.flat.weight", 256, 1, 1);   /* [256, 1]: one dimension for ggml */
    add(m, "blk.0.odd.weight", 256, 1, 4);    /* [256, 1, 4]: three */
    plan(m, "Q6_K", false);
    EXPECT(m, "blk.0.attn_q.weight", Q6_K);
    EXPECT(m, "blk.0.attn_q_norm.weight", F16);
    EXPECT(m, "blk.0.ffn_gate_inp.weight", F16);
    EXPECT(m, "blk.0.attn_q.bias", F16);
    EXPECT(m, "blk.0.ssm_conv1d.weight", F16);
    EXPECT(m, "position_embd.weight", F16);
    EXPECT(m, "blk.0.flat.weight", F16);
    EXPECT(m, "blk.0.odd.weight", Q6_K);
    free(m);
}

static void test_presets(void **state)
{
    (void)state;
    const ponder_quantize_preset *p = ponder_quantize_preset_find("q4_k_m");
    assert_non_null(p);
    assert_string_equal(p->name, "Q4_K_M");
    assert_int_equal(p->ftype, 15);
    assert_int_equal(p->base_type, PONDER_TYPE_Q4_K);
    assert_null(ponder_quantize_preset_find("Q4_K_X"));
    assert_null(ponder_quantize_preset_find(""));
    assert_null(ponder_quantize_preset_find(NULL));
    /* llama.h's llama_ftype numbers */
    static const struct { const char *name; unsigned ftype; } FT[] = {
        {"F32", 0}, {"F16", 1}, {"Q4_0", 2}, {"Q4_1", 3}, {"Q8_0", 7}, {"Q5_0", 8}, {"Q5_1", 9}, {"Q2_K", 10},
        {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14}, {"Q5_K_S", 16}, {"Q5_K_M", 17},
        {"Q6_K", 18}, {"IQ4_NL", 25}, {"BF16", 32},
    };
    for (size_t i = 0; i < sizeof FT / sizeof FT[0]; i++) {
        p = ponder_quantize_preset_find(FT[i].name);
        assert_non_null(p);
        assert_int_equal(p->ftype, FT[i].ftype);
    }
    int n = 0;
    while (ponder_quantize_preset_at(n))
        n++;
    assert_true(n >= 20);
    assert_null(ponder_quantize_preset_at(-1));
    /* a mix needs the block count; a pure target does not */
    model *m = make_model("llama", 2, 4, 4, 0, 256, 256, false);
    m->info.n_layer = 0;
    ponder_error err = {0};
    assert_int_equal(ponder_quantize_plan(ponder_quantize_preset_find("Q4_K_M"), false, &m->info, m->d, m->n, m->got,
                                          NULL, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "llama.block_count"));
    plan(m, "Q4_K_M", true);
    EXPECT(m, "output.weight", Q4_K);
    plan(m, "Q4_K", false); /* a pure preset */
    EXPECT(m, "output.weight", Q4_K);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smollm2_135m),
        cmocka_unit_test(test_qwen2_0_5b),
        cmocka_unit_test(test_tiny_gemma2),
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_tiny_qwen2),
        cmocka_unit_test(test_tiny_phi3),
        cmocka_unit_test(test_tiny_moe),
        cmocka_unit_test(test_q2_k_rules),
        cmocka_unit_test(test_q3_k_rules),
        cmocka_unit_test(test_use_more_bits_layers),
        cmocka_unit_test(test_visit_order),
        cmocka_unit_test(test_moe_rules),
        cmocka_unit_test(test_70b_rule),
        cmocka_unit_test(test_falcon_rules),
        cmocka_unit_test(test_tied_and_fallbacks),
        cmocka_unit_test(test_never_quantized),
        cmocka_unit_test(test_presets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
