/* error.c — the ponder_error record: formatting, prefixing, status names. */
#include "ponder/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ponder_status ponder_error_set(ponder_error *err, ponder_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ponder_error_prefix(ponder_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[PONDER_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* build "prefix: msg" in a buffer large enough for both, then truncate into msg */
    char joined[2 * PONDER_ERROR_MSG_BYTES + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, joined);
}

void ponder_error_clear(ponder_error *err)
{
    if (err) {
        err->code = PONDER_OK;
        err->msg[0] = '\0';
    }
}

const char *ponder_status_str(ponder_status st)
{
    switch (st) {
    case PONDER_OK: return "ok";
    case PONDER_ERR_INVALID_ARG: return "invalid argument";
    case PONDER_ERR_IO: return "I/O error";
    case PONDER_ERR_FORMAT: return "format error";
    case PONDER_ERR_UNSUPPORTED: return "unsupported";
    case PONDER_ERR_NOT_FOUND: return "not found";
    case PONDER_ERR_NOMEM: return "out of memory";
    case PONDER_ERR_RANGE: return "out of range";
    case PONDER_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
