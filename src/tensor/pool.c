/*
 * pool.c — the thread pool behind ponder_pool_run and ponder_pool_run_dynamic.
 *
 * One 64-bit atomic word describes the current task: its generation (high 32 bits), a
 * DYNAMIC flag, a CLOSED flag and, for dynamic tasks, the number of workers inside fn.
 * The caller stores fn/arg, then publishes a new generation; workers that see it run
 * their slice. Workers spin (with a pause hint) for SPIN_ROUNDS checks before sleeping
 * on the condition variable, so back-to-back tasks — the common case in a forward pass —
 * never pay for a futex wake-up.
 *
 * ponder_pool_run: every worker runs fn once and decrements `pending`; the caller runs
 * slice 0 and spins until pending reaches zero.
 * ponder_pool_run_dynamic: for tasks that hand out their work through counters. A worker
 * joins (joined++) only while the task is open; the caller runs fn, closes the task when
 * its fn returns (all work done) and waits only for workers that joined. A worker the OS
 * did not schedule in time skips the task instead of stalling it: on a busy machine a
 * product degrades to fewer threads, not to a scheduler time slice per product.
 */
#include "ponder/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* ~50-100 µs of spinning: longer than the gap between two matrix products, shorter than
 * anything a user would notice as a busy CPU between requests. */
#define SPIN_ROUNDS 20000

#define TASK_GEN_SHIFT 32
#define TASK_DYNAMIC (1ull << 31)
#define TASK_CLOSED (1ull << 30)
#define TASK_JOINED_MASK ((1ull << 30) - 1)

typedef struct worker {
    ponder_pool *pool;
    int ith;
    pthread_t thread;
} worker;

struct ponder_pool {
    int n_threads;
    worker *workers; /* n_threads - 1 of them; the caller is thread 0 */
    _Atomic uint64_t task;
    _Atomic int pending;
    _Atomic bool stop;
    _Atomic int sleepers;
    ponder_pool_fn fn;
    void *arg;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

int ponder_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static uint32_t task_gen(uint64_t s) { return (uint32_t)(s >> TASK_GEN_SHIFT); }

/* Joins dynamic task s if it is still open, runs it, leaves. */
static void run_dynamic_slice(ponder_pool *pool, uint64_t s, int ith)
{
    const uint32_t gen = task_gen(s);
    for (;;) {
        if (task_gen(s) != gen || (s & TASK_CLOSED))
            return; /* too late: the caller finished (or moved on) without us */
        if (atomic_compare_exchange_weak(&pool->task, &s, s + 1))
            break;
    }
    /* joined: the caller waits for us to leave before it returns, so fn and arg are valid */
    pool->fn(pool->arg, ith, pool->n_threads);
    atomic_fetch_sub_explicit(&pool->task, 1, memory_order_release);
}

static void *worker_main(void *p)
{
    worker *w = p;
    ponder_pool *pool = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint64_t s;
        int spins = 0;
        while (task_gen(s = atomic_load_explicit(&pool->task, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&pool->stop, memory_order_acquire)) {
            if (++spins < SPIN_ROUNDS) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&pool->mutex);
            atomic_fetch_add(&pool->sleepers, 1);
            while (task_gen(atomic_load(&pool->task)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mutex);
            spins = 0;
        }
        if (atomic_load_explicit(&pool->stop, memory_order_acquire))
            return NULL;
        seen = task_gen(s);
        if (s & TASK_DYNAMIC) {
            run_dynamic_slice(pool, s, w->ith);
        } else {
            /* a plain task cannot be replaced before every worker ran it */
            pool->fn(pool->arg, w->ith, pool->n_threads);
            atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
        }
    }
}

ponder_status ponder_pool_create(int n_threads, ponder_pool **out, ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_pool_create: out is required");
    *out = NULL;
    if (n_threads == 0)
        n_threads = ponder_cpu_count();
    if (n_threads < 1 || n_threads > 1024)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "thread count %d is out of range (1..1024)", n_threads);
    ponder_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->workers = calloc((size_t)n_threads, sizeof *pool->workers);
    if (!pool->workers) {
        pool->n_threads = 1; /* no thread to join */
        ponder_pool_free(pool);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        worker *w = &pool->workers[i];
        w->pool = pool;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pool->n_threads = i; /* free joins only the threads that exist */
            ponder_pool_free(pool);
            return ponder_error_set(err, PONDER_ERR_IO, "could not start worker thread %d of %d", i, n_threads);
        }
    }
    *out = pool;
    return PONDER_OK;
}

void ponder_pool_free(ponder_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->n_threads; i++)
        pthread_join(pool->workers[i].thread, NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

int ponder_pool_n_threads(const ponder_pool *pool) { return pool ? pool->n_threads : 1; }

/* Stores fn/arg and publishes the next generation with `flags`, waking sleepers. */
static void publish(ponder_pool *pool, ponder_pool_fn fn, void *arg, uint64_t flags)
{
    pool->fn = fn;
    pool->arg = arg;
    const uint64_t gen = (uint64_t)(task_gen(atomic_load_explicit(&pool->task, memory_order_relaxed)) + 1u);
    /* seq_cst on both sides (here and the worker's sleepers++ then generation check) so a
     * worker going to sleep either sees the new generation or is seen as a sleeper */
    atomic_store(&pool->task, (gen << TASK_GEN_SHIFT) | flags);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
}

void ponder_pool_run(ponder_pool *pool, ponder_pool_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_relaxed);
    publish(pool, fn, arg, TASK_CLOSED); /* closed: nobody joins it as a dynamic task */
    fn(arg, 0, pool->n_threads);
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0)
        CPU_RELAX();
}

void ponder_pool_run_dynamic(ponder_pool *pool, ponder_pool_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    publish(pool, fn, arg, TASK_DYNAMIC);
    fn(arg, 0, pool->n_threads);
    atomic_fetch_or(&pool->task, TASK_CLOSED);
    while (atomic_load_explicit(&pool->task, memory_order_acquire) & TASK_JOINED_MASK)
        CPU_RELAX();
}
