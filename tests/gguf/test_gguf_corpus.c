/*
 * test_gguf_corpus.c — replays the fuzz seed corpus (fuzz/corpus/gguf) through the fuzz
 * harness in the normal test build, so the corpus and the harness's checks run
 * everywhere, not only in clang fuzz builds. Seeds named ok-* must open; bad-* must fail
 * with PONDER_ERR_FORMAT.
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
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/gguf_fuzz.c */

static const char *g_dir;

typedef struct counts {
    int n_ok, n_bad;
} counts;

/* ok-*: opens; bad-*: a format error; anything else: one or the other. */
static void check(const char *name, uint8_t *data, size_t len, void *user)
{
    counts *c = user;
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    ponder_status st = ponder_gguf_open_memory(data, len, name, &g, &err);
    if (strncmp(name, "ok-", 3) == 0) {
        if (st != PONDER_OK)
            fail_msg("%s", err.msg);
        c->n_ok++;
    } else if (strncmp(name, "bad-", 4) == 0) {
        if (st != PONDER_ERR_FORMAT)
            fail_msg("%s: expected a format error, got status %d", name, st);
        c->n_bad++;
    } else {
        assert_true(st == PONDER_OK || st == PONDER_ERR_FORMAT);
    }
    ponder_gguf_free(g);
}

static void test_replay(void **state)
{
    (void)state;
    counts c = { 0 };
    assert_true(tu_corpus_replay(g_dir, LLVMFuzzerTestOneInput, check, &c) >= 0);
    assert_true(c.n_ok >= 5);
    assert_true(c.n_bad >= 5);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
