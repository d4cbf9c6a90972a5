/*
 * cmd_quantize.c — `ponder quantize IN OUT TYPE`: llama-quantize's conversion (same
 * per-tensor types, same bytes without an importance matrix) through ponder_quantize_file.
 * A progress line per tensor on a terminal, then the sizes before and after. Ctrl-C
 * stops after the current tensor and removes the unfinished output.
 */
#include "cli/cli.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/hub.h"
#include "ponder/pool.h"
#include "ponder/quantize.h"

#define MIB (1024.0 * 1024.0)

static void list_types(FILE *f)
{
    for (int i = 0; ponder_quantize_preset_at(i); i++) {
        const ponder_quantize_preset *p = ponder_quantize_preset_at(i);
        fprintf(f, "  %-8s %s\n", p->name, p->summary);
    }
}

static void usage(void)
{
    printf("usage: ponder quantize [options] IN.gguf OUT.gguf TYPE\n"
           "\n"
           "Converts the weights of a GGUF model to TYPE, choosing each tensor's type as\n"
           "llama-quantize does (llama.cpp c392e509): norms, biases and the MoE router stay\n"
           "as they are, the output matrix and some attn_v / ffn_down layers get more bits,\n"
           "and rows that do not fit a type's block get llama.cpp's fallback type. Without an\n"
           "importance matrix the bytes are those llama-quantize writes. Metadata, tensor order\n"
           "and alignment are kept; general.file_type is set. The input should be F32, F16\n"
           "or BF16. OUT is written only when complete (it may be IN).\n"
           "\n"
           "TYPE (any case):\n");
    list_types(stdout);
    printf("\n"
           "options:\n"
           "  -t, --threads N       threads (default: the number of CPUs)\n"
           "      --pure            every weight matrix in TYPE's base type (the output and\n"
           "                        embeddings included), as llama-quantize --pure\n"
           "      --allow-requantize  convert tensors that are already quantized (they are\n"
           "                        dequantized first; accuracy suffers)\n"
           "      --override-kv KEY=TYPE:VALUE\n"
           "                        give the output this metadata key (TYPE float, bool or\n"
           "                        str), as llama-quantize; e.g. ponder.sampled_temp=float:0.5,\n"
           "                        the temperature sc/asc/bon use for the model by default\n"
           "      --json            print one JSON object with the results\n"
           "  -h, --help            this help\n"
           "\n"
           "A progress line is shown on a terminal. Exit status: 0 success, 1 runtime error,\n"
           "2 usage error.\n");
}

/* "KEY=TYPE:VALUE" (llama-quantize's --override-kv) into *kv, pointing into s; 0 or the
 * usage error's status. */
static int parse_override(const char *cmd, char *s, ponder_quantize_kv *kv)
{
    char *eq = strchr(s, '='), *colon = eq ? strchr(eq + 1, ':') : NULL;
    if (!eq || eq == s || !colon)
        return cli_usage_error(cmd, "--override-kv must be KEY=TYPE:VALUE, got '%s'", s);
    *eq = '\0';
    *colon = '\0';
    const char *type = eq + 1, *value = colon + 1;
    *kv = (ponder_quantize_kv){ .key = s };
    if (strcmp(type, "float") == 0) {
        char *end;
        kv->type = PONDER_GGUF_FLOAT32;
        kv->f = strtod(value, &end);
        if (!*value || *end || !isfinite(kv->f))
            return cli_usage_error(cmd, "--override-kv %s: '%s' is not a number", s, value);
    } else if (strcmp(type, "bool") == 0) {
        kv->type = PONDER_GGUF_BOOL;
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return cli_usage_error(cmd, "--override-kv %s: a bool is true or false, not '%s'", s, value);
        kv->b = strcmp(value, "true") == 0;
    } else if (strcmp(type, "str") == 0) {
        kv->type = PONDER_GGUF_STRING;
        kv->str = value;
    } else {
        return cli_usage_error(cmd, "--override-kv %s: TYPE must be float, bool or str, not '%s'", s, type);
    }
    return 0;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1; /* SA_RESETHAND: a second Ctrl-C ends the process at once */
}

