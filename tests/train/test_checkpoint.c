/*
 * test_checkpoint.c — a trained checkpoint loads in the engine and gives the trainer's
 * logits (float activations, F32 KV cache), resuming restores the optimizer exactly
 * (2N steps straight == N, save, load, N), and a tiny batch overfits.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ponder/model.h"
#include "ponder/train.h"
#include "testutil.h"

#define VOCAB_GGUF "models/stories260K/stories260K.gguf"
#define LOGITS_REL_TOL 1e-4

static ponder_train_params small_params(int32_t n_vocab)
{
    ponder_train_params p = ponder_train_params_default();
    p.shape = (ponder_train_shape){.n_vocab = n_vocab, .n_embd = 32, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                                   .n_ff = 64, .n_ctx = 32, .norm_eps = 1e-5f, .rope_base = 10000.0f};
    p.lr = 3e-3f;
    p.warmup_steps = 3;
    p.total_steps = 40;
    return p;
}

static void fill_tokens(int32_t *tok, int n, int32_t n_vocab, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((seed >> 33) % (uint64_t)n_vocab);
    }
}

static void train_steps(ponder_trainer *t, const ponder_train_seq *seqs, int n_seqs, int steps)
{
    ponder_error err;
    for (int s = 0; s < steps; s++) {
        /* two micro-batches per step: gradient accumulation is part of what resumes */
        const int step = (int)ponder_trainer_step_count(t);
        const ponder_train_seq batch[2] = {seqs[step % n_seqs], seqs[(step + 1) % n_seqs]};
        assert_int_equal(ponder_trainer_accumulate(t, &batch[0], 1, NULL, NULL, &err), PONDER_OK);
        assert_int_equal(ponder_trainer_accumulate(t, &batch[1], 1, NULL, NULL, &err), PONDER_OK);
        assert_int_equal(ponder_trainer_step(t, NULL, &err), PONDER_OK);
    }
}

static void temp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "%s/ponder-train-%s-%ld.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag,
             (long)getpid());
}

static void remove_ckpt(const char *path)
{
    char o[600];
    snprintf(o, sizeof o, "%s.optim", path);
    remove(path);
    remove(o);
}

static void test_engine_logits(void **state)
{
    (void)state;
    ponder_error err;
    ponder_gguf *vocab = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared(VOCAB_GGUF), &vocab, &err), PONDER_OK);
    ponder_train_params p = small_params(512);
    p.init_std = 0.1f;
    ponder_trainer *t = NULL;
    assert_int_equal(ponder_trainer_create(&p, &t, &err), PONDER_OK);
    int32_t tok[4][24];
    ponder_train_seq seqs[4];
    for (int i = 0; i < 4; i++) {
        fill_tokens(tok[i], 24, 512, 100 + (uint64_t)i);
        seqs[i] = (ponder_train_seq){tok[i], NULL, 24};
    }
    train_steps(t, seqs, 4, 5); /* norms away from 1, moments non-zero */
    char path[512];
    temp_path(path, sizeof path, "engine");
    assert_int_equal(ponder_trainer_save(t, path, vocab, false, &err), PONDER_OK);

    const int n = 20;
    float *want = malloc((size_t)n * 512 * sizeof(float)), *got = malloc((size_t)n * 512 * sizeof(float));
    assert_int_equal(ponder_trainer_logits(t, tok[0], n, want, &err), PONDER_OK);
    ponder_model *m = NULL;
    ponder_model_params mp = ponder_model_params_default();
    if (ponder_model_load(path, &mp, &m, &err) != PONDER_OK)
        fail_msg("engine load: %s", err.msg);
    const ponder_hparams *hp = ponder_model_hparams(m);
    assert_true(hp->tied_output);
    assert_int_equal(hp->n_head_kv, 2);
    assert_int_equal(ponder_model_n_params(m), ponder_trainer_n_params(t));
    ponder_context_params cp = ponder_context_params_default();
    cp.float_activations = true;
    cp.type_k = cp.type_v = PONDER_TYPE_F32;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(m, &cp, &ctx, &err), PONDER_OK);
    assert_int_equal(ponder_context_decode(ctx, tok[0], n, got, &err), PONDER_OK);
    double max_diff = 0, max_abs = 0;
    for (int i = 0; i < n * 512; i++) {
        max_diff = fmax(max_diff, fabs((double)got[i] - want[i]));
        max_abs = fmax(max_abs, fabs((double)want[i]));
    }
    assert_true(max_abs > 0.1); /* logits that say something */
    if (max_diff > LOGITS_REL_TOL * max_abs)
        fail_msg("engine logits differ: max |diff| %.3g vs max |logit| %.3g", max_diff, max_abs);
    /* the tokenizer came along: the engine's vocabulary is stories260K's */
    ponder_tokenizer *tk = NULL;
    assert_int_equal(ponder_tokenizer_create(ponder_model_gguf(m), &tk, &err), PONDER_OK);
    assert_int_equal(ponder_tokenizer_n_vocab(tk), 512);
    ponder_tokenizer_free(tk);
    /* strategies leave out the zero-shot cue for it (ponder.cue false) */
    bool cue = true;
    assert_int_equal(ponder_gguf_get_bool(ponder_model_gguf(m), "ponder.cue", &cue, &err), PONDER_OK);
    assert_false(cue);
    ponder_context_free(ctx);
    ponder_model_free(m);
    free(want);
    free(got);
    ponder_trainer_free(t);
    ponder_gguf_free(vocab);
    remove_ckpt(path);
}

