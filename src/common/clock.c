/*
 * clock.c — the one monotonic clock every layer times with (think's wall time, the
 * server's and the router's latencies, the CLI's timing lines), so their milliseconds
 * are the same milliseconds.
 */
#include "ponder/common.h"

#include <time.h>

double ponder_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
