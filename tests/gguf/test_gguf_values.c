/*
 * test_gguf_values.c — metadata value decoding and the typed getters' rules: widening,
 * range checks, NOT_FOUND leaving err untouched, FORMAT naming key and actual type, and
 * the array element helpers. The file is built byte by byte so the expected values are
 * independent of the reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "gguf_build.h"
#include "ponder/gguf.h"

static gb g_buf;
static ponder_gguf *g_gguf;

static void key(gb *b, const char *k, ponder_gguf_type t)
{
    gb_str(b, k);
    gb_u32(b, (uint32_t)t);
}

static int setup(void **state)
{
    (void)state;
    gb *b = &g_buf;
    gb_header(b, 3, 1, 22);
    key(b, "u8", PONDER_GGUF_UINT8), gb_u8(b, 200);
    key(b, "i8", PONDER_GGUF_INT8), gb_u8(b, (uint8_t)-5);
    key(b, "u16", PONDER_GGUF_UINT16), gb_u16(b, 60000);
    key(b, "i16", PONDER_GGUF_INT16), gb_u16(b, (uint16_t)-300);
    key(b, "u32", PONDER_GGUF_UINT32), gb_u32(b, 4000000000u);
    key(b, "i32", PONDER_GGUF_INT32), gb_u32(b, (uint32_t)-7);
    float f = 0.5f;
    key(b, "f32", PONDER_GGUF_FLOAT32), gb_raw(b, &f, 4);
    key(b, "bool", PONDER_GGUF_BOOL), gb_u8(b, 2); /* any non-zero byte is true, as llama.cpp */
    key(b, "str", PONDER_GGUF_STRING), gb_str(b, "hello");
    key(b, "u64", PONDER_GGUF_UINT64), gb_u64(b, (UINT64_C(1) << 63) + 1);
    key(b, "i64", PONDER_GGUF_INT64), gb_u64(b, (uint64_t)-(INT64_C(1) << 40));
    double d = 3.25;
    key(b, "f64", PONDER_GGUF_FLOAT64), gb_raw(b, &d, 8);
    key(b, "arr_i32", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_INT32), gb_u64(b, 3);
    gb_u32(b, 1), gb_u32(b, (uint32_t)-2), gb_u32(b, 3);
    key(b, "arr_str", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_STRING), gb_u64(b, 3);
    gb_str(b, "a"), gb_str(b, ""), gb_u64(b, 3), gb_raw(b, "c\0c", 3);
    key(b, "arr_arr", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_ARRAY), gb_u64(b, 2);
    gb_u32(b, PONDER_GGUF_UINT16), gb_u64(b, 2), gb_u16(b, 1), gb_u16(b, 2);
    gb_u32(b, PONDER_GGUF_UINT16), gb_u64(b, 1), gb_u16(b, 3);
    float fs[2] = {1.5f, -2.0f};
    key(b, "arr_f32", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_FLOAT32), gb_u64(b, 2), gb_raw(b, fs, 8);
    key(b, "arr_bool", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_BOOL), gb_u64(b, 2), gb_u8(b, 0), gb_u8(b, 5);
    key(b, "i16p", PONDER_GGUF_INT16), gb_u16(b, 300);
    key(b, "arr_u8", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_UINT8), gb_u64(b, 1), gb_u8(b, 255);
    key(b, "arr_i8", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_INT8), gb_u64(b, 1), gb_u8(b, 0xff);
    key(b, "arr_u64", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_UINT64), gb_u64(b, 1), gb_u64(b, UINT64_MAX);
    key(b, "arr_i64", PONDER_GGUF_ARRAY), gb_u32(b, PONDER_GGUF_INT64), gb_u64(b, 1), gb_u64(b, (uint64_t)-5);
    gb_tensor(b, "w", 2, (uint64_t[]){32, 3}, PONDER_TYPE_Q8_0, 0);
    gb_pad(b, 32);
    for (int i = 0; i < 3 * 34; i++)
        gb_u8(b, (uint8_t)i);
    ponder_error err = {0};
    if (ponder_gguf_open_memory(g_buf.p, g_buf.n, "values.gguf", &g_gguf, &err) != PONDER_OK) {
        print_error("%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ponder_gguf_free(g_gguf);
    gb_free(&g_buf);
    return 0;
}

static void test_raw_values(void **state)
{
    (void)state;
    const ponder_gguf *g = g_gguf;
    assert_int_equal(ponder_gguf_n_kv(g), 22);
    assert_string_equal(ponder_gguf_kv_key(g, 0), "u8");
    assert_null(ponder_gguf_kv_key(g, 22));
    assert_null(ponder_gguf_kv_key(g, -1));
    assert_null(ponder_gguf_kv_value(g, 22));
    assert_int_equal(ponder_gguf_find_kv(g, "f64"), 11);
    assert_int_equal(ponder_gguf_find_kv(g, "nope"), -1);
    assert_null(ponder_gguf_get(g, "nope"));
    assert_int_equal(ponder_gguf_get(g, "u8")->v.u64, 200);
    assert_int_equal(ponder_gguf_get(g, "i8")->v.i64, -5);
    assert_int_equal(ponder_gguf_get(g, "i16")->v.i64, -300);
    assert_true(ponder_gguf_get(g, "bool")->v.b);
    assert_true(ponder_gguf_get(g, "f32")->v.f64 == 0.5);
    assert_int_equal(ponder_gguf_get(g, "i64")->v.i64, -(INT64_C(1) << 40));
    const ponder_gguf_tensor *t = ponder_gguf_find_tensor(g, "w");
    assert_non_null(t);
    assert_int_equal(t->n_bytes, 3 * 34);
    assert_int_equal(((const uint8_t *)t->data)[101], 101);
    assert_null(ponder_gguf_tensor_at(g, 1));
    assert_null(ponder_gguf_tensor_at(g, -1));
}

static void test_get_i64_u32(void **state)
{
    (void)state;
    const ponder_gguf *g = g_gguf;
    ponder_error err = {0};
    int64_t i;
    uint32_t u;
    assert_int_equal(ponder_gguf_get_i64(g, "u8", &i, &err), PONDER_OK), assert_int_equal(i, 200);
    assert_int_equal(ponder_gguf_get_i64(g, "i8", &i, &err), PONDER_OK), assert_int_equal(i, -5);
    assert_int_equal(ponder_gguf_get_i64(g, "u16", &i, &err), PONDER_OK), assert_int_equal(i, 60000);
    assert_int_equal(ponder_gguf_get_i64(g, "u32", &i, &err), PONDER_OK), assert_int_equal(i, 4000000000);
    assert_int_equal(ponder_gguf_get_i64(g, "bool", &i, &err), PONDER_OK), assert_int_equal(i, 1);
    assert_int_equal(ponder_gguf_get_i64(g, "i64", &i, &err), PONDER_OK);
    assert_int_equal(i, -(INT64_C(1) << 40));
    assert_int_equal(ponder_gguf_get_i64(g, "u64", &i, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'u64'"));
    assert_int_equal(ponder_gguf_get_i64(g, "f32", &i, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "key 'f32' has type f32"));

    assert_int_equal(ponder_gguf_get_u32(g, "u32", &u, &err), PONDER_OK), assert_int_equal(u, 4000000000u);
    assert_int_equal(ponder_gguf_get_u32(g, "u16", &u, &err), PONDER_OK), assert_int_equal(u, 60000);
    assert_int_equal(ponder_gguf_get_u32(g, "i16p", &u, &err), PONDER_OK), assert_int_equal(u, 300);
    assert_int_equal(ponder_gguf_get_u32(g, "bool", &u, &err), PONDER_OK), assert_int_equal(u, 1);
    assert_int_equal(ponder_gguf_get_u32(g, "i32", &u, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "-7"));
    assert_int_equal(ponder_gguf_get_u32(g, "u64", &u, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_gguf_get_u32(g, "i64", &u, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_gguf_get_u32(g, "str", &u, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "key 'str' has type string"));
    assert_int_equal(err.code, PONDER_ERR_FORMAT);
}

static void test_get_f64_bool_str(void **state)
{
    (void)state;
    const ponder_gguf *g = g_gguf;
    ponder_error err = {0};
    double d;
    bool b;
    ponder_gguf_str s;
    assert_int_equal(ponder_gguf_get_f64(g, "f32", &d, &err), PONDER_OK), assert_true(d == 0.5);
    assert_int_equal(ponder_gguf_get_f64(g, "f64", &d, &err), PONDER_OK), assert_true(d == 3.25);
    assert_int_equal(ponder_gguf_get_f64(g, "i32", &d, &err), PONDER_OK), assert_true(d == -7.0);
    assert_int_equal(ponder_gguf_get_f64(g, "u64", &d, &err), PONDER_OK);
    assert_true(d == ldexp(1.0, 63));
    assert_int_equal(ponder_gguf_get_f64(g, "bool", &d, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_gguf_get_f64(g, "arr_f32", &d, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "array of f32"));

    assert_int_equal(ponder_gguf_get_bool(g, "bool", &b, &err), PONDER_OK), assert_true(b);
    assert_int_equal(ponder_gguf_get_bool(g, "u8", &b, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "key 'u8' has type u8"));

    assert_int_equal(ponder_gguf_get_str(g, "str", &s, &err), PONDER_OK);
    assert_true(ponder_gguf_str_eq(s, "hello"));
    assert_false(ponder_gguf_str_eq(s, "hell"));
    assert_false(ponder_gguf_str_eq(s, "hello!"));
    assert_int_equal(ponder_gguf_get_str(g, "u32", &s, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "key 'u32' has type u32"));
}

static void test_not_found_leaves_err(void **state)
{
    (void)state;
    const ponder_gguf *g = g_gguf;
    ponder_error err = {.code = PONDER_ERR_IO, .msg = "sentinel"};
    int64_t i = 77;
    uint32_t u = 77;
    double d = 77;
    bool b = true;
    ponder_gguf_str s = {"x", 1};
    const ponder_gguf_array *a = (const ponder_gguf_array *)&s;
    assert_int_equal(ponder_gguf_get_i64(g, "absent", &i, &err), PONDER_ERR_NOT_FOUND);
    assert_int_equal(ponder_gguf_get_u32(g, "absent", &u, &err), PONDER_ERR_NOT_FOUND);
    assert_int_equal(ponder_gguf_get_f64(g, "absent", &d, &err), PONDER_ERR_NOT_FOUND);
    assert_int_equal(ponder_gguf_get_bool(g, "absent", &b, &err), PONDER_ERR_NOT_FOUND);
    assert_int_equal(ponder_gguf_get_str(g, "absent", &s, &err), PONDER_ERR_NOT_FOUND);
    assert_int_equal(ponder_gguf_get_arr(g, "absent", PONDER_GGUF_TYPE_COUNT, &a, &err), PONDER_ERR_NOT_FOUND);
    assert_int_equal(err.code, PONDER_ERR_IO);
    assert_string_equal(err.msg, "sentinel");
    assert_int_equal(i, 77), assert_int_equal(u, 77), assert_true(d == 77 && b);
    /* and err may be NULL */
    assert_int_equal(ponder_gguf_get_i64(g, "absent", &i, NULL), PONDER_ERR_NOT_FOUND);
    assert_int_equal(ponder_gguf_get_i64(g, "str", &i, NULL), PONDER_ERR_FORMAT);
}

static void test_arrays(void **state)
{
    (void)state;
    const ponder_gguf *g = g_gguf;
    ponder_error err = {0};
    const ponder_gguf_array *a;

    assert_int_equal(ponder_gguf_get_arr(g, "arr_i32", PONDER_GGUF_INT32, &a, &err), PONDER_OK);
    assert_int_equal(a->n, 3);
    assert_int_equal(ponder_gguf_array_i64(a, 1), -2);
    assert_true(ponder_gguf_array_f64(a, 2) == 3.0);
    assert_null(a->elems);
    assert_null(ponder_gguf_array_str(a, 0).data);
    assert_null(ponder_gguf_array_sub(a, 0));
    assert_int_equal(ponder_gguf_get_arr(g, "arr_i32", PONDER_GGUF_UINT32, &a, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "key 'arr_i32' has type array of i32, expected array of u32"));
    assert_int_equal(ponder_gguf_get_arr(g, "u32", PONDER_GGUF_TYPE_COUNT, &a, &err), PONDER_ERR_FORMAT);
    assert_int_equal(ponder_gguf_get_arr(g, "arr_f32", PONDER_GGUF_TYPE_COUNT, &a, &err), PONDER_OK);
    assert_true(ponder_gguf_array_f64(a, 0) == 1.5 && ponder_gguf_array_f64(a, 1) == -2.0);

    assert_int_equal(ponder_gguf_get_arr(g, "arr_str", PONDER_GGUF_STRING, &a, &err), PONDER_OK);
    assert_int_equal(a->n, 3);
    assert_null(a->data);
    assert_true(ponder_gguf_str_eq(ponder_gguf_array_str(a, 0), "a"));
    assert_int_equal(ponder_gguf_array_str(a, 1).len, 0);
    ponder_gguf_str s2 = ponder_gguf_array_str(a, 2); /* strings may hold NUL bytes */
    assert_int_equal(s2.len, 3);
    assert_memory_equal(s2.data, "c\0c", 3);

    assert_int_equal(ponder_gguf_get_arr(g, "arr_arr", PONDER_GGUF_ARRAY, &a, &err), PONDER_OK);
    assert_int_equal(a->n, 2);
    const ponder_gguf_array *s0 = ponder_gguf_array_sub(a, 0), *s1 = ponder_gguf_array_sub(a, 1);
    assert_int_equal(s0->elem_type, PONDER_GGUF_UINT16);
    assert_int_equal(s0->n, 2);
    assert_int_equal(ponder_gguf_array_i64(s0, 1), 2);
    assert_int_equal(s1->n, 1);
    assert_int_equal(ponder_gguf_array_i64(s1, 0), 3);

    assert_int_equal(ponder_gguf_get_arr(g, "arr_u8", PONDER_GGUF_UINT8, &a, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_array_i64(a, 0), 255);
    assert_int_equal(ponder_gguf_get_arr(g, "arr_i8", PONDER_GGUF_INT8, &a, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_array_i64(a, 0), -1);
    assert_true(ponder_gguf_array_f64(a, 0) == -1.0);
    assert_int_equal(ponder_gguf_get_arr(g, "arr_u64", PONDER_GGUF_UINT64, &a, &err), PONDER_OK);
    assert_true(ponder_gguf_array_f64(a, 0) == 18446744073709551615.0);
    assert_int_equal(ponder_gguf_get_arr(g, "arr_i64", PONDER_GGUF_INT64, &a, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_array_i64(a, 0), -5);
    assert_true(ponder_gguf_array_f64(a, 0) == -5.0);

    assert_int_equal(ponder_gguf_get_arr(g, "arr_bool", PONDER_GGUF_BOOL, &a, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_array_i64(a, 0), 0);
    assert_int_equal(ponder_gguf_array_i64(a, 1), 1);
}

static void test_type_names(void **state)
{
    (void)state;
    const char *want[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
                          "f64"};
    for (int t = 0; t < PONDER_GGUF_TYPE_COUNT; t++)
        assert_string_equal(ponder_gguf_type_name((ponder_gguf_type)t), want[t]);
    assert_string_equal(ponder_gguf_type_name(PONDER_GGUF_TYPE_COUNT), "?");
    assert_string_equal(ponder_gguf_type_name((ponder_gguf_type)-1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_values),
        cmocka_unit_test(test_get_i64_u32),
        cmocka_unit_test(test_get_f64_bool_str),
        cmocka_unit_test(test_not_found_leaves_err),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
