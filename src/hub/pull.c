/*
 * pull.c — ponder_hub_pull: from a name to a verified file in the store.
 *
 * For a repository it reads the Hub's tree listing (/api/models/OWNER/REPO/tree/main,
 * which gives every file's size and, for LFS files, its sha256), picks the GGUF the quant
 * tag names, and downloads /OWNER/REPO/resolve/main/PATH. A mirror without the tree API
 * still works through /api/models/OWNER/REPO's file list (then the checksum comes from
 * the download's X-Linked-Etag header, as huggingface_hub reads it).
 */
#include "hub/hub_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

ponder_hub_params ponder_hub_params_default(void)
{
    return (ponder_hub_params){.retries = 3, .retry_delay_ms = 1000, .low_speed_time_s = 60};
}

static ponder_status make_ctx(const ponder_hub_params *p, hub_ctx *c, ponder_error *err)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    ponder_status s = hub_store_dir(p, c->store, sizeof c->store, err);
    if (s != PONDER_OK)
        return s;
    const char *ep = p->endpoint ? p->endpoint : getenv("HF_ENDPOINT");
    if (!ep || !*ep)
        ep = PONDER_HUB_DEFAULT_ENDPOINT;
    if ((strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0) || strlen(ep) >= sizeof c->endpoint)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "HF_ENDPOINT '%s' is not an http(s):// URL", ep);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", ep);
    for (size_t n = strlen(c->endpoint); n > 8 && c->endpoint[n - 1] == '/'; n--)
        c->endpoint[n - 1] = '\0';
    const char *tok = p->token ? p->token : getenv("HF_TOKEN");
    if (tok && *tok) {
        for (const char *t = tok; *t; t++)
            if ((unsigned char)*t < 0x21 || *t == 0x7f)
                return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "HF_TOKEN contains a space or control byte");
        if (snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", tok) >= (int)sizeof c->auth)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "HF_TOKEN is too long");
    }
    return hub_curl_init(err);
}

/* Percent-encodes a repository path for a URL ('/' kept), RFC 3986 unreserved kept. */
static bool url_path(const char *in, char *out, size_t cap)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const unsigned char *c = (const unsigned char *)in; *c; c++) {
        bool keep = isalnum(*c) || strchr("-._~/", *c);
        if (w + (keep ? 1 : 3) + 1 > cap)
            return false;
        if (keep) {
            out[w++] = (char)*c;
        } else {
            out[w++] = '%';
            out[w++] = digits[*c >> 4];
            out[w++] = digits[*c & 15];
        }
    }
    out[w] = '\0';
    return true;
}

/* A repository's GGUF files as the listing gives them. */
typedef struct listing {
    char **path;
    uint64_t *size;
    char (*sha256)[65];
    char (*git_sha1)[41];
    int n;
} listing;

static void listing_free(listing *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l->path);
    free(l->size);
    free(l->sha256);
    free(l->git_sha1);
    memset(l, 0, sizeof *l);
}

static bool listing_add(listing *l, const char *path, uint64_t size, const char *sha256, const char *sha1)
{
    int n = l->n + 1;
    char **np = realloc(l->path, (size_t)n * sizeof *np);
    if (np)
        l->path = np;
    uint64_t *ns = realloc(l->size, (size_t)n * sizeof *ns);
    if (ns)
        l->size = ns;
    char(*nh)[65] = realloc(l->sha256, (size_t)n * sizeof *nh);
    if (nh)
        l->sha256 = nh;
    char(*ng)[41] = realloc(l->git_sha1, (size_t)n * sizeof *ng);
    if (ng)
        l->git_sha1 = ng;
    if (!np || !ns || !nh || !ng || !(l->path[l->n] = strdup(path)))
        return false;
    l->size[l->n] = size;
    snprintf(l->sha256[l->n], sizeof l->sha256[l->n], "%s", sha256 && strlen(sha256) == 64 ? sha256 : "");
    snprintf(l->git_sha1[l->n], sizeof l->git_sha1[l->n], "%s", sha1 && strlen(sha1) == 40 ? sha1 : "");
    for (char *c = l->sha256[l->n]; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    l->n = n;
    return true;
}

/* Fills l from a tree answer ([{type, path, size, oid, lfs: {oid, size}}]) or, when
 * siblings is true, from a model answer ({siblings: [{rfilename}]}). */
static ponder_status parse_listing(const char *body, bool siblings, const char *what, listing *l, ponder_error *err)
{
    json_error_t je;
    json_t *root = json_loads(body, 0, &je);
    json_t *arr = siblings && json_is_object(root) ? json_object_get(root, "siblings") : root;
    if (!json_is_array(arr)) {
        json_decref(root);
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s: the hub's answer is not a file listing", what);
    }
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        const char *path = json_string_value(json_object_get(it, siblings ? "rfilename" : "path"));
        const char *type = json_string_value(json_object_get(it, "type"));
        if (!path || !hub_is_gguf(path) || (type && strcmp(type, "file") != 0))
            continue;
        json_t *lfs = json_object_get(it, "lfs");
        json_t *size = json_object_get(lfs ? lfs : it, "size");
        const char *sha = lfs ? json_string_value(json_object_get(lfs, "oid")) : NULL;
        const char *git = lfs ? NULL : json_string_value(json_object_get(it, "oid"));
        uint64_t sz = json_is_integer(size) && json_integer_value(size) > 0 ? (uint64_t)json_integer_value(size) : 0;
        if (!listing_add(l, path, sz, sha, git)) {
            json_decref(root);
            return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory reading the listing");
        }
    }
    json_decref(root);
    return PONDER_OK;
}

