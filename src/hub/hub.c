/*
 * hub.c — model names and the local store: parsing hf.co/OWNER/REPO[:QUANT], URLs and the
 * built-in catalogue; finding, listing and removing pulled files.
 *
 * The store is plain files (hf.co/OWNER/REPO/FILE.gguf, FILE.gguf for URLs) so that what
 * `ponder list` shows is exactly what is on disk, and a name resolves by the same token
 * match `ponder pull` used to choose the file from the repository's listing.
 */
#include "hub/hub_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Popular GGUF repositories, each checked to exist on the Hub with the named file. The
 * first entry of a family is what the bare family name means. To add one: a name as
 * Ollama spells it, a target any `ponder pull` accepts, and size + licence. */
static const ponder_hub_catalogue_entry CATALOGUE[] = {
    {"stories:260k", "hf.co/ggml-org/models/tinyllamas/stories260K.gguf",
     "TinyStories 260K (llama2.c), 1.2 MB, MIT: the bundled default model"},
    {"smollm2:135m", "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0", "SmolLM2 135M Instruct, 145 MB, Apache-2.0"},
    {"smollm2:1.7b", "hf.co/bartowski/SmolLM2-1.7B-Instruct-GGUF:Q4_K_M",
     "SmolLM2 1.7B Instruct, 1.06 GB, Apache-2.0"},
    {"qwen2.5:0.5b", "hf.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", "Qwen2.5 0.5B Instruct, 398 MB, Apache-2.0"},
    {"llama3.2:1b", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
     "Llama 3.2 1B Instruct, ~0.8 GB, Llama 3.2 Community License"},
};
#define N_CATALOGUE ((int)(sizeof CATALOGUE / sizeof CATALOGUE[0]))

/* Default choice among a repository's files when no quant is named: llama.cpp's -hf
 * default first, then the usual quality/size trade-offs. */
static const char *const QUANT_PREFERENCE[] = {"Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0", "Q6_K",
                                               "Q5_K_S", "Q3_K_M", "F16",    "BF16", "F32"};

const ponder_hub_catalogue_entry *ponder_hub_catalogue_at(int i)
{
    return i >= 0 && i < N_CATALOGUE ? &CATALOGUE[i] : NULL;
}

/* ---- file-name tokens ---- */

static size_t quant_len(const char *p);

static bool tok_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

bool hub_has_token(const char *s, const char *tag)
{
    size_t n = strlen(tag);
    if (!n)
        return false;
    /* '_' may precede a quant tag ("Instruct_Q4_K_M") but not a piece of one ("K_M"). */
    for (const char *p = s; *p; p++)
        if (strncasecmp(p, tag, n) == 0 && (p == s || !tok_char(p[-1]) || (p[-1] == '_' && quant_len(p))) &&
            !tok_char(p[n]))
            return true;
    return false;
}

/* A quant-like token starting at p: I?Q<digit>[A-Za-z0-9_]*, or F16/F32/BF16/FP16. */
static size_t quant_len(const char *p)
{
    static const char *const floats[] = {"BF16", "FP16", "F16", "F32"};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        size_t n = strlen(floats[i]);
        if (strncasecmp(p, floats[i], n) == 0 && !tok_char(p[n]))
            return n;
    }
    const char *q = p;
    if (*q == 'I' || *q == 'i')
        q++;
    if ((*q != 'Q' && *q != 'q') || !isdigit((unsigned char)q[1]))
        return 0;
    q += 2;
    while (tok_char(*q))
        q++;
    return (size_t)(q - p);
}

bool hub_quant_of(const char *file, char *out, size_t cap)
{
    const char *base = hub_basename(file);
    const char *best = NULL;
    size_t best_n = 0;
    for (const char *p = base; *p; p++) {
        if (p != base && isalnum((unsigned char)p[-1]))
            continue;
        size_t n = quant_len(p);
        if (n) {
            best = p;
            best_n = n;
        }
    }
    if (!best || best_n + 1 > cap)
        return false;
    for (size_t i = 0; i < best_n; i++)
        out[i] = (char)toupper((unsigned char)best[i]);
    out[best_n] = '\0';
    return true;
}