static void test_resume_exact(void **state)
{
    (void)state;
    ponder_error err;
    const ponder_train_params p = small_params(40);
    int32_t tok[3][20];
    ponder_train_seq seqs[3];
    for (int i = 0; i < 3; i++) {
        fill_tokens(tok[i], 20, 40, 7 + (uint64_t)i);
        seqs[i] = (ponder_train_seq){tok[i], NULL, 20};
    }
    enum { N = 6 };
    ponder_trainer *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(ponder_trainer_create(&p, &a, &err), PONDER_OK);
    train_steps(a, seqs, 3, 2 * N);

    assert_int_equal(ponder_trainer_create(&p, &b, &err), PONDER_OK);
    train_steps(b, seqs, 3, N);
    char path[512];
    temp_path(path, sizeof path, "resume");
    assert_int_equal(ponder_trainer_save(b, path, NULL, true, &err), PONDER_OK);
    ponder_trainer_free(b);
    ponder_train_params other = ponder_train_params_default(); /* settings come from the sidecar */
    if (ponder_trainer_load(path, &other, &c, &err) != PONDER_OK)
        fail_msg("load: %s", err.msg);
    assert_int_equal(ponder_trainer_step_count(c), N);
    train_steps(c, seqs, 3, N);
    assert_int_equal(ponder_trainer_step_count(c), 2 * N);
    const int64_t np = ponder_trainer_n_params(a);
    assert_int_equal(np, ponder_trainer_n_params(c));
    assert_memory_equal(ponder_trainer_weights(a), ponder_trainer_weights(c), (size_t)np * sizeof(float));

    /* without the sidecar the optimizer restarts, and the weights then differ */
    char o[600];
    snprintf(o, sizeof o, "%s.optim", path);
    remove(o);
    ponder_trainer *d = NULL;
    assert_int_equal(ponder_trainer_load(path, &p, &d, &err), PONDER_OK);
    assert_int_equal(ponder_trainer_step_count(d), 0);
    train_steps(d, seqs, 3, N);
    assert_true(memcmp(ponder_trainer_weights(a), ponder_trainer_weights(d), (size_t)np * sizeof(float)) != 0);
    ponder_trainer_free(d);
    ponder_trainer_free(a);
    ponder_trainer_free(c);
    remove_ckpt(path);
}

static void test_overfit(void **state)
{
    (void)state;
    ponder_error err;
    ponder_train_params p = small_params(24);
    p.lr = 1e-2f;
    p.lr_min = 1e-3f;
    p.warmup_steps = 10;
    p.total_steps = 250;
    p.weight_decay = 0.0f;
    ponder_trainer *t = NULL;
    assert_int_equal(ponder_trainer_create(&p, &t, &err), PONDER_OK);
    int32_t tok[4][16];
    ponder_train_seq seqs[4];
    for (int i = 0; i < 4; i++) {
        fill_tokens(tok[i], 16, 24, 1000 + (uint64_t)i);
        seqs[i] = (ponder_train_seq){tok[i], NULL, 16};
    }
    double first = 0, loss = 0;
    int64_t n = 0;
    for (int s = 0; s < p.total_steps; s++) {
        assert_int_equal(ponder_trainer_accumulate(t, seqs, 4, &loss, &n, &err), PONDER_OK);
        if (s == 0)
            first = loss / (double)n;
        assert_int_equal(ponder_trainer_step(t, NULL, &err), PONDER_OK);
    }
    assert_int_equal(ponder_trainer_eval(t, seqs, 4, &loss, &n, &err), PONDER_OK);
    const double last = loss / (double)n;
    print_message("overfit: loss %.4f -> %.4f after %d steps\n", first, last, p.total_steps);
    assert_true(first > 2.5); /* ~ln 24 at the start */
    assert_true(last < 0.05);
    ponder_trainer_free(t);
}

static void test_bad_input(void **state)
{
    (void)state;
    ponder_error err;
    ponder_train_params p = small_params(24);
    p.shape.n_head_kv = 3; /* 4 heads are not a multiple of 3 */
    ponder_trainer *t = NULL;
    assert_int_equal(ponder_trainer_create(&p, &t, &err), PONDER_ERR_INVALID_ARG);
    assert_null(t);
    p = small_params(24);
    assert_int_equal(ponder_trainer_create(&p, &t, &err), PONDER_OK);
    const int32_t bad[3] = {1, 24, 2};
    const ponder_train_seq s = {bad, NULL, 3};
    assert_int_equal(ponder_trainer_accumulate(t, &s, 1, NULL, NULL, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    assert_int_equal(ponder_trainer_step(t, NULL, &err), PONDER_ERR_INVALID_ARG);
    ponder_trainer *u = NULL;
    assert_int_not_equal(ponder_trainer_load("/nonexistent/x.gguf", &p, &u, &err), PONDER_OK);
    assert_null(u);
    ponder_trainer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_logits),
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_overfit),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
