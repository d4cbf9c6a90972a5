/*
 * test_gguf_bad.c — one handcrafted bad file per failure mode (as llama.cpp's
 * tests/test-gguf.cpp does). Each must fail with the right status and a message naming
 * the file, the byte offset and the problem; a valid baseline built the same way must
 * open, so each case differs from a good file by exactly its defect.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gguf_build.h"
#include "ponder/gguf.h"

enum { F32 = 0, Q4_0 = 2, UINT32_T = 4, STRING_T = 8, ARRAY_T = 9 };

/* Opens b copied into an exact-size heap block, so ASan sees any over-read; a handle
 * that opens anyway is freed before its buffer. */
static ponder_status open_buf(const gb *b, ponder_gguf **g, ponder_error *err)
{
    void *copy = malloc(b->n ? b->n : 1);
    assert_non_null(copy);
    memcpy(copy, b->p, b->n);
    ponder_status st = ponder_gguf_open_memory(copy, b->n, "bad.gguf", g, err);
    if (st == PONDER_OK) {
        ponder_gguf_free(*g);
        *g = NULL;
    }
    free(copy);
    return st;
}

/* Asserts b fails with FORMAT and that the message has the file name, the offset and
 * the keyword. */
static void expect_fail(gb *b, const char *keyword)
{
    ponder_gguf *g = (ponder_gguf *)0x1;
    ponder_error err = {0};
    ponder_status st = open_buf(b, &g, &err);
    if (getenv("PONDER_TEST_VERBOSE"))
        print_message("%s\n", err.msg);
    if (st != PONDER_ERR_FORMAT)
        fail_msg("expected FORMAT error with '%s', got status %d: %s", keyword, st, err.msg);
    assert_null(g);
    assert_int_equal(err.code, PONDER_ERR_FORMAT);
    if (!strstr(err.msg, keyword))
        fail_msg("message lacks '%s': %s", keyword, err.msg);
    assert_non_null(strstr(err.msg, "bad.gguf"));
    if (!strstr(err.msg, "bad.gguf: offset "))
        fail_msg("message lacks the offset: %s", err.msg);
    gb_free(b);
}

/* A valid file: 2 KVs, one F32 tensor 't' of 8 elements at offset 0. */
static void good_file(gb *b, uint32_t version)
{
    gb_header(b, version, 1, 2);
    gb_kv_str(b, "general.architecture", "test");
    gb_kv_u32(b, "test.n", 7);
    gb_tensor(b, "t", 1, (uint64_t[]){8}, F32, 0);
    gb_pad(b, 32);
    gb_zeros(b, 32);
}

static void test_baseline_opens(void **state)
{
    (void)state;
    for (uint32_t v = 2; v <= 3; v++) {
        gb b = {0};
        good_file(&b, v);
        ponder_gguf *g = NULL;
        ponder_error err = {0};
        assert_int_equal(ponder_gguf_open_memory(b.p, b.n, "good.gguf", &g, &err), PONDER_OK);
        assert_int_equal(ponder_gguf_version(g), v);
        assert_int_equal(ponder_gguf_n_tensors(g), 1);
        assert_int_equal(ponder_gguf_tensor_at(g, 0)->n_bytes, 32);
        ponder_gguf_free(g);
        gb_free(&b);
    }
}

static void test_bad_magic(void **state)
{
    (void)state;
    gb b = {0};
    good_file(&b, 3);
    memcpy(b.p, "GGML", 4);
    expect_fail(&b, "magic");
}

static void test_empty_and_tiny(void **state)
{
    (void)state;
    gb b = {0};
    gb_raw(&b, "GGU", 3);
    expect_fail(&b, "truncated");
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_open_memory(NULL, 0, "empty.gguf", &g, &err), PONDER_ERR_FORMAT);
    assert_null(g);
}

static void test_version_1(void **state)
{
    (void)state;
    gb b = {0};
    good_file(&b, 1);
    expect_fail(&b, "version 1");
}

static void test_version_4(void **state)
{
    (void)state;
    gb b = {0};
    good_file(&b, 4);
    expect_fail(&b, "version 4");
    good_file(&b, 0);
    expect_fail(&b, "version 0 (supported: 2, 3)");
    good_file(&b, 0x03000000); /* v3 written big-endian */
    expect_fail(&b, "big-endian");
}

