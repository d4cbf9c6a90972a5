/*
 * test_tokenizer_corpus.c — replays the fuzz seed corpus (fuzz/corpus/tokenizer) through
 * the fuzz harness in the normal test build, so the corpus and the harness's checks run
 * everywhere, not only in clang fuzz builds. Each text seed also runs with every
 * vocabulary and flag combination (its first byte replaced). Seeds named bad-* must be
 * rejected by encode as invalid UTF-8, text-* must encode with every vocabulary, ids-*
 * are id-mode inputs (bit 5 of the first byte).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);            /* fuzz/tokenizer_fuzz.c */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/tokenizer_fuzz.c */

#define CTL_ID_MODE 0x20 /* as in the harness */

static const char *g_dir;

typedef struct counts {
    ponder_tokenizer *spm;
    int n_text, n_bad, n_ids;
} counts;

/* ids-*: the harness's id mode; text-* / bad-*: every flag combination through the
 * harness, then the text encodes (text-) or is refused as invalid UTF-8 (bad-). */
static void check(const char *name, uint8_t *buf, size_t len, void *user)
{
    counts *c = user;
    assert_true(len >= 1);
    bool id_mode = buf[0] & CTL_ID_MODE;
    if (strncmp(name, "ids-", 4) == 0) {
        assert_true(id_mode);
        c->n_ids++;
        return;
    }
    /* every vocabulary and text-mode flag combination */
    for (unsigned ctl = 0; ctl < 0x80; ctl++) {
        if (ctl & CTL_ID_MODE)
            continue;
        buf[0] = (uint8_t)ctl;
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);
    }
    ponder_token *ids = NULL;
    size_t n = 0;
    ponder_error err = {0};
    ponder_status st = ponder_tokenizer_encode(c->spm, (const char *)buf + 1, len - 1, true, true, &ids, &n, &err);
    free(ids);
    if (strncmp(name, "bad-", 4) == 0) {
        if (st != PONDER_ERR_INVALID_ARG)
            fail_msg("%s: expected invalid UTF-8 to be rejected, got status %d", name, st);
        c->n_bad++;
    } else if (strncmp(name, "text-", 5) == 0) {
        if (st != PONDER_OK)
            fail_msg("%s: %s", name, err.msg);
        c->n_text++;
    } else {
        fail_msg("%s: seed names start with text-, bad- or ids-", name);
    }
}

static void test_replay(void **state)
{
    (void)state;
    counts c = { 0 };
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    if (ponder_gguf_open(tu_shared("models/stories260K/stories260K.gguf"), &g, &err) != PONDER_OK ||
        ponder_tokenizer_create(g, &c.spm, &err) != PONDER_OK)
        fail_msg("stories260K: %s", err.msg);
    ponder_gguf_free(g);
    assert_true(tu_corpus_replay(g_dir, LLVMFuzzerTestOneInput, check, &c) >= 0);
    ponder_tokenizer_free(c.spm);
    assert_true(c.n_text >= 10);
    assert_true(c.n_bad >= 4);
    assert_true(c.n_ids >= 2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    LLVMFuzzerInitialize(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
