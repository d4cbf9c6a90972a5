/*
 * cmd_info.c — `ponder info`: what a GGUF file holds and what running it costs.
 *
 * Two levels: the GGUF level (file size, metadata, tensor types and counts), read with
 * ponder_gguf alone so it works for any well-formed file, and the model level
 * (hyper-parameters, parameter count, FLOPs per token), which needs ponder_model_load to
 * succeed. When the model cannot be loaded (unsupported architecture or tensor type),
 * the GGUF level is still printed, followed by the reason, and the exit status is 1 so
 * scripts can tell "describable" from "runnable".
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gguf.h"
#include "ponder/model.h"
#include "ponder/tensor.h"

static void usage(void)
{
    printf("usage: ponder info [-m] MODEL [--json]\n"
           "\n"
           "Describes a GGUF model: file size, architecture, hyper-parameters, tensor types\n"
           "and counts, parameters (total, and active per token: for mixture-of-experts only\n"
           "the experts a token is routed to), forward FLOPs per token (on the active\n"
           "parameters) and whether a chat template is present.\n"
           "\n"
           "If the file is valid GGUF but Ponder cannot run it (unsupported architecture or\n"
           "tensor type), what the file holds is still printed, then the reason; the exit\n"
           "status is then 1 (with --json: \"runnable\": false and \"error\").\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL  GGUF file, or a name in $PONDER_MODELS (default: the\n"
           "                     stories260K model from ../shared, if found)\n"
           "      --json         print one JSON object\n"
           "  -h, --help         this help\n");
}

typedef struct type_stats {
    uint64_t n_tensors, n_elems, n_bytes;
} type_stats;

typedef struct gguf_facts {
    ponder_gguf_str arch, name, tok_model, tok_pre;
    uint64_t n_tokens;
    bool has_template;
    uint64_t template_bytes;
    uint64_t n_elems;
    type_stats types[PONDER_TYPE_COUNT + 1]; /* last slot: ids we do not know */
} gguf_facts;

static ponder_gguf_str get_str(const ponder_gguf *g, const char *key)
{
    ponder_gguf_str s = { "", 0 };
    if (ponder_gguf_get_str(g, key, &s, NULL) != PONDER_OK)
        s = (ponder_gguf_str){ "", 0 };
    return s;
}

static void collect(const ponder_gguf *g, gguf_facts *f)
{
    memset(f, 0, sizeof *f);
    f->arch = get_str(g, "general.architecture");
    f->name = get_str(g, "general.name");
    f->tok_model = get_str(g, "tokenizer.ggml.model");
    f->tok_pre = get_str(g, "tokenizer.ggml.pre");
    const ponder_gguf_array *toks = NULL;
    if (ponder_gguf_get_arr(g, "tokenizer.ggml.tokens", PONDER_GGUF_TYPE_COUNT, &toks, NULL) == PONDER_OK)
        f->n_tokens = toks->n;
    ponder_gguf_str tmpl;
    if (ponder_gguf_get_str(g, "tokenizer.chat_template", &tmpl, NULL) == PONDER_OK) {
        f->has_template = true;
        f->template_bytes = tmpl.len;
    }
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims && d < PONDER_GGUF_MAX_DIMS; d++)
            ne *= (uint64_t)t->ne[d]; /* the reader checked the product fits */
        int tt = (int)t->type;
        int ti = (tt >= 0 && tt < PONDER_TYPE_COUNT) ? tt : PONDER_TYPE_COUNT;
        f->types[ti].n_tensors++;
        f->types[ti].n_elems += ne;
        f->types[ti].n_bytes += t->n_bytes;
        f->n_elems += ne;
    }
}

static const char *type_label(int ti)
{
    return ti < PONDER_TYPE_COUNT ? ponder_type_name(ti) : "unknown";
}

/* Adds a length-delimited GGUF string (or null when empty) to obj. */
static void set_str(json_t *obj, const char *key, ponder_gguf_str s, bool null_if_empty)
{
    json_object_set_new(obj, key, (null_if_empty && s.len == 0) ? json_null() : cli_json_string(s.data, (size_t)s.len));
}

/* The shortest decimal that reads back as f ("1e-05", not 9.9999997473787516e-06); the
 * dump uses 15 significant digits, which prints that double as written. */
static json_t *json_float(float f)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f)
            break;
    }
    return json_real(strtod(buf, NULL));
}

