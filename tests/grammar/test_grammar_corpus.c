/*
 * test_grammar_corpus.c — replays the fuzz seed corpus (fuzz/corpus/grammar) through the
 * fuzz harness in the normal test build, so its checks (masks agree with the matcher,
 * compiled schemas always parse, one-line errors) run everywhere, not only in clang
 * fuzz builds. Each seed also runs in the other mode (first byte flipped).
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

#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/grammar_fuzz.c */

static void test_replay(void **state)
{
    (void)state;
    DIR *d = opendir(GRAMMAR_CORPUS);
    if (!d)
        fail_msg("cannot open corpus directory %s", GRAMMAR_CORPUS);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", GRAMMAR_CORPUS, e->d_name);
        size_t len;
        char *file = tu_read_file(path, &len);
        assert_non_null(file);
        assert_true(len >= 1);
        uint8_t *buf = malloc(len);
        assert_non_null(buf);
        memcpy(buf, file, len);
        free(file);
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);
        buf[0] ^= 1;
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);
        free(buf);
        n++;
    }
    closedir(d);
    print_message("%d seeds replayed\n", n);
    assert_true(n >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