bool hub_is_split(const char *file)
{
    /* "-NNNNN-of-NNNNN.gguf", llama-gguf-split's naming */
    size_t n = strlen(file);
    if (n < 20)
        return false;
    const char *p = file + n - 20;
    for (int i = 0; i < 20; i++) {
        char c = p[i];
        bool ok = (i == 0 || i == 6 || i == 9) ? c == '-' : (i == 7) ? c == 'o' : (i == 8) ? c == 'f'
                  : (i >= 15) ? tolower((unsigned char)c) == ".gguf"[i - 15]
                              : isdigit((unsigned char)c) != 0;
        if (!ok)
            return false;
    }
    return true;
}

bool hub_is_gguf(const char *file)
{
    size_t n = strlen(file);
    return n > 5 && strcasecmp(file + n - 5, ".gguf") == 0;
}

const char *hub_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool is_projector(const char *name)
{
    return strcasestr(hub_basename(name), "mmproj") != NULL;
}

int hub_choose(const char *const *names, int n, const char *quant)
{
    if (quant && *quant) {
        int first = -1;
        for (int i = 0; i < n; i++)
            if (hub_has_token(hub_basename(names[i]), quant)) {
                if (!hub_is_split(names[i]))
                    return i;
                if (first < 0)
                    first = i;
            }
        return first;
    }
    for (size_t k = 0; k < sizeof QUANT_PREFERENCE / sizeof QUANT_PREFERENCE[0]; k++)
        for (int i = 0; i < n; i++)
            if (!is_projector(names[i]) && hub_has_token(hub_basename(names[i]), QUANT_PREFERENCE[k]))
                return i;
    for (int i = 0; i < n; i++)
        if (!is_projector(names[i]))
            return i;
    return -1;
}

/* ---- parsing ---- */

static bool valid_repo_part(const char *s, size_t n)
{
    if (n == 0 || n >= 128 || (n <= 2 && s[0] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* A repository path: no empty, "." or ".." component, no backslash or control byte. */
static bool valid_file_path(const char *s)
{
    if (!*s || strlen(s) >= 1024 || !hub_is_gguf(s))
        return false;
    const char *c = s;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == '\\')
                return false;
        c += n + (e ? 1 : 0);
    }
    return true;
}

/* "OWNER/REPO[/PATH.gguf][:QUANT]" after the hf.co/ prefix. */
static ponder_status parse_hf(const char *name, const char *rest, ponder_hub_ref *r, ponder_error *err)
{
    memset(r, 0, sizeof *r);
    r->source = PONDER_HUB_SOURCE_HF;
    const char *slash = strchr(rest, '/');
    if (!slash || !valid_repo_part(rest, (size_t)(slash - rest)))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "'%s': expected hf.co/OWNER/REPO[:QUANT] or hf.co/OWNER/REPO/FILE.gguf", name);
    snprintf(r->owner, sizeof r->owner, "%.*s", (int)(slash - rest), rest);
    const char *repo = slash + 1;
    size_t n = strcspn(repo, "/:");
    if (!valid_repo_part(repo, n))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s': '%.*s' is not a repository name", name, (int)n,
                                repo);
    snprintf(r->repo, sizeof r->repo, "%.*s", (int)n, repo);
    const char *tail = repo + n;
    if (*tail == ':') {
        const char *q = tail + 1;
        size_t qn = strlen(q);
        if (qn == 0 || qn >= sizeof r->quant || strchr(q, '/'))
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s': bad quant tag after ':'", name);
        for (size_t i = 0; i < qn; i++)
            if (!tok_char(q[i]) && q[i] != '-' && q[i] != '.')
                return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s': bad quant tag '%s'", name, q);
        snprintf(r->quant, sizeof r->quant, "%s", q);
    } else if (*tail == '/') {
        if (!valid_file_path(tail + 1))
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "'%s': a file in a repository is a path ending in .gguf (no '..')", name);
        snprintf(r->file, sizeof r->file, "%s", tail + 1);
    }
    return PONDER_OK;
}