static void test_n_kv_huge(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, UINT64_C(1) << 60);
    gb_kv_u32(&b, "a", 1);
    expect_fail(&b, "key/value count");
}

static void test_n_tensors_huge(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, UINT64_MAX, 1);
    gb_kv_u32(&b, "a", 1);
    expect_fail(&b, "tensor count");
}

static void test_string_length_huge(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.name");
    gb_u32(&b, STRING_T);
    gb_u64(&b, 99999999999ULL);
    gb_raw(&b, "abc", 3);
    expect_fail(&b, "string length 99999999999 exceeds file size");

    gb_header(&b, 3, 0, 1); /* the key itself */
    gb_u64(&b, UINT64_MAX);
    gb_zeros(&b, 16);
    expect_fail(&b, "key length 18446744073709551615 exceeds file size");
}

static void test_key_with_nul(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 3);
    gb_raw(&b, "a\0b", 3);
    gb_u32(&b, UINT32_T);
    gb_u32(&b, 1);
    expect_fail(&b, "NUL");
}

static void test_unknown_value_type(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "x");
    gb_u32(&b, 13);
    gb_u32(&b, 0);
    expect_fail(&b, "key 'x' has unknown value type 13");
}

static void test_unknown_array_elem_type(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "x");
    gb_u32(&b, ARRAY_T);
    gb_u32(&b, 77);
    gb_u64(&b, 1);
    gb_u32(&b, 0);
    expect_fail(&b, "unknown array element type 77");
}

static void test_array_count_huge(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "x");
    gb_u32(&b, ARRAY_T);
    gb_u32(&b, UINT32_T);
    gb_u64(&b, UINT64_C(1) << 62); /* n * 4 would overflow 64 bits */
    gb_u32(&b, 0);
    expect_fail(&b, "array count");

    gb_header(&b, 3, 0, 1);
    gb_str(&b, "x");
    gb_u32(&b, ARRAY_T);
    gb_u32(&b, STRING_T);
    gb_u64(&b, 1000000); /* would allocate 1e6 values for 8 bytes of file */
    gb_u64(&b, 0);
    expect_fail(&b, "array count");
}

static void test_unknown_tensor_type(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "blk.0.w", 1, (uint64_t[]){8}, 99, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_fail(&b, "tensor 'blk.0.w' has unknown type id 99");
    gb_header(&b, 3, 1, 0); /* a hole in the id space (GGML's removed Q4_2) */
    gb_tensor(&b, "blk.0.w", 1, (uint64_t[]){8}, 4, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_fail(&b, "unknown type id 4");
}

static void test_n_dims_5(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 5, (uint64_t[]){1, 1, 1, 1, 8}, F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_fail(&b, "5 dimensions");
}

static void test_ne_not_block_multiple(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "q", 2, (uint64_t[]){48, 2}, Q4_0, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 128);
    expect_fail(&b, "not a multiple of the Q4_0 block size 32");
}

static void test_ne_negative(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 2, (uint64_t[]){8, (uint64_t)-2}, F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_fail(&b, "negative");
}

static void test_ne_overflow(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 4, (uint64_t[]){1 << 20, 1 << 20, 1 << 20, 1 << 20}, F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_fail(&b, "overflows");
    /* elements fit in int64 but bytes do not */
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 2, (uint64_t[]){UINT64_C(1) << 31, UINT64_C(1) << 31}, F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_fail(&b, "overflows");
}

static void test_tensor_outside_file(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 1, (uint64_t[]){8}, F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 31); /* one byte short */
    expect_fail(&b, "tensor 't' data at offset");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 1, (uint64_t[]){8}, F32, UINT64_MAX - 31); /* aligned, start+size wraps */
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_fail(&b, "file has");
}

static void test_misaligned_offset(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "t", 1, (uint64_t[]){8}, F32, 4);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_fail(&b, "not a multiple of the alignment 32");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 0, 3);
    gb_kv_u32(&b, "a", 1);
    gb_kv_u32(&b, "b", 2);
    gb_kv_str(&b, "a", "again");
    expect_fail(&b, "duplicate key 'a'");
}

