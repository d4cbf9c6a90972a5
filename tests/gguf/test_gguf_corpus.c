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

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gguf.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/gguf_fuzz.c */

static const char *g_dir;

static void test_replay(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    if (!d)
        fail_msg("cannot open corpus directory %s", g_dir);
    int n_ok = 0, n_bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        size_t len;
        char *file = tu_read_file(path, &len);
        assert_non_null(file);
        /* exact-size copy so sanitizers see over-reads */
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, file, len);
        free(file);
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);

        ponder_gguf *g = NULL;
        ponder_error err = {0};
        ponder_status st = ponder_gguf_open_memory(buf, len, e->d_name, &g, &err);
        if (strncmp(e->d_name, "ok-", 3) == 0) {
            if (st != PONDER_OK)
                fail_msg("%s", err.msg);
            n_ok++;
        } else if (strncmp(e->d_name, "bad-", 4) == 0) {
            if (st != PONDER_ERR_FORMAT)
                fail_msg("%s: expected a format error, got status %d", e->d_name, st);
            n_bad++;
        } else {
            assert_true(st == PONDER_OK || st == PONDER_ERR_FORMAT);
        }
        ponder_gguf_free(g);
        free(buf);
    }
    closedir(d);
    assert_true(n_ok >= 5);
    assert_true(n_bad >= 5);
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
