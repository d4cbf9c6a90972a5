/*
 * cmd_list.c — `ponder list` and `ponder rm`: the models in $PONDER_MODELS.
 *
 * list reads each file's GGUF header (mmap, no weights touched) for the architecture,
 * the quantization (general.file_type, else the type holding most bytes) and the
 * parameter count, so it describes what is on disk, not what a download said.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gguf.h"
#include "ponder/hub.h"
#include "ponder/quantize.h"
#include "ponder/tensor.h"

static void list_usage(void)
{
    printf("usage: ponder list [--json]\n"
           "\n"
           "Lists the models in $PONDER_MODELS (default ~/.local/share/ponder/models): name (what\n"
           "-m and ponder rm take), catalogue alias, size, quantization, architecture and\n"
           "parameters. Unfinished downloads show as partial (ponder pull resumes them).\n"
           "\n"
           "options:\n"
           "      --json   one JSON array of objects\n"
           "  -h, --help   this help\n");
}

static void rm_usage(void)
{
    printf("usage: ponder rm NAME...\n"
           "\n"
           "Removes models from $PONDER_MODELS by the names ponder list shows (a catalogue\n"
           "name or a file name works too), with any partial download of them. Files outside\n"
           "that folder are never removed.\n"
           "\n"
           "options:\n"
           "  -h, --help   this help\n");
}

typedef struct facts {
    char arch[64], quant[32], error[PONDER_ERROR_MSG_BYTES];
    uint64_t n_params;
    bool ok;
} facts;

/* The quant name of a llama_ftype number, via the quantize presets; NULL if none. */
static const char *ftype_name(uint32_t ftype)
{
    const ponder_quantize_preset *q;
    for (int i = 0; (q = ponder_quantize_preset_at(i)); i++)
        if (q->ftype == ftype)
            return q->name;
    return NULL;
}

static void read_facts(const char *path, facts *f)
{
    memset(f, 0, sizeof *f);
    ponder_gguf *g = NULL;
    ponder_error err;
    if (ponder_gguf_open(path, &g, &err) != PONDER_OK) {
        snprintf(f->error, sizeof f->error, "%s", err.msg);
        return;
    }
    ponder_gguf_str s;
    if (ponder_gguf_get_str(g, "general.architecture", &s, NULL) == PONDER_OK)
        snprintf(f->arch, sizeof f->arch, "%.*s", (int)(s.len < 63 ? s.len : 63), s.data);
    uint64_t bytes_by_type[PONDER_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        uint64_t ne = 1;
        for (int d = 0; d < PONDER_GGUF_MAX_DIMS; d++)
            ne *= (uint64_t)t->ne[d]; /* bounded by the reader's size checks */
        f->n_params += ne;
        if ((int)t->type >= 0 && (int)t->type < PONDER_TYPE_COUNT)
            bytes_by_type[t->type] += t->n_bytes;
    }
    uint32_t ftype = 0;
    const char *q = ponder_gguf_get_u32(g, "general.file_type", &ftype, NULL) == PONDER_OK ? ftype_name(ftype) : NULL;
    if (!q) {
        int best = 0;
        for (int t = 1; t < PONDER_TYPE_COUNT; t++)
            if (bytes_by_type[t] > bytes_by_type[best])
                best = t;
        q = ponder_type_name(best);
    }
    snprintf(f->quant, sizeof f->quant, "%s", q ? q : "?");
    f->ok = true;
    ponder_gguf_free(g);
}

static const char *human_count(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000000ull)
        snprintf(buf, cap, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(buf, cap, "%.1fM", (double)n / 1e6);
    else if (n >= 1000ull)
        snprintf(buf, cap, "%.0fK", (double)n / 1e3);
    else
        snprintf(buf, cap, "%" PRIu64, n);
    return buf;
}