static bool on_tensor(const ponder_quantize_progress *p, void *user)
{
    const bool *show = user;
    if (*show) {
        int width = snprintf(NULL, 0, "%lld", (long long)p->n_tensors);
        fprintf(stderr, "\r\033[K[%*lld/%lld] %-36s %6s -> %-6s", width, (long long)p->index + 1,
                (long long)p->n_tensors, p->name, ponder_type_name((int)p->type_in),
                ponder_type_name((int)p->type_out));
    }
    return !interrupted;
}

/* "F16 5, F32 11, Q5_0 29" */
static void print_type_counts(const ponder_quantize_report *r)
{
    const char *sep = "";
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        if (r->n_by_type[t] == 0)
            continue;
        printf("%s%s %lld", sep, ponder_type_name(t), (long long)r->n_by_type[t]);
        sep = ", ";
    }
}

static int print_json(const char *in, const char *out, const ponder_quantize_params *qp,
                      const ponder_quantize_report *r, double secs)
{
    json_t *types = json_object();
    json_t *o = json_object();
    if (!types || !o) {
        json_decref(types);
        json_decref(o);
        return cli_runtime_error("out of memory");
    }
    for (int t = 0; t < PONDER_TYPE_COUNT; t++)
        if (r->n_by_type[t] > 0)
            json_object_set_new(types, ponder_type_name(t), json_integer((json_int_t)r->n_by_type[t]));
    json_object_set_new(o, "input", cli_json_string(in, strlen(in)));
    json_object_set_new(o, "output", cli_json_string(out, strlen(out)));
    json_object_set_new(o, "type", json_string(r->preset->name));
    json_object_set_new(o, "file_type", json_integer(r->preset->ftype));
    json_object_set_new(o, "pure", json_boolean(qp->pure || r->preset->pure));
    json_object_set_new(o, "n_tensors", json_integer((json_int_t)r->n_tensors));
    json_object_set_new(o, "n_converted", json_integer((json_int_t)r->n_converted));
    json_object_set_new(o, "n_fallback", json_integer((json_int_t)r->n_fallback));
    json_object_set_new(o, "tensor_types", types);
    json_object_set_new(o, "n_params", json_integer((json_int_t)r->n_elems));
    json_object_set_new(o, "tensor_bytes_in", json_integer((json_int_t)r->bytes_in));
    json_object_set_new(o, "tensor_bytes_out", json_integer((json_int_t)r->bytes_out));
    json_object_set_new(o, "file_bytes_in", json_integer((json_int_t)r->file_bytes_in));
    json_object_set_new(o, "file_bytes_out", json_integer((json_int_t)r->file_bytes_out));
    json_object_set_new(o, "bits_per_weight", json_real(r->bits_per_weight));
    json_object_set_new(o, "seconds", json_real(secs));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return cli_runtime_error("out of memory");
    puts(s);
    free(s);
    return CLI_EXIT_OK;
}