static int print_json(const char *path, const ponder_gguf *g, const gguf_facts *f, const ponder_model *m,
                      const char *load_error)
{
    json_t *o = json_object();
    json_t *types = json_object();
    if (!o || !types) {
        json_decref(o);
        json_decref(types);
        return cli_runtime_error("out of memory");
    }
    json_object_set_new(o, "file", cli_json_string(path, strlen(path)));
    json_object_set_new(o, "file_size", json_integer((json_int_t)ponder_gguf_file_size(g)));
    json_object_set_new(o, "gguf_version", json_integer(ponder_gguf_version(g)));
    json_object_set_new(o, "n_kv", json_integer(ponder_gguf_n_kv(g)));
    json_object_set_new(o, "n_tensors", json_integer(ponder_gguf_n_tensors(g)));
    json_object_set_new(o, "alignment", json_integer(ponder_gguf_alignment(g)));
    json_object_set_new(o, "data_offset", json_integer((json_int_t)ponder_gguf_data_offset(g)));
    set_str(o, "architecture", f->arch, true);
    set_str(o, "name", f->name, true);
    set_str(o, "tokenizer_model", f->tok_model, true);
    set_str(o, "tokenizer_pre", f->tok_pre, true);
    json_object_set_new(o, "tokenizer_n_tokens", json_integer((json_int_t)f->n_tokens));
    json_object_set_new(o, "chat_template", json_boolean(f->has_template));
    json_object_set_new(o, "chat_template_bytes", json_integer((json_int_t)f->template_bytes));
    json_object_set_new(o, "n_elements", json_integer((json_int_t)f->n_elems));
    for (int ti = 0; ti <= PONDER_TYPE_COUNT; ti++) {
        if (!f->types[ti].n_tensors)
            continue;
        json_t *t = json_pack("{s:I, s:I, s:I}", "n_tensors", (json_int_t)f->types[ti].n_tensors, "n_elements",
                              (json_int_t)f->types[ti].n_elems, "n_bytes", (json_int_t)f->types[ti].n_bytes);
        json_object_set_new(types, type_label(ti), t);
    }
    json_object_set_new(o, "tensor_types", types);
    json_object_set_new(o, "runnable", json_boolean(m != NULL));
    if (m) {
        const ponder_hparams *h = ponder_model_hparams(m);
        int32_t n_ctx = h->n_ctx_train > 0 && h->n_ctx_train < 4096 ? h->n_ctx_train : 4096;
        json_object_set_new(o, "arch", json_string(ponder_arch_name(h->arch)));
        json_object_set_new(o, "n_vocab", json_integer(h->n_vocab));
        json_object_set_new(o, "n_ctx_train", json_integer(h->n_ctx_train));
        json_object_set_new(o, "n_embd", json_integer(h->n_embd));
        json_object_set_new(o, "n_layer", json_integer(h->n_layer));
        json_object_set_new(o, "n_ff", json_integer(h->n_ff));
        json_object_set_new(o, "n_head", json_integer(h->n_head));
        json_object_set_new(o, "n_head_kv", json_integer(h->n_head_kv));
        json_object_set_new(o, "head_dim_k", json_integer(h->head_dim_k));
        json_object_set_new(o, "head_dim_v", json_integer(h->head_dim_v));
        json_object_set_new(o, "n_rot", json_integer(h->n_rot));
        json_object_set_new(o, "n_expert", json_integer(h->n_expert));
        json_object_set_new(o, "n_expert_used", json_integer(h->n_expert_used));
        json_object_set_new(o, "rope_freq_base", json_float(h->rope_freq_base));
        json_object_set_new(o, "rope_freq_scale", json_float(h->rope_freq_scale));
        json_object_set_new(o, "rope_kind", json_string(h->rope_kind == PONDER_ROPE_NEOX ? "neox" : "norm"));
        json_object_set_new(o, "rope_longrope", json_boolean(h->rope_long_short));
        json_object_set_new(o, "rope_attn_factor", json_float(h->rope_attn_factor));
        json_object_set_new(o, "rope_n_ctx_orig", json_integer(h->rope_n_ctx_orig));
        json_object_set_new(o, "norm_rms_eps", json_float(h->norm_rms_eps));
        json_object_set_new(o, "attn_logit_softcap", json_float(h->attn_logit_softcap));
        json_object_set_new(o, "final_logit_softcap", json_float(h->final_logit_softcap));
        json_object_set_new(o, "sliding_window", json_integer(h->sliding_window));
        json_object_set_new(o, "tied_output", json_boolean(h->tied_output));
        json_object_set_new(o, "n_params", json_integer((json_int_t)ponder_model_n_params(m)));
        json_object_set_new(o, "n_params_active", json_integer((json_int_t)ponder_model_n_params_active(m)));
        json_object_set_new(o, "flops_per_token", json_integer((json_int_t)ponder_model_flops_per_token(m, 0)));
        json_object_set_new(o, "flops_per_token_ctx", json_integer(n_ctx));
        json_object_set_new(o, "flops_per_token_at_ctx",
                            json_integer((json_int_t)ponder_model_flops_per_token(m, n_ctx - 1)));
    } else {
        json_object_set_new(o, "n_params", json_integer((json_int_t)f->n_elems));
        json_object_set_new(o, "error", json_string(load_error));
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(o);
    if (!s)
        return cli_runtime_error("out of memory");
    puts(s);
    free(s);
    return CLI_EXIT_OK;
}

static void print_gstr(const char *label, ponder_gguf_str s)
{
    if (s.len == 0) {
        printf("%-16s(none)\n", label);
        return;
    }
    printf("%-16s", label);
    /* Metadata is untrusted: show it escaped only if it holds control bytes. */
    bool plain = true;
    for (uint64_t i = 0; i < s.len; i++)
        if ((unsigned char)s.data[i] < 0x20 || s.data[i] == 0x7F)
            plain = false;
    if (plain && s.len < 4096)
        printf("%.*s\n", (int)s.len, s.data);
    else {
        cli_fput_quoted(stdout, s.data, (size_t)(s.len < 4096 ? s.len : 4096));
        putchar('\n');
    }
}

static void print_text(const char *path, const ponder_gguf *g, const gguf_facts *f, const ponder_model *m)
{
    char hb[32];
    printf("%-16s%s\n", "file", path);
    printf("%-16s%" PRIu64 " bytes (%s)\n", "size", ponder_gguf_file_size(g),
           cli_human_bytes(ponder_gguf_file_size(g), hb, sizeof hb));
    printf("%-16sversion %u, %" PRId64 " keys, %" PRId64 " tensors, alignment %u, data at byte %" PRIu64 "\n",
           "gguf", ponder_gguf_version(g), ponder_gguf_n_kv(g), ponder_gguf_n_tensors(g), ponder_gguf_alignment(g),
           ponder_gguf_data_offset(g));
    print_gstr("name", f->name);
    print_gstr("architecture", f->arch);
    if (f->tok_model.len) {
        printf("%-16s%.*s, %" PRIu64 " tokens", "tokenizer", (int)f->tok_model.len, f->tok_model.data, f->n_tokens);
        if (f->tok_pre.len)
            printf(", pre-tokenizer %.*s", (int)f->tok_pre.len, f->tok_pre.data);
        putchar('\n');
    } else {
        printf("%-16s(none)\n", "tokenizer");
    }
    if (f->has_template)
        printf("%-16syes (%" PRIu64 " bytes)\n", "chat template", f->template_bytes);
    else
        printf("%-16sno\n", "chat template");
    printf("tensor types\n");
    for (int ti = 0; ti <= PONDER_TYPE_COUNT; ti++) {
        const type_stats *t = &f->types[ti];
        if (!t->n_tensors)
            continue;
        printf("  %-8s %6" PRIu64 " tensors %14" PRIu64 " elements %14" PRIu64 " bytes (%s)\n", type_label(ti),
               t->n_tensors, t->n_elems, t->n_bytes, cli_human_bytes(t->n_bytes, hb, sizeof hb));
    }
    if (!m) {
        printf("%-16s%" PRIu64 " (elements of all tensors)\n", "parameters", f->n_elems);
        return;
    }
    const ponder_hparams *h = ponder_model_hparams(m);
    uint64_t n_params = ponder_model_n_params(m);
    int32_t n_ctx = h->n_ctx_train > 0 && h->n_ctx_train < 4096 ? h->n_ctx_train : 4096;
    const uint64_t n_active = ponder_model_n_params_active(m);
    printf("%-16s%" PRIu64 " (%.2f M)\n", "parameters", n_params, (double)n_params / 1e6);
    if (h->n_expert > 0)
        printf("%-16s%" PRIu64 " (%.2f M) per token: %d of %d experts\n", "active", n_active, (double)n_active / 1e6,
               (int)h->n_expert_used, (int)h->n_expert);
    else
        printf("%-16s%" PRIu64 " (%.2f M) per token: all (dense)\n", "active", n_active, (double)n_active / 1e6);
    printf("%-16s%" PRIu64 " at position 0, %" PRIu64 " at position %d\n", "FLOPs/token",
           ponder_model_flops_per_token(m, 0), ponder_model_flops_per_token(m, n_ctx - 1), (int)(n_ctx - 1));
    printf("hyper-parameters (%s)\n", ponder_arch_name(h->arch));
    printf("  %-20s %d\n", "n_vocab", (int)h->n_vocab);
    printf("  %-20s %d\n", "n_ctx_train", (int)h->n_ctx_train);
    printf("  %-20s %d\n", "n_embd", (int)h->n_embd);
    printf("  %-20s %d\n", "n_layer", (int)h->n_layer);
    printf("  %-20s %d\n", "n_ff", (int)h->n_ff);
    printf("  %-20s %d\n", "n_head", (int)h->n_head);
    printf("  %-20s %d\n", "n_head_kv", (int)h->n_head_kv);
    printf("  %-20s %d / %d\n", "head_dim k / v", (int)h->head_dim_k, (int)h->head_dim_v);
    printf("  %-20s %d\n", "n_rot", (int)h->n_rot);
    if (h->n_expert)
        printf("  %-20s %d (%d used per token)\n", "n_expert", (int)h->n_expert, (int)h->n_expert_used);
    printf("  %-20s %g\n", "rope_freq_base", (double)h->rope_freq_base);
    printf("  %-20s %g\n", "rope_freq_scale", (double)h->rope_freq_scale);
    printf("  %-20s %s\n", "rope kind", h->rope_kind == PONDER_ROPE_NEOX ? "neox (halves)" : "norm (pairs)");
    if (h->rope_long_short)
        printf("  %-20s long/short factors, switch past %d tokens, attn_factor %g\n", "rope scaling",
               (int)h->rope_n_ctx_orig, (double)h->rope_attn_factor);
    printf("  %-20s %g\n", "norm_rms_eps", (double)h->norm_rms_eps);
    if (h->attn_logit_softcap > 0)
        printf("  %-20s %g\n", "attn_logit_softcap", (double)h->attn_logit_softcap);
    if (h->final_logit_softcap > 0)
        printf("  %-20s %g\n", "final_logit_softcap", (double)h->final_logit_softcap);
    if (h->sliding_window > 0)
        printf("  %-20s %d\n", "sliding_window", (int)h->sliding_window);
    printf("  %-20s %s\n", "tied output", h->tied_output ? "yes" : "no");
}

int cmd_info(int argc, char **argv)
{
    const char *cmd = "info";
    const char *model_arg = NULL;
    bool json = false;
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &model_arg, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &json, 0, 0, NULL },
    };
    const char *pos[1] = { NULL };
    int n_pos = 0;
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &n_pos);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (n_pos > 0) {
        if (model_arg)
            return cli_usage_error(cmd, "model given twice ('%s' and -m %s)", pos[0], model_arg);
        model_arg = pos[0];
    }
    char path[PATH_MAX];
    int rc = cli_find_model(cmd, model_arg, path, sizeof path);
    if (rc != 0)
        return rc;

    ponder_error err = { 0 };
    ponder_gguf *g = NULL;
    if (ponder_gguf_open(path, &g, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    gguf_facts *facts = malloc(sizeof *facts);
    if (!facts) {
        ponder_gguf_free(g);
        return cli_runtime_error("out of memory");
    }
    collect(g, facts);

    ponder_model *m = NULL;
    ponder_error load_err = { 0 };
    ponder_model_params mp = ponder_model_params_default();
    bool loaded = ponder_model_load(path, &mp, &m, &load_err) == PONDER_OK;

    if (json) {
        rc = print_json(path, g, facts, loaded ? m : NULL, load_err.msg);
    } else {
        print_text(path, g, facts, loaded ? m : NULL);
        rc = CLI_EXIT_OK;
        if (!loaded)
            printf("%-16sno: %s\n", "runnable", load_err.msg);
    }
    if (rc == CLI_EXIT_OK && fflush(stdout) != 0)
        rc = cli_runtime_error("writing the output failed");
    if (rc == CLI_EXIT_OK && !loaded)
        rc = cli_runtime_error("cannot run this model: %s", load_err.msg);
    ponder_model_free(m);
    free(facts);
    ponder_gguf_free(g);
    return rc;
}
