/*
 * test_route_sse.c — the incremental SSE parser: the same stream fed whole, byte by byte
 * and split at every position gives the same events; "\r\n", "\r" and "\n" line ends,
 * comments, other fields, multi-line data, a callback that stops, the size bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/route_internal.h"

typedef struct events {
    char text[4096]; /* events joined by '|' */
    int n, stop_after;
} events;

static bool collect(const char *data, size_t len, void *user)
{
    events *e = user;
    assert_int_equal(strlen(data), len); /* NUL-terminated */
    strncat(e->text, data, sizeof e->text - strlen(e->text) - 2);
    strcat(e->text, "|");
    e->n++;
    return !(e->stop_after && e->n >= e->stop_after);
}

static const char stream[] = ": keep-alive\n\n"
                             "data: {\"a\":1}\n\n"
                             "event: message\r\nid: 7\r\ndata:{\"b\":2}\r\n\r\n"
                             "data: line1\ndata: line2\n\n"
                             "retry: 10\n\n"
                             "data\n\n"
                             "data:  two spaces\r\r"
                             "data: [DONE]\n\n"
                             "data: unterminated";
static const char want[] = "{\"a\":1}|{\"b\":2}|line1\nline2||" " two spaces|[DONE]|";

static void feed_split(const char *s, size_t n, const size_t *cuts, int n_cuts, events *e)
{
    rt_sse p;
    rt_sse_init(&p);
    size_t pos = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        assert_true(rt_sse_feed(&p, s + pos, end - pos, collect, e));
        pos = end;
    }
    rt_sse_free(&p);
}

static void test_whole_and_bytewise(void **state)
{
    (void)state;
    size_t n = strlen(stream);
    events e = { 0 };
    feed_split(stream, n, NULL, 0, &e);
    assert_string_equal(e.text, want);
    assert_int_equal(e.n, 6);

    events b = { 0 };
    rt_sse p;
    rt_sse_init(&p);
    for (size_t i = 0; i < n; i++)
        assert_true(rt_sse_feed(&p, stream + i, 1, collect, &b));
    rt_sse_free(&p);
    assert_string_equal(b.text, want);
}

static void test_every_split_point(void **state)
{
    (void)state;
    size_t n = strlen(stream);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 7) {
            size_t cuts[2] = { a, b };
            events e = { 0 };
            feed_split(stream, n, cuts, 2, &e);
            if (strcmp(e.text, want) != 0)
                fail_msg("split at %zu,%zu: got '%s'", a, b, e.text);
        }
    }
}

static void test_stop_and_limit(void **state)
{
    (void)state;
    events e = { .stop_after = 1 };
    rt_sse p;
    rt_sse_init(&p);
    assert_false(rt_sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18, collect, &e));
    assert_int_equal(e.n, 1);
    assert_false(p.oom);
    rt_sse_free(&p);

    rt_sse_init(&p);
    p.max_bytes = 16;
    events f = { 0 };
    assert_true(rt_sse_feed(&p, "data: short\n\n", 13, collect, &f));
    assert_false(rt_sse_feed(&p, "data: 0123456789abcdefghij", 26, collect, &f));
    assert_true(p.oom);
    assert_false(rt_sse_feed(&p, "\n\n", 2, collect, &f)); /* stays failed */
    assert_int_equal(f.n, 1);
    rt_sse_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_and_bytewise),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_stop_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
