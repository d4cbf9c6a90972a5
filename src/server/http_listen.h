/*
 * http_listen.h — the libmicrohttpd start-up `ponder serve` and the router share: resolve
 * the host, bind, one thread per connection, a connection limit and timeout, MHD's own
 * messages through the caller's logger. (Not in server_internal.h: that header stays free
 * of libmicrohttpd for the unit tests and the fuzz harness.)
 */
#ifndef PONDER_SERVER_HTTP_LISTEN_H
#define PONDER_SERVER_HTTP_LISTEN_H

#include <stdarg.h>

#include <microhttpd.h>

#include "ponder/common.h"

typedef struct srv_listen_params {
    const char *host;
    int port;                                   /* 0: an ephemeral port */
    MHD_AccessHandlerCallback on_request;
    MHD_RequestCompletedCallback on_completed;
    void (*log)(void *cls, const char *fmt, va_list ap);
    void *cls;                                  /* passed to all three */
    unsigned connection_limit, connection_timeout_s;
} srv_listen_params;

/* Starts the daemon; *bound_port is the port actually bound. Errors name the host/port. */
ponder_status srv_http_listen(const srv_listen_params *p, struct MHD_Daemon **out, int *bound_port,
                              ponder_error *err);

#endif
