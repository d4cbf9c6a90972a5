/* test_pool.c — ponder_pool: every thread runs each task once with the right (ith, nth),
 * (ith, nth) slices cover a range exactly once, thousands of back-to-back runs, runs
 * after the workers fell asleep, create/free cycles, one thread and the NULL pool
 * running inline, argument errors; dynamic runs (claimed work done exactly once, no
 * worker still inside fn after the call, workers at most once per task) and dynamic
 * runs interleaved with plain ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_T = 8 };

typedef struct {
    _Atomic int runs[MAX_T];
    _Atomic int bad_nth;
    int expect_nth;
    pthread_t caller;
    _Atomic int caller_was_0; /* slice 0 ran on the calling thread */
} census;

static void count_fn(void *arg, int ith, int nth)
{
    census *c = arg;
    if (nth != c->expect_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&c->bad_nth, 1);
    else
        atomic_fetch_add(&c->runs[ith], 1);
    if (ith == 0 && pthread_equal(pthread_self(), c->caller))
        atomic_fetch_add(&c->caller_was_0, 1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_every_thread_runs(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        ponder_pool *pool = NULL;
        assert_int_equal(ponder_pool_create(n, &pool, NULL), PONDER_OK);
        assert_non_null(pool);
        assert_int_equal(ponder_pool_n_threads(pool), n);
        census c;
        memset(&c, 0, sizeof c);
        c.expect_nth = n;
        c.caller = pthread_self();
        /* more threads than CPUs: every run waits for time slices, so fewer runs */
        const int runs = n <= ponder_cpu_count() ? 2000 : 50;
        for (int r = 0; r < runs; r++) {
            ponder_pool_run(pool, count_fn, &c);
            if (r % 500 == 499 || (runs < 500 && r % 20 == 19))
                sleep_ms(5); /* long enough for workers to go to sleep: the wake-up path */
        }
        assert_int_equal(atomic_load(&c.bad_nth), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(atomic_load(&c.runs[i]), runs);
        for (int i = n; i < MAX_T; i++)
            assert_int_equal(atomic_load(&c.runs[i]), 0);
        assert_int_equal(atomic_load(&c.caller_was_0), runs);
        ponder_pool_free(pool);
    }
}

/* Each thread sums its (ith, nth) slice of 0..N-1 and marks the elements it took. */
typedef struct {
    int64_t n;
    uint8_t *marks;
    int64_t partial[MAX_T];
} slice_task;

static void slice_fn(void *arg, int ith, int nth)
{
    slice_task *s = arg;
    const int64_t i0 = s->n * ith / nth, i1 = s->n * (ith + 1) / nth;
    int64_t sum = 0;
    for (int64_t i = i0; i < i1; i++) {
        s->marks[i]++;
        sum += i;
    }
    s->partial[ith] = sum;
}

static void test_slices_cover_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 3; n++) {
        ponder_pool *pool = NULL;
        assert_int_equal(ponder_pool_create(n, &pool, NULL), PONDER_OK);
        const int64_t sizes[] = {0, 1, 2, 3, 7, 1000, 100003};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            slice_task s = {.n = sizes[k]};
            s.marks = calloc((size_t)sizes[k] + 1, 1);
            assert_non_null(s.marks);
            ponder_pool_run(pool, slice_fn, &s);
            int64_t total = 0;
            for (int i = 0; i < n; i++)
                total += s.partial[i];
            assert_int_equal(total, sizes[k] * (sizes[k] - 1) / 2);
            for (int64_t i = 0; i < sizes[k]; i++)
                assert_int_equal(s.marks[i], 1);
            free(s.marks);
        }
        ponder_pool_free(pool);
    }
}

/* Back-to-back runs where each depends on the previous one's writes: a run must not
 * return before every slice has finished, nor a worker see a stale task. */
typedef struct {
    int64_t v[MAX_T * 16]; /* one cache line per thread */
    int round;
} chain_task;

static void chain_fn(void *arg, int ith, int nth)
{
    chain_task *c = arg;
    (void)nth;
    c->v[ith * 16] += c->round;
}

