/* test_isa_env.c — $PONDER_ISA is honoured at init: run by CTest with PONDER_ISA set and
 * PONDER_ISA_EXPECT naming the outcome ("scalar", or "best" when the name is bogus and
 * must be ignored). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/tensor.h"

#include <stdlib.h>
#include <string.h>

static void test_env_path(void **state)
{
    (void)state;
    const char *expect = getenv("PONDER_ISA_EXPECT");
    assert_non_null(expect);
    char first[32];
    strncpy(first, ponder_cpu_isa(), sizeof first - 1); /* the path init chose */
    first[sizeof first - 1] = '\0';
    assert_int_equal(ponder_tensor_force_isa("auto", NULL), PONDER_OK);
    const char *best = ponder_cpu_isa();
    if (strcmp(expect, "best") == 0)
        assert_string_equal(first, best);
    else
        assert_string_equal(first, expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_env_path)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
