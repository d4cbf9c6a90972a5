/*
 * cascade_internal.h — how the cascade (cascade.c) and the router (router.c) reach each
 * other: the cascade calls each stage through the router's chain walking, the router hands
 * cascade requests over and asks for the cascade's /metrics lines.
 */
#ifndef PONDER_CASCADE_INTERNAL_H
#define PONDER_CASCADE_INTERNAL_H

#include "ponder/cascade.h"
#include "http/http.h"

#include <jansson.h>

/* router.c: one non-streaming request for `name` (a model or a fallback route) through the
 * chain walk — retries, back-off, breakers — as a client's would go. body is borrowed.
 * Returns the HTTP status; *out (never NULL on return unless out of memory) is the
 * response JSON with the router's ponder object, or the error JSON. */
int rt_route_call(ponder_router *r, const char *name, ponder_backend_endpoint ep, json_t *body, json_t **out,
                  double *retry_after_s);

/* The per-route cascade counters (/metrics); one per router. */
typedef struct rt_cascade_stats rt_cascade_stats;
rt_cascade_stats *rt_cascade_stats_create(const ponder_route_config *cfg); /* NULL: out of memory */
void rt_cascade_stats_free(rt_cascade_stats *s);
void rt_cascade_metrics(rt_cascade_stats *s, http_buf *b);
rt_cascade_stats *rt_router_cascade_stats(ponder_router *r);
const ponder_route_config *rt_router_config(const ponder_router *r);

/* cascade.c: a client's request for a cascade route. Runs the stages, then answers with
 * the accepted stage's response (as JSON, or — when the body asks for a stream — as the
 * whole SSE text: the answer is judged before anything is sent). Returns the HTTP status;
 * *out the body (malloc'ed), *sse whether it is an event stream. */
int rt_cascade_request(ponder_router *r, const ponder_route_cfg *route, ponder_backend_endpoint ep, json_t *body,
                       char **out, bool *sse, double *retry_after_s);

#endif /* PONDER_CASCADE_INTERNAL_H */