static void test_many_rapid_runs(void **state)
{
    (void)state;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    chain_task c;
    memset(&c, 0, sizeof c);
    const int rounds = 20000;
    int64_t expect = 0;
    for (int r = 1; r <= rounds; r++) {
        c.round = r;
        ponder_pool_run(pool, chain_fn, &c);
        expect += r;
        if (c.v[0] != expect || c.v[16] != expect)
            fail_msg("round %d: %lld %lld, expected %lld", r, (long long)c.v[0], (long long)c.v[16],
                     (long long)expect);
    }
    ponder_pool_free(pool);
}

static void test_create_free_cycles(void **state)
{
    (void)state;
    for (int i = 0; i < 40; i++) {
        ponder_pool *pool = NULL;
        assert_int_equal(ponder_pool_create(1 + i % 4, &pool, NULL), PONDER_OK);
        if (i % 2) {
            census c;
            memset(&c, 0, sizeof c);
            c.expect_nth = 1 + i % 4;
            c.caller = pthread_self();
            ponder_pool_run(pool, count_fn, &c);
            for (int k = 0; k < c.expect_nth; k++)
                assert_int_equal(atomic_load(&c.runs[k]), 1);
        }
        ponder_pool_free(pool); /* right after create too: workers may not have started */
    }
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(0, &pool, NULL), PONDER_OK);
    assert_int_equal(ponder_pool_n_threads(pool), ponder_cpu_count());
    ponder_pool_free(pool);
    assert_true(ponder_cpu_count() >= 1);
}

static void test_one_thread_and_null_pool_inline(void **state)
{
    (void)state;
    census c;
    memset(&c, 0, sizeof c);
    c.expect_nth = 1;
    c.caller = pthread_self();
    ponder_pool_run(NULL, count_fn, &c);
    assert_int_equal(ponder_pool_n_threads(NULL), 1);
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(1, &pool, NULL), PONDER_OK);
    ponder_pool_run(pool, count_fn, &c);
    ponder_pool_free(pool);
    assert_int_equal(atomic_load(&c.runs[0]), 2);
    assert_int_equal(atomic_load(&c.caller_was_0), 2);
    assert_int_equal(atomic_load(&c.bad_nth), 0);
    ponder_pool_free(NULL); /* no-op */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ponder_error err = {0};
    ponder_pool *pool = (ponder_pool *)&err; /* must be reset to NULL on failure */
    assert_int_equal(ponder_pool_create(-1, &pool, &err), PONDER_ERR_INVALID_ARG);
    assert_null(pool);
    assert_non_null(strstr(err.msg, "-1"));
    assert_int_equal(ponder_pool_create(100000, &pool, &err), PONDER_ERR_INVALID_ARG);
    assert_null(pool);
    assert_int_equal(ponder_pool_create(2, NULL, &err), PONDER_ERR_INVALID_ARG);
}

/* ---- ponder_pool_run_dynamic ---- */

/* Items claimed from a counter; thread 0 waits for all of them, as the contract asks. */
typedef struct {
    int64_t n_items;
    _Atomic int64_t next, done;
    _Atomic int in_fn;        /* threads inside fn right now */
    _Atomic int ran[MAX_T];   /* per ith: calls of fn */
    _Atomic int bad;
    uint8_t *marks;
} dyn_task;

static void dyn_fn(void *arg, int ith, int nth)
{
    dyn_task *d = arg;
    atomic_fetch_add(&d->in_fn, 1);
    if (ith < 0 || ith >= nth || nth > MAX_T)
        atomic_fetch_add(&d->bad, 1);
    else
        atomic_fetch_add(&d->ran[ith], 1);
    for (int64_t i; (i = atomic_fetch_add(&d->next, 1)) < d->n_items;) {
        d->marks[i]++;
        atomic_fetch_add(&d->done, 1);
    }
    if (ith == 0)
        while (atomic_load(&d->done) < d->n_items)
            ;
    atomic_fetch_sub(&d->in_fn, 1);
}