/* Lists the repository (the tree API; the model API's siblings on a mirror without it). */
static ponder_status list_repo(const hub_ctx *c, const ponder_hub_ref *r, const char *what, listing *l,
                               ponder_error *err)
{
    char url[8192], dir[2048] = "", enc[4096] = "";
    if (r->file[0] && strrchr(r->file, '/'))
        snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(r->file, '/') - r->file), r->file);
    if (!url_path(dir, enc, sizeof enc))
        return ponder_error_set(err, PONDER_ERR_RANGE, "%s: path too long", what);
    if (r->file[0])
        snprintf(url, sizeof url, "%s/api/models/%s/%s/tree/" HUB_REVISION "%s%s", c->endpoint, r->owner, r->repo,
                 enc[0] ? "/" : "", enc);
    else
        snprintf(url, sizeof url, "%s/api/models/%s/%s/tree/" HUB_REVISION "?recursive=true", c->endpoint, r->owner,
                 r->repo);
    char *body = NULL, next[4096] = "";
    size_t len = 0;
    long status = 0;
    ponder_status s = hub_get(c, url, true, &body, &len, &status, next, sizeof next, err);
    bool siblings = false;
    if (s == PONDER_OK && status == 404) {
        free(body);
        body = NULL;
        next[0] = '\0';
        snprintf(url, sizeof url, "%s/api/models/%s/%s", c->endpoint, r->owner, r->repo);
        s = hub_get(c, url, true, &body, &len, &status, NULL, 0, err);
        siblings = true;
    }
    /* A long listing comes in pages, each naming the next in a Link header (rel="next"). */
    for (int page = 0; s == PONDER_OK; page++) {
        if (status != 200)
            s = status == 404 ? ponder_error_set(err, PONDER_ERR_NOT_FOUND,
                                                 "%s: 404 Not Found: no repository %s/%s at %s", what, r->owner,
                                                 r->repo, c->endpoint)
                              : hub_http_error(c, status, what, body, err);
        if (s == PONDER_OK)
            s = parse_listing(body, siblings, what, l, err);
        free(body);
        body = NULL;
        if (s != PONDER_OK || !next[0])
            break;
        if (page + 1 >= HUB_MAX_PAGES)
            return ponder_error_set(err, PONDER_ERR_RANGE, "%s: the listing has more than %d pages", what,
                                    HUB_MAX_PAGES);
        snprintf(url, sizeof url, "%s", next);
        size_t en = strlen(c->endpoint);
        bool on_endpoint = strncmp(url, c->endpoint, en) == 0 && (url[en] == '/' || url[en] == '?');
        s = hub_get(c, url, on_endpoint, &body, &len, &status, next, sizeof next, err);
    }
    free(body);
    return s;
}

/* The quant tags (or file names) of a listing, for "available: ..." messages. */
static void available(const listing *l, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < l->n; i++) {
        char tag[64];
        const char *show = hub_quant_of(l->path[i], tag, sizeof tag) ? tag : hub_basename(l->path[i]);
        if (strstr(out, show))
            continue;
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", used ? ", " : "", show);
    }
}

/* Name, size and sha256 of the repository file r designates. */
static ponder_status choose_file(const hub_ctx *c, const ponder_hub_ref *r, const char *what, hub_file *f,
                                 char *path, size_t pcap, ponder_error *err)
{
    listing l = {0};
    ponder_status s = list_repo(c, r, what, &l, err);
    if (s != PONDER_OK) {
        listing_free(&l);
        return s;
    }
    int k = -1;
    if (r->file[0]) {
        for (int i = 0; i < l.n && k < 0; i++)
            if (strcmp(l.path[i], r->file) == 0)
                k = i;
        if (k < 0)
            s = ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: 404 Not Found: no file %s in %s/%s", what, r->file,
                                 r->owner, r->repo);
    } else if (l.n == 0) {
        s = ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: the repository %s/%s has no .gguf file", what, r->owner,
                             r->repo);
    } else if ((k = hub_choose((const char *const *)l.path, l.n, r->quant)) < 0) {
        char av[1024];
        available(&l, av, sizeof av);
        s = ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: no GGUF file matching '%s' in %s/%s; available: %s", what,
                             r->quant[0] ? r->quant : "(default)", r->owner, r->repo, av);
    }
    if (s == PONDER_OK && hub_is_split(l.path[k]))
        s = ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                             "%s: %s is one part of a split GGUF; split files are not supported (merge them with "
                             "llama-gguf-split --merge)",
                             what, l.path[k]);
    char enc[4096];
    if (s == PONDER_OK && (!url_path(l.path[k], enc, sizeof enc) || strlen(l.path[k]) >= pcap))
        s = ponder_error_set(err, PONDER_ERR_RANGE, "%s: file path too long", what);
    if (s == PONDER_OK && snprintf(f->url, sizeof f->url, "%s/%s/%s/resolve/" HUB_REVISION "/%s", c->endpoint,
                                   r->owner, r->repo, enc) >= (int)sizeof f->url)
        s = ponder_error_set(err, PONDER_ERR_RANGE, "%s: URL too long", what);
    if (s == PONDER_OK) {
        f->send_auth = true;
        f->size = l.size[k];
        snprintf(f->sha256, sizeof f->sha256, "%s", l.sha256[k]);
        snprintf(f->git_sha1, sizeof f->git_sha1, "%s", l.git_sha1[k]);
        snprintf(path, pcap, "%s", l.path[k]);
    }
    listing_free(&l);
    return s;
}