static ponder_status parse_url(const char *name, ponder_hub_ref *r, ponder_error *err)
{
    r->source = PONDER_HUB_SOURCE_URL;
    if (strlen(name) >= sizeof r->url)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "URL too long (%zu bytes)", strlen(name));
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s': a URL has no spaces or control bytes", name);
    snprintf(r->url, sizeof r->url, "%s", name);
    char file[256];
    if (!hub_url_file(name, file, sizeof file))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s': the URL must name a .gguf file", name);
    return PONDER_OK;
}

/* A catalogue name: exact, a bare family (its first entry), or FAMILY:TAG-QUANT. */
static const ponder_hub_catalogue_entry *catalogue_find(const char *name, char *quant, size_t qcap)
{
    quant[0] = '\0';
    for (int i = 0; i < N_CATALOGUE; i++)
        if (strcasecmp(CATALOGUE[i].name, name) == 0)
            return &CATALOGUE[i];
    if (!strchr(name, ':')) {
        size_t n = strlen(name);
        for (int i = 0; i < N_CATALOGUE; i++)
            if (strncasecmp(CATALOGUE[i].name, name, n) == 0 && CATALOGUE[i].name[n] == ':')
                return &CATALOGUE[i];
        return NULL;
    }
    const char *dash = strrchr(name, '-');
    if (!dash || dash < strchr(name, ':') || !quant_len(dash + 1) || strlen(dash + 1) >= qcap)
        return NULL;
    size_t n = (size_t)(dash - name);
    for (int i = 0; i < N_CATALOGUE; i++)
        if (strlen(CATALOGUE[i].name) == n && strncasecmp(CATALOGUE[i].name, name, n) == 0 &&
            strchr(CATALOGUE[i].target, ':')) { /* a repository's quant, not a fixed file */
            snprintf(quant, qcap, "%s", dash + 1);
            return &CATALOGUE[i];
        }
    return NULL;
}

static const char *strip_hf_prefix(const char *name)
{
    static const char *const prefixes[] = {"https://huggingface.co/", "http://huggingface.co/", "https://hf.co/",
                                           "http://hf.co/", "huggingface.co/", "hf.co/"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncasecmp(name, prefixes[i], n) == 0)
            return name + n;
    }
    return NULL;
}

static bool is_http_url(const char *name)
{
    return strncasecmp(name, "http://", 7) == 0 || strncasecmp(name, "https://", 8) == 0;
}

bool ponder_hub_is_name(const char *name)
{
    if (!name || !*name)
        return false;
    if (strip_hf_prefix(name) || is_http_url(name))
        return true;
    return strchr(name, ':') && !strchr(name, '/');
}

ponder_status ponder_hub_parse(const char *name, ponder_hub_ref *r, ponder_error *err)
{
    if (!name || !r)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_hub_parse: NULL argument");
    memset(r, 0, sizeof *r);
    if (!*name)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "empty model name");
    const char *rest = strip_hf_prefix(name);
    /* A resolve/ URL is a plain file URL, whatever its host. */
    if (rest && strstr(rest, "/resolve/") && is_http_url(name))
        return parse_url(name, r, err);
    if (rest)
        return parse_hf(name, rest, r, err);
    if (is_http_url(name))
        return parse_url(name, r, err);
    char quant[64];
    const ponder_hub_catalogue_entry *e = catalogue_find(name, quant, sizeof quant);
    if (!e) {
        char names[512] = "";
        for (int i = 0; i < N_CATALOGUE; i++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", CATALOGUE[i].name);
        }
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND,
                                "unknown model '%s': not in the catalogue (%s), and not hf.co/OWNER/REPO[:QUANT] "
                                "or an https://.../FILE.gguf URL",
                                name, names);
    }
    ponder_status s = parse_hf(e->target, strip_hf_prefix(e->target), r, err);
    if (s != PONDER_OK)
        return s; /* a broken catalogue entry: the catalogue test catches it */
    if (quant[0])
        snprintf(r->quant, sizeof r->quant, "%s", quant);
    snprintf(r->alias, sizeof r->alias, "%s", e->name);
    return PONDER_OK;
}

/* ---- the store ---- */