int cmd_quantize(int argc, char **argv)
{
    const char *cmd = "quantize";
    int32_t n_threads = 0;
    bool json = false, pure = false, requant = false;
    const char *override = NULL;
    const cli_opt opts[] = {
        { "-t", "--threads", CLI_INT, &n_threads, 1, 1024, NULL },
        { "--pure", NULL, CLI_FLAG, &pure, 0, 0, NULL },
        { "--allow-requantize", NULL, CLI_FLAG, &requant, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &json, 0, 0, NULL },
        { "--override-kv", NULL, CLI_STRING, &override, 0, 0, NULL },
    };
    const char *pos[3];
    int n_pos = 0;
    cli_result res = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 3, &n_pos);
    if (res == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (res != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (n_pos < 3)
        return cli_usage_error(cmd, "expected IN.gguf OUT.gguf TYPE, got %d argument%s", n_pos, n_pos == 1 ? "" : "s");
    const char *in = pos[0], *out = pos[1], *type = pos[2];
    if (!*in || !*out)
        return cli_usage_error(cmd, "empty file name");
    if (!ponder_quantize_preset_find(type)) {
        char names[512];
        size_t n = 0;
        for (int i = 0; ponder_quantize_preset_at(i) && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? " " : "",
                                  ponder_quantize_preset_at(i)->name);
        return cli_usage_error(cmd, "unknown type '%s' (one of: %s)", type, names);
    }

    char override_buf[1024];
    ponder_quantize_kv kv;
    if (override) {
        if (strlen(override) >= sizeof override_buf)
            return cli_usage_error(cmd, "--override-kv is too long");
        strcpy(override_buf, override);
        int prc = parse_override(cmd, override_buf, &kv);
        if (prc)
            return prc;
    }

    /* IN may be a pulled model's name; a path goes through as it is (the reader names it). */
    char in_path[4096];
    if (access(in, F_OK) != 0 && (!strchr(in, '/') || ponder_hub_is_name(in))) {
        int frc = cli_find_model(cmd, in, in_path, sizeof in_path);
        if (frc)
            return frc;
        in = in_path;
    }

    ponder_error err = { 0 };
    ponder_pool *pool = NULL;
    if (ponder_pool_create(n_threads, &pool, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);

    bool show = !json && isatty(STDERR_FILENO);
    ponder_quantize_params qp = ponder_quantize_params_default();
    qp.target = type;
    qp.pure = pure;
    qp.allow_requantize = requant;
    qp.pool = pool;
    qp.progress = on_tensor;
    qp.progress_user = &show;
    qp.kv = override ? &kv : NULL;
    qp.n_kv = override ? 1 : 0;

    struct sigaction sa = { 0 }, old_sa;
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_sa);

    ponder_quantize_report rep;
    const double t0 = ponder_now_ms();
    ponder_status st = ponder_quantize_file(in, out, &qp, &rep, &err);
    const double secs = (ponder_now_ms() - t0) / 1000.0;
    sigaction(SIGINT, &old_sa, NULL);
    ponder_pool_free(pool);
    if (show)
        fprintf(stderr, "\r\033[K"); /* only on a terminal: erase the progress line */

    if (st != PONDER_OK) {
        if (interrupted)
            return cli_runtime_error("interrupted; %s was not written", out);
        if (st == PONDER_ERR_UNSUPPORTED && !requant && strstr(err.msg, "already quantized"))
            return cli_runtime_error("%s (pass --allow-requantize to convert it anyway)", err.msg);
        return cli_runtime_error("%s", err.msg);
    }
    if (json) {
        int rc = print_json(in, out, &qp, &rep, secs);
        if (rc != CLI_EXIT_OK)
            return rc;
    } else {
        char a[32], b[32];
        printf("%s -> %s: %s (file type %u%s), %lld tensors, %lld converted, %lld fallbacks, %.2f s\n", in, out,
               rep.preset->name, rep.preset->ftype, pure || rep.preset->pure ? ", pure" : "",
               (long long)rep.n_tensors, (long long)rep.n_converted, (long long)rep.n_fallback, secs);
        printf("tensor types: ");
        print_type_counts(&rep);
        printf("\nmodel size = %.2f MiB, quant size = %.2f MiB, %.2f bits per weight\n", (double)rep.bytes_in / MIB,
               (double)rep.bytes_out / MIB, rep.bits_per_weight);
        printf("file size: %s -> %s\n", cli_human_bytes(rep.file_bytes_in, a, sizeof a),
               cli_human_bytes(rep.file_bytes_out, b, sizeof b));
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : cli_runtime_error("writing the output failed");
}