static bool file_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    *size = (uint64_t)st.st_size;
    return true;
}

static ponder_status pull_hf(const hub_ctx *c, const ponder_hub_ref *r, const char *name, ponder_hub_pull_result *res,
                             ponder_error *err)
{
    hub_file f = {0};
    char rpath[1024], dir[PATH_MAX], tag[64];
    snprintf(f.label, sizeof f.label, "%s", name);
    ponder_status s = choose_file(c, r, name, &f, rpath, sizeof rpath, err);
    if (s != PONDER_OK)
        return s;
    const char *base = hub_basename(rpath);
    if (!hub_quant_of(base, tag, sizeof tag))
        snprintf(tag, sizeof tag, "%.*s", (int)(strlen(base) - 5 < 63 ? strlen(base) - 5 : 63), base);
    snprintf(res->name, sizeof res->name, "hf.co/%s/%s:%s", r->owner, r->repo, tag);
    if (hub_repo_dir(dir, sizeof dir, c->store, r->owner, r->repo) >= (int)sizeof dir ||
        snprintf(res->path, sizeof res->path, "%s/%s", dir, base) >= (int)sizeof res->path)
        return ponder_error_set(err, PONDER_ERR_RANGE, "%s: path too long", dir);
    uint64_t have = 0;
    if (!c->p->force && file_size(res->path, &have) && (!f.size || have == f.size)) {
        res->already = true;
        res->bytes = have;
        return PONDER_OK;
    }
    if ((s = hub_mkdirs(dir, err)) != PONDER_OK)
        return s;
    return hub_download(c, &f, res->path, res, err);
}

static ponder_status pull_url(const hub_ctx *c, const ponder_hub_ref *r, ponder_hub_pull_result *res,
                              ponder_error *err)
{
    hub_file f = {0};
    char file[256];
    if (!hub_url_file(r->url, file, sizeof file))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s': the URL must name a .gguf file", r->url);
    snprintf(f.url, sizeof f.url, "%s", r->url);
    snprintf(f.label, sizeof f.label, "%.*s", (int)sizeof f.label - 1, r->url);
    size_t en = strlen(c->endpoint);
    f.send_auth = strncmp(r->url, c->endpoint, en) == 0 && r->url[en] == '/';
    snprintf(res->name, sizeof res->name, "%.*s", (int)(strlen(file) - 5), file);
    if (snprintf(res->path, sizeof res->path, "%s/%s", c->store, file) >= (int)sizeof res->path)
        return ponder_error_set(err, PONDER_ERR_RANGE, "%s: path too long", c->store);
    uint64_t have = 0;
    if (!c->p->force && file_size(res->path, &have)) {
        res->already = true;
        res->bytes = have;
        return PONDER_OK;
    }
    ponder_status s = hub_mkdirs(c->store, err);
    return s != PONDER_OK ? s : hub_download(c, &f, res->path, res, err);
}

ponder_status ponder_hub_pull(const char *name, const ponder_hub_params *p, ponder_hub_pull_result *res,
                              ponder_error *err)
{
    if (!name || !res)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_hub_pull: NULL argument");
    memset(res, 0, sizeof *res);
    ponder_hub_params def = ponder_hub_params_default();
    if (!p)
        p = &def;
    if (p->sha256 && *p->sha256) {
        size_t n = strlen(p->sha256);
        bool ok = n == 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = isxdigit((unsigned char)p->sha256[i]) != 0;
        if (!ok)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "--sha256 '%s' is not 64 hex digits", p->sha256);
    }
    ponder_hub_ref r;
    ponder_status s = ponder_hub_parse(name, &r, err);
    if (s != PONDER_OK)
        return s;
    hub_ctx c;
    if ((s = make_ctx(p, &c, err)) != PONDER_OK)
        return s;
    return r.source == PONDER_HUB_SOURCE_URL ? pull_url(&c, &r, res, err) : pull_hf(&c, &r, name, res, err);
}
