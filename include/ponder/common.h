/*
 * common.h — status codes and the error record every fallible libponder call fills; the
 * few helpers every layer shares (UTF-8 validation, the monotonic clock).
 *
 * A call that can fail returns a ponder_status and takes `ponder_error *err` last
 * (it may be NULL). On failure err->code repeats the status and err->msg holds one
 * line a user can act on: what (file, tensor, key), where (byte offset), why.
 * libponder never prints, exits or aborts on bad input.
 */
#ifndef PONDER_COMMON_H
#define PONDER_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ponder_status {
    PONDER_OK = 0,
    PONDER_ERR_INVALID_ARG,   /* caller passed something unusable (NULL, bad flag value) */
    PONDER_ERR_IO,            /* open/read/mmap/write failed */
    PONDER_ERR_FORMAT,        /* file or input is malformed, truncated or corrupt */
    PONDER_ERR_UNSUPPORTED,   /* well-formed, but a feature we do not implement */
    PONDER_ERR_NOT_FOUND,     /* a required key, tensor or token is absent */
    PONDER_ERR_NOMEM,         /* allocation failed */
    PONDER_ERR_RANGE,         /* a count or length exceeds a limit (context full, prompt too long) */
    PONDER_ERR_INTERNAL,      /* a broken invariant: a bug in ponder */
} ponder_status;

#define PONDER_ERROR_MSG_BYTES 512

typedef struct ponder_error {
    ponder_status code;
    char msg[PONDER_ERROR_MSG_BYTES];
} ponder_error;

/* Fills *err (if non-NULL) with code and a printf-style message; returns code so
 * callers can write `return ponder_error_set(err, PONDER_ERR_FORMAT, "...")`. */
ponder_status ponder_error_set(ponder_error *err, ponder_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes err->msg with "prefix: " (keeps the code). Used to add context on the way up. */
void ponder_error_prefix(ponder_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears *err to PONDER_OK with an empty message. */
void ponder_error_clear(ponder_error *err);

/* Short constant name of a status ("format error", ...). Never NULL. */
const char *ponder_status_str(ponder_status st);

/* Log levels for the app-set callback. libponder reports non-fatal notes here
 * (documented fallbacks, deprecation), never through stdout/stderr. */
typedef enum ponder_log_level {
    PONDER_LOG_DEBUG = 0,
    PONDER_LOG_INFO,
    PONDER_LOG_WARN,
    PONDER_LOG_ERROR,
} ponder_log_level;

/* Length of the valid UTF-8 sequence starting at s[0..n), or 0 if the bytes there are
 * not one (overlong forms, surrogates and code points above U+10FFFF are invalid). */
size_t ponder_utf8_len(const unsigned char *s, size_t n);

typedef void (*ponder_log_fn)(ponder_log_level level, const char *msg, void *user);

/* Milliseconds on the monotonic clock (CLOCK_MONOTONIC): for durations only. */
double ponder_now_ms(void);

/* ---- listening sockets (ponder serve: the router's HTTP front end, src/http) ----
 * Connection limits and read deadlines against slow clients; 0 in a field: its default. */
typedef struct ponder_listen_limits {
    int32_t max_connections;  /* open connections in all; default 1024 */
    int32_t max_per_client;   /* open connections from one client address; default half of
                                 max_connections; -1: no cap */
    int32_t header_timeout_s; /* a request's line and headers must arrive within this; default 10 */
    int32_t body_timeout_s;   /* its body within this once the headers are in; default 60 */
    int32_t idle_timeout_s;   /* a kept-alive connection's next request within this, and no
                                 silence longer than this while a request is read; default 60 */
} ponder_listen_limits;

/* ---- crash-safe files ----
 * A new version of a file is written to "<path>.tmp.<pid>" beside it, fsynced, renamed
 * over <path> and the directory fsynced: a kill -9 or a power loss at any moment leaves
 * the previous file (or none), never a torn one. A symlink is replaced through (its
 * target gets the new file); an existing non-regular destination (/dev/null, a FIFO) is
 * written straight through; an existing file's mode is kept. */
typedef struct ponder_atomic_file ponder_atomic_file;

/* Creates the temporary file; *out is NULL on failure. */
ponder_status ponder_atomic_file_open(const char *path, ponder_atomic_file **out, ponder_error *err);
/* The stream to write to (owned by f; do not fclose it). */
FILE *ponder_atomic_file_stream(ponder_atomic_file *f);
/* Flushes, fsyncs, renames into place and syncs the directory; on any failure (a write
 * error on the stream included) removes the temporary file. Frees f either way. */
ponder_status ponder_atomic_file_commit(ponder_atomic_file *f, ponder_error *err);
/* Closes and removes the temporary file, leaving <path> untouched; NULL is a no-op. */
void ponder_atomic_file_abort(ponder_atomic_file *f);
/* buf[0..len) as the new content of path, by the steps above. */
ponder_status ponder_file_write_atomic(const char *path, const void *buf, size_t len, ponder_error *err);
/* fsync(from), rename(from, to), fsync(to's directory): the last step of a file written
 * elsewhere under a temporary name (a resumable download's ".partial"). */
ponder_status ponder_file_sync_rename(const char *from, const char *to, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_COMMON_H */
