/*
 * pool.h — a fixed set of worker threads that run one data-parallel task at a time.
 *
 * Built for the decode loop's rhythm: hundreds of short parallel sections per token
 * (every matrix product of every layer), so dispatch must cost well under a microsecond.
 * Workers spin on a generation counter for a short while after each task and only then
 * sleep on a condition variable; the calling thread takes part as thread 0.
 * The app creates a pool and passes it in; libponder holds no hidden threads.
 */
#ifndef PONDER_POOL_H
#define PONDER_POOL_H

#include "ponder/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_pool ponder_pool;

/* A task body: thread ith of nth computes its own slice (ggml's (ith, nth) convention). */
typedef void (*ponder_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (the caller counts as one); 0 means the number of online CPUs. */
ponder_status ponder_pool_create(int n_threads, ponder_pool **out, ponder_error *err);
void ponder_pool_free(ponder_pool *pool); /* NULL is a no-op */
int ponder_pool_n_threads(const ponder_pool *pool); /* 1 for a NULL pool */

/* Runs fn(arg, ith, nth) on every thread and returns when all have finished. A NULL pool
 * runs fn(arg, 0, 1) inline. Not reentrant: one task at a time per pool. */
void ponder_pool_run(ponder_pool *pool, ponder_pool_fn fn, void *arg);

/* For tasks that hand out their work through shared counters rather than by (ith, nth):
 * runs fn(arg, 0, nth) on the calling thread and fn(arg, ith, nth) on each worker that
 * picks the task up before the caller's fn returns; workers arriving later skip it.
 * fn must therefore return on thread 0 only once ALL the work is done (by whichever
 * threads), and never rely on a given ith running. Returns when fn has returned on the
 * caller and on every worker that joined. So a worker the OS has descheduled (a busy
 * machine) costs its share of speed instead of stalling every product. */
void ponder_pool_run_dynamic(ponder_pool *pool, ponder_pool_fn fn, void *arg);

/* Number of online CPUs (at least 1). */
int ponder_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_POOL_H */
