/*
 * hub_internal.h — what the hub's files share: quant tags in file names, the store's
 * paths, and the HTTP side (fetch.c) that pull.c drives.
 */
#ifndef PONDER_HUB_INTERNAL_H
#define PONDER_HUB_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ponder/hub.h"

/* The hub endpoint's API revision we read: the default branch. */
#define HUB_REVISION "main"
/* Metadata answers (tree listings) larger than this are refused. */
#define HUB_MAX_JSON_BYTES (32u << 20)
/* Pages of one listing followed at most (the Hub pages by 1,000 entries). */
#define HUB_MAX_PAGES 100

/* ---- names (hub.c) ---- */

/* True if `tag` occurs in `s` as a whole token, ignoring case: not preceded by a letter or
 * digit, not followed by a letter, digit or '_' ("Q4_K" is not in "x-Q4_K_M.gguf"). */
bool hub_has_token(const char *s, const char *tag);

/* The quant tag in a GGUF file name (the last token like Q4_K_M, IQ4_XS, q8_0, F16, BF16),
 * upper-cased into out[cap]; false if it has none. */
bool hub_quant_of(const char *file, char *out, size_t cap);

/* True for a split GGUF part ("...-00001-of-00003.gguf"). */
bool hub_is_split(const char *file);

/* Ends with ".gguf", ignoring case. */
bool hub_is_gguf(const char *file);

/* The last path component of path (after the last '/'). */
const char *hub_basename(const char *path);

/* Of the .gguf names names[0..n), the index `quant` selects (a token match; "" picks by
 * the default preference, then the first that is not a projector), or -1. */
int hub_choose(const char *const *names, int n, const char *quant);

/* The store directory and the directory of an HF repository's files inside it. */
ponder_status hub_store_dir(const ponder_hub_params *p, char *out, size_t cap, ponder_error *err);
int hub_repo_dir(char *out, size_t cap, const char *store, const char *owner, const char *repo);

/* The local file name of a URL's last path component (query and fragment dropped;
 * characters other than [A-Za-z0-9._+-] replaced by '_'). False if it is no .gguf. */
bool hub_url_file(const char *url, char *out, size_t cap);

/* mkdir -p. */
ponder_status hub_mkdirs(const char *dir, ponder_error *err);

/* ---- HTTP (fetch.c) ---- */

typedef struct hub_ctx {
    char store[PATH_MAX];
    char endpoint[1024];        /* no trailing '/' */
    char auth[1200];            /* "Authorization: Bearer ..." or "" */
    const ponder_hub_params *p;
} hub_ctx;

/* One file to download. */
typedef struct hub_file {
    char url[4096];
    char label[PONDER_HUB_NAME_BYTES]; /* for messages */
    bool send_auth;                    /* the URL is on the endpoint */
    uint64_t size;                     /* 0: unknown */
    char sha256[65];                   /* expected, lower-case hex; "" unknown */
    char git_sha1[41];                 /* expected git blob id (non-LFS files); "" unknown */
} hub_file;

/* GET url into *body (malloc'ed, NUL-terminated); *status is the HTTP status; next[cap]
 * (may be NULL) gets the Link header's rel="next" URL, "" if none. Only transport
 * failures are errors. */
ponder_status hub_get(const hub_ctx *c, const char *url, bool send_auth, char **body, size_t *len, long *status,
                      char *next, size_t next_cap, ponder_error *err);

/* The error for a failed hub answer: 401 (HF_TOKEN), 403, 404 and others. */
ponder_status hub_http_error(const hub_ctx *c, long status, const char *what, const char *body, ponder_error *err);

/* Downloads f to dest through "<dest>.partial" (resuming it), verifies it and renames it
 * into place; fills res's sha256, bytes, downloaded, resumed_from, attempts, verified. */
ponder_status hub_download(const hub_ctx *c, const hub_file *f, const char *dest, ponder_hub_pull_result *res,
                           ponder_error *err);

/* curl_global_init once. */
ponder_status hub_curl_init(ponder_error *err);

#endif
