/*
 * route_internal.h — the router's parts reached by unit tests: the incremental SSE parser.
 */
#ifndef PONDER_ROUTE_INTERNAL_H
#define PONDER_ROUTE_INTERNAL_H

#include "ponder/route.h"

#include <stdbool.h>
#include <stddef.h>

/* Server-sent events, parsed as bytes arrive (any split, even inside "\r\n"): each event's
 * data lines, joined by "\n", go to the callback when the blank line that ends the event
 * comes. Comments and other fields (event:, id:, retry:) are skipped. Memory grows with
 * the longest event, never with the stream. */
typedef bool (*rt_sse_fn)(const char *data, size_t len, void *user); /* false: stop */

typedef struct rt_sse {
    char *line;            /* the current line so far */
    size_t line_len, line_cap;
    char *data;            /* the current event's data so far */
    size_t data_len, data_cap;
    bool has_data;
    bool after_cr;         /* the last byte was '\r': a following '\n' belongs to it */
    bool oom;
    size_t max_bytes;      /* longest line or event accepted (0: 16 MiB) */
} rt_sse;

#define RT_POLL_MS 20 /* how often a waiting transfer or handler looks at its deadlines and its client */

void rt_sse_init(rt_sse *p);
/* false: the callback asked to stop, or out of memory / an event past max_bytes (p->oom). */
bool rt_sse_feed(rt_sse *p, const char *bytes, size_t n, rt_sse_fn fn, void *user);
void rt_sse_free(rt_sse *p);

#endif /* PONDER_ROUTE_INTERNAL_H */