static void test_dynamic_runs(void **state)
{
    (void)state;
    for (int n = 1; n <= 3; n++) {
        ponder_pool *pool = NULL;
        assert_int_equal(ponder_pool_create(n, &pool, NULL), PONDER_OK);
        int worker_calls = 0;
        const int runs = 3000;
        for (int r = 0; r < runs; r++) {
            dyn_task d = {.n_items = r % 50};
            d.marks = calloc((size_t)d.n_items + 1, 1);
            assert_non_null(d.marks);
            ponder_pool_run_dynamic(pool, dyn_fn, &d);
            /* back on the caller: nobody is still inside fn (d lives on this stack) */
            assert_int_equal(atomic_load(&d.in_fn), 0);
            assert_int_equal(atomic_load(&d.bad), 0);
            assert_int_equal(atomic_load(&d.ran[0]), 1); /* the caller always runs */
            for (int i = 1; i < MAX_T; i++) {
                assert_true(atomic_load(&d.ran[i]) <= (i < n ? 1 : 0)); /* a worker at most once */
                worker_calls += atomic_load(&d.ran[i]);
            }
            for (int64_t i = 0; i < d.n_items; i++)
                assert_int_equal(d.marks[i], 1);
            free(d.marks);
            if (r % 1000 == 999)
                sleep_ms(5); /* workers fall asleep: the wake-up path */
        }
        assert_true(worker_calls <= (n - 1) * runs);
        ponder_pool_free(pool);
    }
}

/* Thread 0 claims nothing and waits: the task stays open until workers join and do all
 * the work, so a joining worker is guaranteed (liveness, not timing). */
static void workers_only_fn(void *arg, int ith, int nth)
{
    dyn_task *d = arg;
    (void)nth;
    if (ith == 0) {
        while (atomic_load(&d->done) < d->n_items)
            sched_yield();
        return;
    }
    atomic_fetch_add(&d->ran[ith], 1);
    for (int64_t i; (i = atomic_fetch_add(&d->next, 1)) < d->n_items;) {
        d->marks[i]++;
        atomic_fetch_add(&d->done, 1);
    }
}

static void test_dynamic_workers_join(void **state)
{
    (void)state;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(2, &pool, NULL), PONDER_OK);
    for (int r = 0; r < 200; r++) {
        uint8_t marks[16] = {0};
        dyn_task d = {.n_items = 16, .marks = marks};
        ponder_pool_run_dynamic(pool, workers_only_fn, &d);
        assert_int_equal(atomic_load(&d.ran[1]), 1);
        for (int i = 0; i < 16; i++)
            assert_int_equal(marks[i], 1);
        if (r % 50 == 49)
            sleep_ms(5);
    }
    ponder_pool_free(pool);
}

/* Plain and dynamic tasks interleaved on one pool: a worker late for a dynamic task must
 * still run the plain task that follows it, exactly once. */
static void test_mixed_runs(void **state)
{
    (void)state;
    ponder_pool *pool = NULL;
    assert_int_equal(ponder_pool_create(3, &pool, NULL), PONDER_OK);
    for (int r = 0; r < 100; r++) { /* 3 threads on 2 CPUs: plain runs wait for time slices */
        dyn_task d = {.n_items = 7};
        uint8_t marks[8] = {0};
        d.marks = marks;
        ponder_pool_run_dynamic(pool, dyn_fn, &d);
        for (int i = 0; i < 7; i++)
            assert_int_equal(marks[i], 1);
        census c;
        memset(&c, 0, sizeof c);
        c.expect_nth = 3;
        c.caller = pthread_self();
        ponder_pool_run(pool, count_fn, &c);
        for (int i = 0; i < 3; i++)
            assert_int_equal(atomic_load(&c.runs[i]), 1);
        assert_int_equal(atomic_load(&c.bad_nth), 0);
    }
    ponder_pool_free(pool);
    /* NULL pool: inline, ith 0 of 1 */
    dyn_task d = {.n_items = 3};
    uint8_t marks[4] = {0};
    d.marks = marks;
    ponder_pool_run_dynamic(NULL, dyn_fn, &d);
    assert_int_equal(atomic_load(&d.ran[0]), 1);
    assert_int_equal(marks[0] + marks[1] + marks[2], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_thread_runs),
        cmocka_unit_test(test_slices_cover_once),
        cmocka_unit_test(test_many_rapid_runs),
        cmocka_unit_test(test_create_free_cycles),
        cmocka_unit_test(test_one_thread_and_null_pool_inline),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_dynamic_runs),
        cmocka_unit_test(test_dynamic_workers_join),
        cmocka_unit_test(test_mixed_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