ponder_status hub_store_dir(const ponder_hub_params *p, char *out, size_t cap, ponder_error *err)
{
    const char *dir = p && p->models_dir ? p->models_dir : getenv("PONDER_MODELS");
    int n;
    if (dir && *dir) {
        n = snprintf(out, cap, "%s", dir);
    } else {
        const char *home = getenv("HOME");
        n = snprintf(out, cap, "%s/.local/share/ponder/models", home && *home ? home : ".");
    }
    if (n < 0 || (size_t)n >= cap)
        return ponder_error_set(err, PONDER_ERR_RANGE, "models directory path too long");
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return PONDER_OK;
}

ponder_status ponder_hub_models_dir(const ponder_hub_params *p, char *out, size_t cap, ponder_error *err)
{
    if (!out || !cap)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_hub_models_dir: no output buffer");
    return hub_store_dir(p, out, cap, err);
}

int hub_repo_dir(char *out, size_t cap, const char *store, const char *owner, const char *repo)
{
    return snprintf(out, cap, "%s/hf.co/%s/%s", store, owner, repo);
}

bool hub_url_file(const char *url, char *out, size_t cap)
{
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    if (!path)
        return false;
    size_t end = strcspn(path, "?#");
    const char *last = path;
    for (size_t i = 0; i < end; i++)
        if (path[i] == '/')
            last = path + i + 1;
    size_t n = (size_t)(path + end - last);
    if (n == 0 || n + 1 > cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = last[i];
        out[i] = (isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '+') ? c : '_';
    }
    out[n] = '\0';
    return out[0] != '.' && hub_is_gguf(out);
}

