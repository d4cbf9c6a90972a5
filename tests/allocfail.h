/*
 * allocfail.h — the malloc-failure switch of the allocation-failure tests: malloc, calloc
 * and realloc wrapped at link time (ponder_alloc_fail in tests/CMakeLists.txt adds
 * allocfail.c and -Wl,--wrap=...), so the calls of ponder's own code (not libc's or
 * jansson's, which are shared libraries) are counted and the N-th one fails.
 *
 * Only calls made on a thread that armed itself are counted and failed: a test arms the
 * thread that walks the path under test, and threads it does not own (an engine's decode
 * step) are left alone.
 */
#ifndef PONDER_TESTS_ALLOCFAIL_H
#define PONDER_TESTS_ALLOCFAIL_H

#include <stdbool.h>

extern _Thread_local bool af_armed; /* this thread's allocations are counted */
extern long af_calls;               /* allocations counted since it was reset */
extern long af_fail_at;             /* the call that fails (0-based); -1: none */
extern long af_failed;              /* how many were failed */

#endif /* PONDER_TESTS_ALLOCFAIL_H */
