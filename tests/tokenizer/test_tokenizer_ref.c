/*
 * test_tokenizer_ref.c — every case of shared/reference/tokenizer/<vocab>.gguf.inp must give
 * exactly the ids of the matching .out (llama.cpp at c392e509), with add_special = false
 * and parse_special = false. A failing case prints its index, text and both id lists.
 */
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct vocab_case {
    const char *gguf;   /* relative to shared/ */
    const char *ref;    /* base of .inp/.out, relative to shared/ */
    int n_cases;        /* the README's count */
    ponder_vocab_kind kind;
    const char *pre;    /* pre-tokenizer reported */
} vocab_case;

#define REF "reference/tokenizer/"
static const vocab_case CASES[] = {
    {REF "ggml-vocab-llama-spm.gguf", REF "ggml-vocab-llama-spm.gguf", 46, PONDER_VOCAB_SPM, "default"},
    {REF "ggml-vocab-phi-3.gguf", REF "ggml-vocab-phi-3.gguf", 46, PONDER_VOCAB_SPM, "default"},
    {REF "ggml-vocab-gpt-2.gguf", REF "ggml-vocab-gpt-2.gguf", 46, PONDER_VOCAB_BPE, "gpt-2"},
    {REF "ggml-vocab-deepseek-llm.gguf", REF "ggml-vocab-deepseek-llm.gguf", 46, PONDER_VOCAB_BPE, "deepseek-llm"},
    {REF "ggml-vocab-deepseek-coder.gguf", REF "ggml-vocab-deepseek-coder.gguf", 46, PONDER_VOCAB_BPE,
     "deepseek-coder"},
    {REF "ggml-vocab-falcon.gguf", REF "ggml-vocab-falcon.gguf", 46, PONDER_VOCAB_BPE, "falcon"},
    {REF "ggml-vocab-starcoder.gguf", REF "ggml-vocab-starcoder.gguf", 46, PONDER_VOCAB_BPE, "starcoder"},
    {REF "ggml-vocab-mpt.gguf", REF "ggml-vocab-mpt.gguf", 46, PONDER_VOCAB_BPE, "mpt"},
    {REF "ggml-vocab-refact.gguf", REF "ggml-vocab-refact.gguf", 46, PONDER_VOCAB_BPE, "refact"},
    {REF "ggml-vocab-gpt-neox.gguf", REF "ggml-vocab-gpt-neox.gguf", 46, PONDER_VOCAB_BPE, "default"},
    {"models/stories260K/stories260K.gguf", REF "stories260K.gguf", 68, PONDER_VOCAB_SPM, "default"},
    /* same tokenizer metadata as syn-tiny-smollm-F16.gguf (README) */
    {"models/synthetic/syn-tiny-smollm-Q4_K_M.gguf", REF "syn-tiny-smollm-F16.gguf", 68, PONDER_VOCAB_BPE,
     "smollm"},
};

#define SEP "\n__ggml_vocab_test__\n"

/* Splits the .inp as the README says: a case is the bytes before each separator. */
static int split_cases(char *data, size_t len, char **starts, size_t *lens, int max)
{
    size_t sep_len = strlen(SEP), pos = 0;
    int n = 0;
    while (pos < len && n < max) {
        char *hit = NULL;
        for (size_t i = pos; i + sep_len <= len; i++)
            if (memcmp(data + i, SEP, sep_len) == 0) {
                hit = data + i;
                break;
            }
        if (!hit)
            break;
        starts[n] = data + pos;
        lens[n] = (size_t)(hit - (data + pos));
        n++;
        pos = (size_t)(hit - data) + sep_len;
    }
    return n;
}

static void print_ids(const char *label, const ponder_token *ids, size_t n)
{
    print_message("    %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        print_message(" %d", ids[i]);
    print_message("\n");
}

static void run_vocab(void **state)
{
    const vocab_case *vc = *state;
    char inp_path[512], out_path[512];
    snprintf(inp_path, sizeof inp_path, "%s", tu_shared(vc->ref));
    strncat(inp_path, ".inp", sizeof inp_path - strlen(inp_path) - 1);
    snprintf(out_path, sizeof out_path, "%s", tu_shared(vc->ref));
    strncat(out_path, ".out", sizeof out_path - strlen(out_path) - 1);

    ponder_error err = {0};
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    if (ponder_gguf_open(tu_shared(vc->gguf), &g, &err) != PONDER_OK)
        fail_msg("%s: %s", vc->gguf, err.msg);
    if (ponder_tokenizer_create(g, &tok, &err) != PONDER_OK)
        fail_msg("%s: %s", vc->gguf, err.msg);
    ponder_gguf_free(g);
    assert_int_equal(ponder_tokenizer_kind(tok), vc->kind);
    assert_string_equal(ponder_tokenizer_pre(tok), vc->pre);

    size_t inp_len, out_len;
    char *inp = tu_read_file(inp_path, &inp_len);
    char *outf = tu_read_file(out_path, &out_len);
    assert_non_null(inp);
    assert_non_null(outf);

    char *starts[128];
    size_t lens[128];
    int n_cases = split_cases(inp, inp_len, starts, lens, 128);
    assert_int_equal(n_cases, vc->n_cases);

    int n_pass = 0;
    char *line = outf, *file_end = outf + out_len;
    for (int c = 0; c < n_cases; c++) {
        assert_true(line <= file_end);
        char *eol = memchr(line, '\n', (size_t)(file_end - line));
        if (!eol)
            eol = file_end;
        *eol = '\0';
        ponder_token want[1024];
        size_t n_want = 0;
        for (char *p = line; *p;) {
            char *endp;
            long v = strtol(p, &endp, 10);
            if (endp == p) {
                p++;
                continue;
            }
            assert_true(n_want < 1024);
            want[n_want++] = (ponder_token)v;
            p = endp;
        }
        line = eol + 1;

        ponder_token *got = NULL;
        size_t n_got = 0;
        if (ponder_tokenizer_encode(tok, starts[c], lens[c], false, false, &got, &n_got, &err) != PONDER_OK) {
            print_message("  case %d: encode failed: %s\n", c, err.msg);
            continue;
        }
        if (n_got == n_want && memcmp(got, want, n_want * sizeof *want) == 0) {
            n_pass++;
        } else {
            print_message("  %s case %d '%.*s' differs:\n", vc->ref, c, (int)lens[c], starts[c]);
            print_ids("want", want, n_want);
            print_ids("got ", got, n_got);
        }
        free(got);
    }
    print_message("  %s: %d/%d cases pass\n", vc->ref, n_pass, n_cases);
    free(inp);
    free(outf);
    ponder_tokenizer_free(tok);
    assert_int_equal(n_pass, n_cases);
}

int main(void)
{
    struct CMUnitTest tests[sizeof CASES / sizeof CASES[0]];
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_vocab, (void *)&CASES[i]);
        tests[i].name = CASES[i].ref + (strncmp(CASES[i].ref, REF, strlen(REF)) == 0 ? strlen(REF) : 0);
    }
    return _cmocka_run_group_tests("tokenizer_ref", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