ponder_status hub_mkdirs(const char *dir, ponder_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return ponder_error_set(err, PONDER_ERR_RANGE, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ponder_error_set(err, PONDER_ERR_IO, "%s: not a directory", dir);
    return PONDER_OK;
}

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The .gguf files of dir (names malloc'ed, sorted); *n their count. */
static char **gguf_files(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!hub_is_gguf(e->d_name) || e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            int nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, (size_t)nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        if (!(names[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(d);
    for (int i = 1; i < *n; i++) /* insertion sort: a repository holds tens of files */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    return names;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The local path a parsed name has once pulled; false if none is there. */
static bool local_path(const char *store, const ponder_hub_ref *r, char *out, size_t cap)
{
    char dir[PATH_MAX];
    if (r->source == PONDER_HUB_SOURCE_URL) {
        char file[256];
        return hub_url_file(r->url, file, sizeof file) &&
               snprintf(out, cap, "%s/%s", store, file) < (int)cap && is_regular(out);
    }
    if (hub_repo_dir(dir, sizeof dir, store, r->owner, r->repo) >= (int)sizeof dir)
        return false;
    if (r->file[0])
        return snprintf(out, cap, "%s/%s", dir, hub_basename(r->file)) < (int)cap && is_regular(out);
    int n = 0;
    char **names = gguf_files(dir, &n);
    int k = hub_choose((const char *const *)names, n, r->quant);
    bool ok = k >= 0 && snprintf(out, cap, "%s/%s", dir, names[k]) < (int)cap && is_regular(out);
    free_names(names, n);
    return ok;
}

ponder_status ponder_hub_find(const char *name, const ponder_hub_params *p, char *out, size_t cap,
                              ponder_error *err)
{
    if (!name || !out || !cap)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_hub_find: NULL argument");
    if (!*name)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "empty model name");
    char store[PATH_MAX], path[PATH_MAX + 300];
    ponder_status s = hub_store_dir(p, store, sizeof store, err);
    if (s != PONDER_OK)
        return s;
    if (!strchr(name, '/')) {
        snprintf(path, sizeof path, "%s/%s", store, name);
        if (is_regular(path) && snprintf(out, cap, "%s", path) < (int)cap)
            return PONDER_OK;
        snprintf(path, sizeof path, "%s/%s.gguf", store, name);
        if (is_regular(path) && snprintf(out, cap, "%s", path) < (int)cap)
            return PONDER_OK;
    }
    ponder_hub_ref r;
    ponder_error perr;
    if (ponder_hub_parse(name, &r, &perr) != PONDER_OK) {
        if (strchr(name, '/') && !ponder_hub_is_name(name))
            return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: %s", name, strerror(ENOENT));
        if (ponder_hub_is_name(name))
            return ponder_error_set(err, perr.code, "%s", perr.msg);
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND,
                                "model '%s' not found: no such file, and neither %s/%s nor %s/%s.gguf exists (set "
                                "PONDER_MODELS to change that folder)",
                                name, store, name, store, name);
    }
    if (local_path(store, &r, path, sizeof path)) {
        if (snprintf(out, cap, "%s", path) >= (int)cap)
            return ponder_error_set(err, PONDER_ERR_RANGE, "%s: path too long", path);
        return PONDER_OK;
    }
    return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "model '%s' is not in %s; fetch it with: ponder pull %s", name,
                            store, name);
}

/* ---- list and remove ---- */

typedef struct entry_list {
    ponder_hub_entry *v;
    size_t n, cap;
} entry_list;

/* The catalogue name whose target is this pulled file, "" if none. */
static void alias_of(const char *owner, const char *repo, const char *file, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < N_CATALOGUE; i++) {
        ponder_hub_ref r;
        if (parse_hf(CATALOGUE[i].target, strip_hf_prefix(CATALOGUE[i].target), &r, NULL) != PONDER_OK ||
            strcmp(r.owner, owner) != 0 || strcmp(r.repo, repo) != 0)
            continue;
        const char *cand[1] = {file};
        if (r.file[0] ? strcmp(hub_basename(r.file), file) == 0 : hub_choose(cand, 1, r.quant) == 0) {
            snprintf(out, cap, "%s", CATALOGUE[i].name);
            return;
        }
    }
}

static ponder_status add_entry(entry_list *l, const char *dir, const char *file, const char *owner,
                               const char *repo, ponder_error *err)
{
    size_t fn = strlen(file);
    bool partial = fn > 8 && strcmp(file + fn - 8, ".partial") == 0;
    char base[512];
    snprintf(base, sizeof base, "%.*s", (int)(partial ? fn - 8 : fn), file);
    if (!hub_is_gguf(base) || base[0] == '.')
        return PONDER_OK;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        ponder_hub_entry *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory listing %s", dir);
        l->v = nv;
        l->cap = nc;
    }
    ponder_hub_entry *e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    snprintf(e->path, sizeof e->path, "%s/%s", dir, file);
    struct stat st;
    if (stat(e->path, &st) != 0 || !S_ISREG(st.st_mode))
        return PONDER_OK;
    e->bytes = (uint64_t)st.st_size;
    e->partial = partial;
    char stem[512], tag[64];
    snprintf(stem, sizeof stem, "%.*s", (int)(strlen(base) - 5), base);
    if (owner) {
        if (!hub_quant_of(base, tag, sizeof tag))
            snprintf(tag, sizeof tag, "%.63s", stem);
        snprintf(e->name, sizeof e->name, "hf.co/%s/%s:%s", owner, repo, tag);
        alias_of(owner, repo, base, e->alias, sizeof e->alias);
    } else {
        snprintf(e->name, sizeof e->name, "%s", stem);
    }
    l->n++;
    return PONDER_OK;
}

static ponder_status list_dir(entry_list *l, const char *dir, const char *owner, const char *repo,
                              ponder_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return PONDER_OK;
    struct dirent *e;
    ponder_status s = PONDER_OK;
    while (s == PONDER_OK && (e = readdir(d)))
        s = add_entry(l, dir, e->d_name, owner, repo, err);
    closedir(d);
    return s;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ponder_hub_entry *)a)->name, ((const ponder_hub_entry *)b)->name);
}

