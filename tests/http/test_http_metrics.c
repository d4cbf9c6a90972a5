/*
 * test_http_metrics.c — /metrics tells the truth (issue 18): every status code is counted,
 * however many distinct ones came before it (only the first 8 distinct codes were: a 503
 * after them vanished and alerts stayed silent); cancelled and failed requests and timed-out
 * connections have their own counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

/* The value of one exposition line "NAME VALUE", or -1 when absent. */
static long long value_of(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? atoll(p + strlen(key)) : -1;
}

static void every_status_counted(void **state)
{
    (void)state;
    http_metrics m;
    http_metrics_init(&m);
    static const int codes[] = { 200, 204, 400, 401, 404, 405, 413, 429, 500, 502, 503, 504 };
    const int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++)
        for (int k = 0; k <= i; k++)
            http_metrics_count_status(&m, codes[i]);
    http_metrics_count_status(&m, 42); /* outside 100..599: "other", not lost */
    char *text = http_metrics_render(&m);
    assert_non_null(text);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "ponder_requests_total{code=\"%d\"}", codes[i]);
        assert_int_equal(value_of(text, name), i + 1);
    }
    assert_int_equal(value_of(text, "ponder_requests_total{code=\"other\"}"), 1);
    free(text);
    http_metrics_destroy(&m);
}

static void outcomes_counted(void **state)
{
    (void)state;
    http_metrics m;
    http_metrics_init(&m);
    http_metrics_add_tokens(&m, 10, 7); /* a cancelled request's tokens are added as any other's */
    http_metrics_count_cancelled(&m);
    http_metrics_count_failed(&m);
    http_metrics_count_failed(&m);
    http_metrics_count_timeout(&m);
    char *text = http_metrics_render(&m);
    assert_non_null(text);
    assert_int_equal(value_of(text, "ponder_completion_tokens_total"), 7);
    assert_int_equal(value_of(text, "ponder_requests_cancelled_total"), 1);
    assert_int_equal(value_of(text, "ponder_requests_failed_total"), 2);
    assert_int_equal(value_of(text, "ponder_connections_timed_out_total"), 1);
    free(text);
    http_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_status_counted),
        cmocka_unit_test(outcomes_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