static void test_duplicate_tensor(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "w", 1, (uint64_t[]){8}, F32, 0);
    gb_tensor(&b, "w", 1, (uint64_t[]){8}, F32, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_fail(&b, "duplicate tensor name 'w'");
}

static void test_alignment_bad(void **state)
{
    (void)state;
    const uint32_t bad[] = {0, 3, 48, 0x80000001u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gb b = {0};
        gb_header(&b, 3, 0, 1);
        gb_kv_u32(&b, "general.alignment", bad[i]);
        expect_fail(&b, "power of two");
    }
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.alignment", "32");
    expect_fail(&b, "expected u32");
}

static void test_alignment_respected(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 3, 1, 1);
    gb_kv_u32(&b, "general.alignment", 256);
    gb_tensor(&b, "t", 1, (uint64_t[]){8}, F32, 0);
    gb_pad(&b, 256);
    gb_zeros(&b, 32);
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_open_memory(b.p, b.n, "a.gguf", &g, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_alignment(g), 256);
    assert_int_equal(ponder_gguf_data_offset(g), 256);
    assert_ptr_equal(ponder_gguf_tensor_at(g, 0)->data, b.p + 256);
    ponder_gguf_free(g);
    gb_free(&b);
    /* offset 32 is aligned for the default but not for 256 */
    gb_header(&b, 3, 1, 1);
    gb_kv_u32(&b, "general.alignment", 256);
    gb_tensor(&b, "t", 1, (uint64_t[]){8}, F32, 32);
    gb_pad(&b, 256);
    gb_zeros(&b, 64);
    expect_fail(&b, "alignment 256");
}

static void nest(gb *b, int depth)
{
    /* depth arrays, each holding one array, innermost holding one u32 */
    for (int i = 0; i < depth - 1; i++) {
        gb_u32(b, ARRAY_T);
        gb_u64(b, 1);
    }
    gb_u32(b, UINT32_T);
    gb_u64(b, 1);
    gb_u32(b, 42);
}

static void test_nested_depth_bomb(void **state)
{
    (void)state;
    gb b = {0};
    /* at the cap: fine */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "deep");
    gb_u32(&b, ARRAY_T);
    nest(&b, 16);
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_open_memory(b.p, b.n, "deep.gguf", &g, &err), PONDER_OK);
    const ponder_gguf_array *a = &ponder_gguf_get(g, "deep")->v.arr;
    for (int i = 0; i < 15; i++)
        a = ponder_gguf_array_sub(a, 0);
    assert_int_equal(a->elem_type, PONDER_GGUF_UINT32);
    assert_int_equal(ponder_gguf_array_i64(a, 0), 42);
    ponder_gguf_free(g);
    gb_free(&b);
    /* one level over the cap */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "deep");
    gb_u32(&b, ARRAY_T);
    nest(&b, 17);
    expect_fail(&b, "nested deeper than 16");
    /* a bomb: 100k levels would overflow the stack without the cap */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "deep");
    gb_u32(&b, ARRAY_T);
    nest(&b, 100000);
    expect_fail(&b, "nested deeper than 16");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline_opens),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_empty_and_tiny),
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_version_4),
        cmocka_unit_test(test_n_kv_huge),
        cmocka_unit_test(test_n_tensors_huge),
        cmocka_unit_test(test_string_length_huge),
        cmocka_unit_test(test_key_with_nul),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_unknown_array_elem_type),
        cmocka_unit_test(test_array_count_huge),
        cmocka_unit_test(test_unknown_tensor_type),
        cmocka_unit_test(test_n_dims_5),
        cmocka_unit_test(test_ne_not_block_multiple),
        cmocka_unit_test(test_ne_negative),
        cmocka_unit_test(test_ne_overflow),
        cmocka_unit_test(test_tensor_outside_file),
        cmocka_unit_test(test_misaligned_offset),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_duplicate_tensor),
        cmocka_unit_test(test_alignment_bad),
        cmocka_unit_test(test_alignment_respected),
        cmocka_unit_test(test_nested_depth_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