/* hf.co/OWNER/REPO/ under the store. */
static ponder_status list_repos(entry_list *l, const char *store, ponder_error *err)
{
    char hf[PATH_MAX];
    if (snprintf(hf, sizeof hf, "%s/hf.co", store) >= (int)sizeof hf)
        return PONDER_OK;
    DIR *owners = opendir(hf);
    if (!owners)
        return PONDER_OK;
    ponder_status s = PONDER_OK;
    struct dirent *o;
    while (s == PONDER_OK && (o = readdir(owners))) {
        if (o->d_name[0] == '.')
            continue;
        char odir[PATH_MAX];
        if (snprintf(odir, sizeof odir, "%s/%s", hf, o->d_name) >= (int)sizeof odir)
            continue;
        DIR *repos = opendir(odir);
        struct dirent *r;
        while (repos && s == PONDER_OK && (r = readdir(repos))) {
            char rdir[PATH_MAX];
            if (r->d_name[0] != '.' && snprintf(rdir, sizeof rdir, "%s/%s", odir, r->d_name) < (int)sizeof rdir)
                s = list_dir(l, rdir, o->d_name, r->d_name, err);
        }
        if (repos)
            closedir(repos);
    }
    closedir(owners);
    return s;
}

ponder_status ponder_hub_list(const ponder_hub_params *p, ponder_hub_entry **out, size_t *n, ponder_error *err)
{
    if (!out || !n)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_hub_list: NULL argument");
    *out = NULL;
    *n = 0;
    char store[PATH_MAX];
    ponder_status s = hub_store_dir(p, store, sizeof store, err);
    if (s != PONDER_OK)
        return s;
    entry_list l = {0};
    if ((s = list_dir(&l, store, NULL, NULL, err)) == PONDER_OK)
        s = list_repos(&l, store, err);
    if (s != PONDER_OK) {
        free(l.v);
        return s;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, entry_cmp);
    *out = l.v;
    *n = l.n;
    return PONDER_OK;
}

ponder_status ponder_hub_remove(const char *name, const ponder_hub_params *p, char *removed, size_t cap,
                                ponder_error *err)
{
    char path[PATH_MAX + 16], store[PATH_MAX];
    ponder_status s = hub_store_dir(p, store, sizeof store, err);
    if (s != PONDER_OK)
        return s;
    bool have = ponder_hub_find(name, p, path, PATH_MAX, err) == PONDER_OK;
    /* Only files of the store: `ponder rm ./my.gguf` must not delete a user's file. */
    size_t sn = strlen(store);
    if (have && (strncmp(path, store, sn) != 0 || path[sn] != '/'))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "%s is not in the models folder %s; not removed", path,
                                store);
    char partial[PATH_MAX + 32];
    bool had_partial = false;
    if (have) {
        if (unlink(path) != 0)
            return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        snprintf(partial, sizeof partial, "%s.partial", path);
        had_partial = unlink(partial) == 0;
    } else {
        /* Only a partial download of it: remove that. */
        ponder_hub_entry *v = NULL;
        size_t n = 0;
        ponder_hub_ref r;
        if (ponder_hub_parse(name, &r, NULL) == PONDER_OK && ponder_hub_list(p, &v, &n, NULL) == PONDER_OK) {
            char want[PATH_MAX];
            int w = r.source == PONDER_HUB_SOURCE_HF ? hub_repo_dir(want, sizeof want, store, r.owner, r.repo)
                                                     : snprintf(want, sizeof want, "%s", store);
            for (size_t i = 0; w > 0 && i < n && !had_partial; i++) {
                const char *dir_end = strrchr(v[i].path, '/');
                if (v[i].partial && (size_t)(dir_end - v[i].path) == strlen(want) &&
                    strncmp(v[i].path, want, strlen(want)) == 0 && unlink(v[i].path) == 0) {
                    had_partial = true;
                    snprintf(path, sizeof path, "%s", v[i].path);
                }
            }
        }
        free(v);
        if (!had_partial)
            return PONDER_ERR_NOT_FOUND; /* err holds ponder_hub_find's message */
    }
    if (removed)
        snprintf(removed, cap, "%s", path);
    /* Prune hf.co/OWNER/REPO and hf.co/OWNER when empty (rmdir refuses otherwise). */
    char *slash = strrchr(path, '/');
    for (int up = 0; slash && up < 3; up++) {
        *slash = '\0';
        if (strlen(path) <= sn || rmdir(path) != 0)
            break;
        slash = strrchr(path, '/');
    }
    return PONDER_OK;
}
