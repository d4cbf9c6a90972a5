/*
 * test_tools_corpus.c — replays the fuzz seed corpus (fuzz/corpus/tool_calls) through the
 * harness in the normal test build, each seed in all four formats (first byte varied), so
 * the harness's invariants run everywhere, not only in clang fuzz builds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/tool_calls_fuzz.c */

static void one(const char *name, uint8_t *data, size_t len, void *user)
{
    (void)name;
    int *n = user;
    for (int f = 0; f < 4 && len > 0; f++) {
        data[0] = (uint8_t)f;
        assert_int_equal(LLVMFuzzerTestOneInput(data, len), 0);
    }
    (*n)++;
}

static void test_replay(void **state)
{
    (void)state;
    int n = 0;
    int files = tu_corpus_replay(TOOLS_CORPUS, LLVMFuzzerTestOneInput, one, &n);
    assert_true(files > 0);
    assert_int_equal(files, n);
    print_message("%d seeds replayed\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
