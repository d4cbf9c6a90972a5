/*
 * hub.h — models by name: `ponder pull` from the Hugging Face Hub (or a mirror, or any
 * HTTP(S) URL) into a local store, and NAME[:TAG] resolution against that store.
 *
 * Names (ponder_hub_parse):
 *   hf.co/OWNER/REPO[:QUANT]        a GGUF repository; QUANT picks the file whose name
 *                                   carries it (Q4_K_M, q8_0, ...); without it Q4_K_M,
 *                                   else the first of a preference list (as llama.cpp -hf)
 *   hf.co/OWNER/REPO/PATH.gguf      one file of a repository
 *   huggingface.co/... and https://huggingface.co/... are the same names
 *   http(s)://HOST/.../FILE.gguf    a plain URL
 *   FAMILY[:TAG]                    the built-in catalogue (ponder_hub_catalogue_at), e.g.
 *                                   smollm2:135m; FAMILY:TAG-QUANT overrides its quant
 * The store ($PONDER_MODELS, default ~/.local/share/ponder/models) keeps a repository's
 * files as hf.co/OWNER/REPO/FILE.gguf and a URL's as FILE.gguf, so a store is plain files
 * and directories: no manifest to corrupt.
 *
 * Downloads are resumable (HTTP Range on "FILE.gguf.partial", kept when a transfer is
 * cut), checked against the hub's sha256 (the tree API's lfs.oid, X-Linked-Etag, a
 * sha256 ETag, or one given by the caller; the git blob sha1 for small non-LFS files)
 * and installed by fsync + rename (ponder_file_sync_rename): a file under its final name
 * is always complete and verified. HF_ENDPOINT names a mirror, HF_TOKEN is sent as a
 * Bearer token to the endpoint (gated and private repositories).
 */
#ifndef PONDER_HUB_H
#define PONDER_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ponder/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PONDER_HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define PONDER_HUB_NAME_BYTES 512
#define PONDER_HUB_PATH_BYTES 4096

typedef enum ponder_hub_source {
    PONDER_HUB_SOURCE_HF = 0, /* a Hugging Face repository (or a mirror of the API) */
    PONDER_HUB_SOURCE_URL,    /* a plain URL */
} ponder_hub_source;

/* A parsed name. */
typedef struct ponder_hub_ref {
    ponder_hub_source source;
    char owner[128], repo[128]; /* HF */
    char quant[64];             /* HF: the requested quant tag, "" for the default choice */
    char file[1024];            /* HF: a fixed path inside the repository, "" to choose */
    char url[2048];             /* URL: the URL */
    char alias[64];             /* the catalogue name it came from, "" if none */
} ponder_hub_ref;

/* Parses a name as above (catalogue names resolved); an unknown bare word is
 * PONDER_ERR_NOT_FOUND with the catalogue's names in the message. */
ponder_status ponder_hub_parse(const char *name, ponder_hub_ref *out, ponder_error *err);

/* True if name is written as a hub name (hf.co/..., huggingface.co/..., http(s)://...,
 * or FAMILY:TAG), i.e. something `ponder pull` could fetch rather than a local path. */
bool ponder_hub_is_name(const char *name);

/* ---- the catalogue ---- */
typedef struct ponder_hub_catalogue_entry {
    const char *name;    /* "smollm2:135m" */
    const char *target;  /* "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0" */
    const char *summary; /* one line: model, size, licence */
} ponder_hub_catalogue_entry;

/* The i-th entry (0-based); NULL past the end. */
const ponder_hub_catalogue_entry *ponder_hub_catalogue_at(int i);

/* ---- pulling ---- */

/* Progress of a download: bytes present (resumed ones included) and the total (0 when
 * unknown). Return false to cancel (the partial file is kept). */
typedef bool (*ponder_hub_progress_fn)(uint64_t done, uint64_t total, void *user);

typedef struct ponder_hub_params {
    const char *models_dir;  /* NULL: $PONDER_MODELS, else ~/.local/share/ponder/models */
    const char *endpoint;    /* NULL: $HF_ENDPOINT, else PONDER_HUB_DEFAULT_ENDPOINT */
    const char *token;       /* NULL: $HF_TOKEN (an empty string sends none) */
    const char *sha256;      /* expected sha256 (hex) of the file; NULL: the hub's */
    int retries;             /* further attempts after a cut transfer, each resuming (3) */
    int retry_delay_ms;      /* wait before the first retry, doubled each time (1000) */
    long low_speed_time_s;   /* a transfer below 1 byte/s for this long is cut (60) */
    bool force;              /* download again even when the file is present */
    ponder_hub_progress_fn progress;
    void *progress_user;
} ponder_hub_params;

ponder_hub_params ponder_hub_params_default(void);

typedef struct ponder_hub_pull_result {
    char name[PONDER_HUB_NAME_BYTES];  /* canonical name: hf.co/OWNER/REPO:TAG, or FILE */
    char path[PONDER_HUB_PATH_BYTES];  /* the installed file */
    char sha256[65];                   /* of the installed file ("" when already present) */
    uint64_t bytes;                    /* file size */
    uint64_t downloaded;               /* bytes transferred by this call */
    uint64_t resumed_from;             /* bytes of an earlier .partial reused (0: fresh) */
    int attempts;                      /* transfers made (retries + 1) */
    bool verified;                     /* sha256 (or git sha1) checked against a published one */
    bool already;                      /* the file was present; nothing downloaded */
} ponder_hub_pull_result;

/* Fetches `name` into the store. Errors name the cause a user can act on: 401 (mentions
 * HF_TOKEN), 403, 404 (repository or file), no GGUF matching the quant (lists those
 * there are), a checksum mismatch (the download is discarded, nothing installed), a cut
 * transfer after the retries (the .partial is kept; pulling again resumes). */
ponder_status ponder_hub_pull(const char *name, const ponder_hub_params *p, ponder_hub_pull_result *res,
                              ponder_error *err);

/* ---- the store ---- */

/* The store's directory into out[cap] (not created). */
ponder_status ponder_hub_models_dir(const ponder_hub_params *p, char *out, size_t cap, ponder_error *err);

/* Finds a model of the store by name: DIR/NAME, DIR/NAME.gguf, a pulled hf.co name or
 * catalogue name, a pulled URL. PONDER_ERR_NOT_FOUND with a message saying where it
 * looked (and `ponder pull NAME` when that would fetch it). p may be NULL. */
ponder_status ponder_hub_find(const char *name, const ponder_hub_params *p, char *out, size_t cap,
                              ponder_error *err);

typedef struct ponder_hub_entry {
    char name[PONDER_HUB_NAME_BYTES]; /* hf.co/OWNER/REPO:TAG, or the file's name */
    char alias[64];                   /* the catalogue name pointing at it, "" if none */
    char path[PONDER_HUB_PATH_BYTES];
    uint64_t bytes;
    bool partial;                     /* a .partial download (not usable yet) */
} ponder_hub_entry;

/* Every .gguf (and .gguf.partial) in the store, sorted by name; *out is malloc'ed
 * (free with free()), *n its length. An absent store is an empty list. */
ponder_status ponder_hub_list(const ponder_hub_params *p, ponder_hub_entry **out, size_t *n, ponder_error *err);

/* Removes a model of the store (its file and any .partial), and the directories left
 * empty under hf.co/. removed[cap] (may be NULL) gets the path. */
ponder_status ponder_hub_remove(const char *name, const ponder_hub_params *p, char *removed, size_t cap,
                                ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_HUB_H */
