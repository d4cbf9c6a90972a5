/*
 * allocfail.c — the wrapped allocators behind allocfail.h: on an armed thread, the
 * af_fail_at-th call returns NULL; every other call goes to the real allocator.
 */
#include "allocfail.h"

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

_Thread_local bool af_armed;
long af_calls, af_fail_at = -1, af_failed;

static bool should_fail(void)
{
    if (!af_armed)
        return false;
    const bool f = af_fail_at >= 0 && af_calls == af_fail_at;
    af_calls++;
    af_failed += f;
    return f;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
