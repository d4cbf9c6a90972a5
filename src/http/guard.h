/*
 * guard.h — the front end's defences that sit beside libmicrohttpd (guard.c): the framing
 * check made on a request's first access-handler call, and per-connection read deadlines
 * enforced by a reaper thread. Internal to src/http (front.c is its only user).
 */
#ifndef PONDER_HTTP_GUARD_H
#define PONDER_HTTP_GUARD_H

#include <microhttpd.h>

#include "http/http.h"

/* Defaults of ponder_listen_limits' fields (0 there means these). */
#define HTTP_MAX_CONNECTIONS_DEFAULT 1024
#define HTTP_HEADER_TIMEOUT_S_DEFAULT 10
#define HTTP_BODY_TIMEOUT_S_DEFAULT 60
#define HTTP_IDLE_TIMEOUT_S_DEFAULT 60

/* The limits with every 0 replaced by its default. */
ponder_listen_limits http_limits_resolve(const ponder_listen_limits *l);

/* The request's headers as they arrived, checked before any body byte is read. Returns 0
 * when the framing is sound; else the status to answer (400, or 413 for a declared length
 * over max_body) with msg filled. *has_body tells whether a body follows. */
int http_framing_check(struct MHD_Connection *c, const char *version, size_t max_body, bool *has_body, char *msg,
                       size_t cap);

/* Read deadlines per connection. */
typedef struct http_guard http_guard;
typedef enum http_phase {
    HTTP_PHASE_BODY = 0, /* headers in, the body is being read */
    HTTP_PHASE_HANDLING, /* the whole request is in: no deadline (generation takes its time) */
    HTTP_PHASE_IDLE,     /* answered; the next request's headers must come within the idle time */
} http_phase;

/* metrics (may be NULL) counts the connections closed for a missed deadline. */
http_guard *http_guard_create(const ponder_listen_limits *resolved, ponder_log_fn log, void *log_user,
                              http_metrics *metrics);
void http_guard_free(http_guard *g); /* after the daemon stopped; NULL is a no-op */
/* MHD_OPTION_NOTIFY_CONNECTION's callback (cls: the guard). */
void http_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
void http_guard_phase(http_guard *g, struct MHD_Connection *c, http_phase ph);

#endif /* PONDER_HTTP_GUARD_H */