static json_t *entry_json(const ponder_hub_entry *e, const facts *f)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:b}", "name", e->name, "path", e->path, "bytes", (json_int_t)e->bytes,
                          "partial", e->partial);
    if (!j)
        return NULL;
    json_object_set_new(j, "alias", e->alias[0] ? json_string(e->alias) : json_null());
    if (f->ok) {
        json_object_set_new(j, "quant", json_string(f->quant));
        json_object_set_new(j, "architecture", f->arch[0] ? json_string(f->arch) : json_null());
        json_object_set_new(j, "params", json_integer((json_int_t)f->n_params));
    } else if (!e->partial) {
        json_object_set_new(j, "error", json_string(f->error));
    }
    return j;
}

int cmd_list(int argc, char **argv)
{
    const char *cmd = "list";
    bool json = false;
    const cli_opt opts[] = { { "--json", NULL, CLI_FLAG, &json, 0, 0, NULL } };
    int npos = 0;
    cli_result pr = cli_parse(cmd, argc, argv, opts, 1, NULL, 0, &npos);
    if (pr == CLI_HELP) {
        list_usage();
        return CLI_EXIT_OK;
    }
    if (pr == CLI_BAD)
        return CLI_EXIT_USAGE;
    ponder_hub_entry *v = NULL;
    size_t n = 0;
    ponder_error err;
    if (ponder_hub_list(NULL, &v, &n, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    json_t *arr = json ? json_array() : NULL;
    if (!json && n)
        printf("%-56s %-14s %10s  %-8s %-10s %7s\n", "NAME", "ALIAS", "SIZE", "QUANT", "ARCH", "PARAMS");
    for (size_t i = 0; i < n; i++) {
        facts f = {0};
        if (!v[i].partial)
            read_facts(v[i].path, &f);
        if (json) {
            json_t *j = entry_json(&v[i], &f);
            if (!j || json_array_append_new(arr, j) != 0)
                break;
            continue;
        }
        char sz[32], pc[32];
        cli_human_bytes(v[i].bytes, sz, sizeof sz);
        if (v[i].partial)
            printf("%-56s %-14s %10s  (partial download: ponder pull %s resumes it)\n", v[i].name,
                   v[i].alias[0] ? v[i].alias : "-", sz, v[i].alias[0] ? v[i].alias : v[i].name);
        else if (!f.ok)
            printf("%-56s %-14s %10s  (unreadable: %s)\n", v[i].name, v[i].alias[0] ? v[i].alias : "-", sz, f.error);
        else
            printf("%-56s %-14s %10s  %-8s %-10s %7s\n", v[i].name, v[i].alias[0] ? v[i].alias : "-", sz, f.quant,
                   f.arch[0] ? f.arch : "?", human_count(f.n_params, pc, sizeof pc));
    }
    free(v);
    if (json) {
        json_dumpf(arr, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(arr);
    } else if (n == 0) {
        char dir[4096];
        if (ponder_hub_models_dir(NULL, dir, sizeof dir, NULL) == PONDER_OK)
            fprintf(stderr, "no models in %s (ponder pull NAME fetches one)\n", dir);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_runtime_error("cannot write to stdout");
    return CLI_EXIT_OK;
}

int cmd_rm(int argc, char **argv)
{
    const char *cmd = "rm";
    const char *pos[64];
    int npos = 0;
    cli_result pr = cli_parse(cmd, argc, argv, NULL, 0, pos, 64, &npos);
    if (pr == CLI_HELP) {
        rm_usage();
        return CLI_EXIT_OK;
    }
    if (pr == CLI_BAD)
        return CLI_EXIT_USAGE;
    if (npos == 0)
        return cli_usage_error(cmd, "expected at least one NAME (see ponder list)");
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < npos; i++) {
        char removed[4096];
        ponder_error err;
        if (ponder_hub_remove(pos[i], NULL, removed, sizeof removed, &err) != PONDER_OK)
            rc = cli_runtime_error("%s", err.msg);
        else
            printf("removed %s\n", removed);
    }
    return rc;
}
