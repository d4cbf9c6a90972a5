/*
 * test_json.c — ponder_json_dumps and the number formatters: every float and double read
 * back exactly (random bit patterns), the shortest text for known values, and the same
 * bytes as jansson's compact dump for everything that is not a real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/json.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_float(float f, const char *want)
{
    char buf[PONDER_NUM_TEXT_BYTES];
    ponder_fmt_float(f, buf);
    assert_string_equal(buf, want);
}

static void check_real(double d, const char *want)
{
    char buf[PONDER_NUM_TEXT_BYTES];
    ponder_fmt_real(d, buf);
    assert_string_equal(buf, want);
}

static void test_known_values(void **state)
{
    (void)state;
    check_float(0.1f, "0.1");
    check_float(-2.345679f, "-2.345679");
    check_float(1e-5f, "1e-5");
    check_float(123456792.0f, "123456790");
    check_float(1.5e20f, "1.5e20");
    check_float(0.0001f, "0.0001");
    check_float(-0.00012345f, "-0.00012345");
    check_float(1234.5f, "1234.5");
    check_float(FLT_MAX, "3.4028235e38");
    check_float(1e-45f, "1e-45"); /* the smallest denormal */
    check_float(-1e-5f, "-1e-5");
    check_float(0.0f, "0");
    check_float(INFINITY, "null");
    char buf[PONDER_NUM_TEXT_BYTES];
    ponder_fmt_double(0.1, buf);
    assert_string_equal(buf, "0.1");
    ponder_fmt_double(1.0 / 3.0, buf);
    assert_string_equal(buf, "0.3333333333333333");
    ponder_fmt_double(5e-324, buf);
    assert_string_equal(buf, "5e-324");
    ponder_fmt_double(DBL_MAX, buf);
    assert_string_equal(buf, "1.7976931348623157e308");
    check_real(1.0, "1.0");
    check_real(-0.0, "-0.0");
    check_real(100.0, "100.0");
    check_real(2.5, "2.5");
    check_real((double)0.1f, "0.1");           /* a float's value: the float's shortest text */
    check_real((double)-2.345679f, "-2.345679");
    check_real(0.1, "0.1");
    check_real(1e20, "1e20");
    check_real(1.0 / 3.0, "0.3333333333333333");
    check_real(12.345678901234567, "12.345678901234567");
}

static void test_round_trip(void **state)
{
    (void)state;
    char buf[PONDER_NUM_TEXT_BYTES];
    for (int i = 0; i < 50000; i++) {
        uint32_t bits = (uint32_t)rng();
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f))
            continue;
        ponder_fmt_float(f, buf);
        assert_true(strtof(buf, NULL) == f);
        assert_true(strlen(buf) < PONDER_NUM_TEXT_BYTES);
        uint64_t dbits = rng();
        double d;
        memcpy(&d, &dbits, sizeof d);
        if (!isfinite(d))
            continue;
        ponder_fmt_double(d, buf);
        assert_true(strtod(buf, NULL) == d);
        ponder_fmt_real(d, buf);
        assert_true(strtod(buf, NULL) == d);
        assert_non_null(strpbrk(buf, ".e"));
    }
}

/* Everything but reals: the same bytes as jansson. */
static void test_same_as_jansson(void **state)
{
    (void)state;
    char all_controls[40];
    for (int i = 0; i < 32; i++)
        all_controls[i] = (char)(i + 1 < 32 ? i + 1 : 0x7f);
    all_controls[32] = '\0';
    json_t *j = json_pack("{s:s, s:[s, s, i, I, I, b, b, n, [], {}], s:{s:s, s:[[[]]]}}", "plain", "héllo 🙂 \"q\" \\ /",
                          "list", all_controls, "tab\there", 42, (json_int_t)INT64_MAX, (json_int_t)INT64_MIN, 1, 0,
                          "key \"with\"\nescapes", "v", "nested", "");
    assert_non_null(j);
    json_array_append_new(json_object_get(j, "list"), json_stringn("nul\0byte", 8));
    json_object_setn_new(j, "k\0ey", 4, json_integer(-7));
    char *ours = ponder_json_dumps(j), *theirs = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(ours);
    assert_non_null(theirs);
    assert_string_equal(ours, theirs);
    free(ours);
    free(theirs);
    json_t *s = json_string("alone");
    ours = ponder_json_dumps(s);
    assert_string_equal(ours, "\"alone\"");
    free(ours);
    json_decref(s);
    json_decref(j);
    assert_null(ponder_json_dumps(NULL));
}

static void test_reals_in_trees(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:f, s:[f, f, f, f], s:i}", "a", 0.1, "b", 1.5, (double)-2.345679f, 1e300, 3.0, "n", 3);
    char *s = ponder_json_dumps(j);
    assert_string_equal(s, "{\"a\":0.1,\"b\":[1.5,-2.345679,1e300,3.0],\"n\":3}");
    json_error_t e;
    json_t *back = json_loads(s, 0, &e); /* still reals, read back */
    assert_non_null(back);
    assert_true(json_is_real(json_array_get(json_object_get(back, "b"), 3)));
    assert_true((float)json_real_value(json_array_get(json_object_get(back, "b"), 1)) == -2.345679f);
    json_decref(back);
    free(s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_same_as_jansson),
        cmocka_unit_test(test_reals_in_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
