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

#include <dirent.h>
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

static ponder_tokenizer *load(const char *rel)
{
    ponder_error err = {0};
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    if (ponder_gguf_open(tu_shared(rel), &g, &err) != PONDER_OK)
        fail_msg("%s: %s", rel, err.msg);
    if (ponder_tokenizer_create(g, &tok, &err) != PONDER_OK)
        fail_msg("%s: %s", rel, err.msg);
    ponder_gguf_free(g);
    return tok;
}

static void test_replay(void **state)
{
    (void)state;
    ponder_tokenizer *spm = load("models/stories260K/stories260K.gguf");
    DIR *d = opendir(g_dir);
    if (!d)
        fail_msg("cannot open corpus directory %s", g_dir);
    int n_text = 0, n_bad = 0, n_ids = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        size_t len;
        char *file = tu_read_file(path, &len);
        assert_non_null(file);
        assert_true(len >= 1);
        /* exact-size copy so sanitizers see over-reads */
        uint8_t *buf = malloc(len);
        assert_non_null(buf);
        memcpy(buf, file, len);
        free(file);
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);

        bool id_mode = buf[0] & CTL_ID_MODE;
        if (strncmp(e->d_name, "ids-", 4) == 0) {
            assert_true(id_mode);
            n_ids++;
        } else {
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
            ponder_status st = ponder_tokenizer_encode(spm, (const char *)buf + 1, len - 1, true, true, &ids, &n, &err);
            free(ids);
            if (strncmp(e->d_name, "bad-", 4) == 0) {
                if (st != PONDER_ERR_INVALID_ARG)
                    fail_msg("%s: expected invalid UTF-8 to be rejected, got status %d", e->d_name, st);
                n_bad++;
            } else if (strncmp(e->d_name, "text-", 5) == 0) {
                if (st != PONDER_OK)
                    fail_msg("%s: %s", e->d_name, err.msg);
                n_text++;
            } else {
                fail_msg("%s: seed names start with text-, bad- or ids-", e->d_name);
            }
        }
        free(buf);
    }
    closedir(d);
    ponder_tokenizer_free(spm);
    assert_true(n_text >= 10);
    assert_true(n_bad >= 4);
    assert_true(n_ids >= 2);
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
