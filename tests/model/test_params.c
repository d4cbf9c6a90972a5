/*
 * test_params.c — parameter counts and FLOPs per token against the tensors of the file:
 * total = every element; active = total minus the experts a token is not routed to; FLOPs
 * at position 0 = 2 per weight of every matrix a token meets (the embedding table is a
 * lookup) plus one position of attention per layer (model.h's formula).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "ponder/model.h"
#include "testutil.h"

static void check(const char *ref_path, bool must_exist)
{
    const char *path = tu_model_path(ref_path);
    if (!path) {
        assert_false(must_exist);
        return;
    }
    ponder_model *m = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_model_load(path, NULL, &m, &err), PONDER_OK);
    const ponder_hparams *hp = ponder_model_hparams(m);
    const ponder_gguf *g = ponder_model_gguf(m);
    uint64_t total = 0, idle = 0, matrix = 0;
    bool has_output = false;
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        const uint64_t ne = (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
        total += ne;
        uint64_t used = ne;
        if (strstr(t->name, "_exps.weight")) { /* (n_cols, n_rows, n_expert) stacks */
            used = ne / (uint64_t)hp->n_expert * (uint64_t)hp->n_expert_used;
            idle += ne - used;
        }
        if (strcmp(t->name, "output.weight") == 0)
            has_output = true;
        if (t->ne[1] > 1 && strcmp(t->name, "token_embd.weight") != 0 && strcmp(t->name, "rope_freqs.weight") != 0)
            matrix += used;
    }
    if (!has_output)
        matrix += (uint64_t)hp->n_embd * (uint64_t)hp->n_vocab;
    assert_int_equal(ponder_model_n_params(m), total);
    assert_int_equal(ponder_model_n_params_active(m), total - idle);
    if (hp->n_expert == 0)
        assert_int_equal(idle, 0);
    else
        assert_true(idle > 0);
    const uint64_t attn = 2ull * (uint64_t)hp->n_layer * (uint64_t)hp->n_head * (uint64_t)(hp->head_dim_k + hp->head_dim_v);
    assert_int_equal(ponder_model_flops_per_token(m, 0), 2 * matrix + attn);
    /* one more position seen per layer at position 1 */
    assert_int_equal(ponder_model_flops_per_token(m, 1), 2 * matrix + 2 * attn);
    print_message("%s: %llu parameters, %llu active, %llu FLOPs/token at position 0\n", ref_path,
                  (unsigned long long)total, (unsigned long long)(total - idle),
                  (unsigned long long)(2 * matrix + attn));
    ponder_model_free(m);
}

static void test_params(void **state)
{
    (void)state;
    check("shared/models/stories260K/stories260K.gguf", true);
    check("shared/models/synthetic/syn-tiny-Q8_0.gguf", true);
    check("shared/models/synthetic/syn-tiny-moe-Q8_0.gguf", true);
    check("shared/models/synthetic/syn-tiny-phi3-Q8_0.gguf", true);
    check("shared/models/synthetic/syn-tiny-gemma2-Q8_0.gguf", true);
    check("shared/models/synthetic/syn-tiny-moe-F32.gguf", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_params)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
