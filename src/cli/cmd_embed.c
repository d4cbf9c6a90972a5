/*
 * cmd_embed.c — `ponder embed`: sentence embeddings, as llama.cpp's llama-embedding makes
 * them (one input per line of the text, tokenized as a prompt with special texts parsed;
 * the final-norm states pooled; L2-normalised). All inputs go through ponder_embed in
 * batches. Numbers are printed with the fewest digits that read back as the same float
 * (ponder_fmt_float).
 */
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/embed.h"
#include "ponder/json.h"
#include "ponder/pool.h"
#include "ponder/tokenizer.h"

static void usage(void)
{
    printf("usage: ponder embed [-m] MODEL (-p TEXT | -f FILE | TEXT) [options]\n"
           "\n"
           "Prints one embedding per line of the text: the model's hidden states after the\n"
           "final norm, pooled over the line's tokens, L2-normalised (llama-embedding's\n"
           "vectors). Each line is tokenized as a prompt (BOS as the model asks, special-token\n"
           "texts such as <s> recognised); empty lines are skipped. Without --json, one line\n"
           "of space-separated numbers per input.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL       GGUF file, or a name in $PONDER_MODELS\n"
           "  -p, --prompt TEXT       the text (one input per line)\n"
           "  -f, --file FILE         read the text from FILE (one input per line)\n"
           "      --pooling KIND      mean (all tokens), last (the last token) or cls (the\n"
           "                          first); default: the model's pooling_type, else mean\n"
           "      --normalize         L2-normalise the vectors (the default)\n"
           "      --no-normalize      print the pooled states as they are\n"
           "      --json              one JSON object, OpenAI's embeddings response shape:\n"
           "                          {\"object\": \"list\", \"data\": [{\"object\": \"embedding\",\n"
           "                          \"index\", \"embedding\": [...]}, ...], \"model\", \"usage\"},\n"
           "                          plus pooling, normalized, n_embd and each input's n_tokens\n"
           "  -t, --threads N         threads (default: all CPUs)\n"
           "  -h, --help              this help\n");
}

/* The lines of text[0..len) that are not empty, as (start, length) pairs. */
typedef struct line_span {
    const char *s;
    size_t n;
} line_span;

static line_span *split_lines(const char *text, size_t len, int32_t *n_out)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    line_span *lines = malloc(cap * sizeof *lines);
    int32_t n = 0;
    for (size_t start = 0; lines && start <= len;) {
        const char *nl = memchr(text + start, '\n', len - start);
        const size_t end = nl ? (size_t)(nl - text) : len;
        if (end > start)
            lines[n++] = (line_span){ text + start, end - start };
        start = end + 1;
    }
    *n_out = n;
    return lines;
}

static int print_vectors(const char *model_path, const ponder_embed_input *in, int32_t n, int32_t n_embd,
                         const float *v, ponder_pooling pooling, bool normalize, bool json)
{
    char buf[PONDER_NUM_TEXT_BYTES];
    if (!json) {
        for (int32_t i = 0; i < n; i++) {
            for (int32_t d = 0; d < n_embd; d++)
                printf(d ? " %s" : "%s", (ponder_fmt_float(v[(size_t)i * n_embd + d], buf), buf));
            putchar('\n');
        }
        return 0;
    }
    json_t *name = json_string(model_path);
    char *name_s = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    json_decref(name);
    if (!name_s)
        return cli_runtime_error("out of memory");
    long long total = 0;
    printf("{\"object\": \"list\", \"model\": %s, \"pooling\": \"%s\", \"normalized\": %s, \"n_embd\": %d, \"data\": [",
           name_s, ponder_pooling_name(pooling), normalize ? "true" : "false", (int)n_embd);
    free(name_s);
    for (int32_t i = 0; i < n; i++) {
        printf("%s{\"object\": \"embedding\", \"index\": %d, \"n_tokens\": %d, \"embedding\": [", i ? ", " : "", (int)i,
               (int)in[i].n_tokens);
        for (int32_t d = 0; d < n_embd; d++)
            printf(d ? ", %s" : "%s", (ponder_fmt_float(v[(size_t)i * n_embd + d], buf), buf));
        printf("]}");
        total += in[i].n_tokens;
    }
    printf("], \"usage\": {\"prompt_tokens\": %lld, \"total_tokens\": %lld}}\n", total, total);
    return 0;
}

/* Tokenizes every line; *max_tokens receives the longest. */
static int tokenize_lines(const ponder_tokenizer *tok, const line_span *lines, int32_t n, ponder_embed_input *in,
                          int32_t *max_tokens)
{
    ponder_error err = { 0 };
    *max_tokens = 0;
    for (int32_t i = 0; i < n; i++) {
        ponder_token *ids = NULL;
        size_t n_ids = 0;
        if (ponder_tokenizer_encode(tok, lines[i].s, lines[i].n, true, true, &ids, &n_ids, &err) != PONDER_OK)
            return cli_runtime_error("input %d: %s", (int)i + 1, err.msg);
        in[i] = (ponder_embed_input){ ids, (int32_t)n_ids };
        if (n_ids == 0)
            return cli_runtime_error("input %d has no tokens", (int)i + 1);
        if ((int32_t)n_ids > *max_tokens)
            *max_tokens = (int32_t)n_ids;
    }
    return 0;
}

typedef struct embed_opts {
    const char *model_arg, *prompt, *file, *pooling;
    bool normalize, no_normalize, json;
    int32_t n_threads;
} embed_opts;

static int embed_run(const char *model_path, const embed_opts *o, const char *text, size_t text_len)
{
    ponder_error err = { 0 };
    ponder_model *m = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_pool *pool = NULL;
    ponder_context *ctx = NULL;
    ponder_embed_input *in = NULL;
    float *vec = NULL;
    int32_t n = 0, max_tokens = 0;
    int rc = CLI_EXIT_RUNTIME;
    line_span *lines = split_lines(text, text_len, &n);
    if (!lines) {
        cli_runtime_error("out of memory");
        goto done;
    }
    if (n == 0) {
        rc = cli_usage_error("embed", "no text to embed (every line is empty)");
        goto done;
    }
    if (ponder_model_load(model_path, NULL, &m, &err) != PONDER_OK ||
        ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", model_path, err.msg);
        goto done;
    }
    ponder_pooling pooling = ponder_model_pooling(m);
    if (o->pooling)
        ponder_pooling_parse(o->pooling, &pooling); /* checked by the caller */
    in = calloc((size_t)n, sizeof *in);
    if (!in) {
        cli_runtime_error("out of memory");
        goto done;
    }
    if (tokenize_lines(tok, lines, n, in, &max_tokens) != 0)
        goto done;
    const int32_t n_embd = ponder_model_hparams(m)->n_embd;
    if (max_tokens > ponder_model_hparams(m)->n_ctx_train)
        fprintf(stderr, "ponder: note: an input has %d tokens, more than the %d the model was trained on\n",
                (int)max_tokens, (int)ponder_model_hparams(m)->n_ctx_train);
    if (ponder_pool_create(o->n_threads, &pool, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    ponder_context_params cp = ponder_embed_context_params(in, n, 0);
    cp.pool = pool;
    vec = malloc((size_t)n * (size_t)n_embd * sizeof *vec);
    if (!vec) {
        cli_runtime_error("out of memory");
        goto done;
    }
    if (ponder_context_create(m, &cp, &ctx, &err) != PONDER_OK ||
        ponder_embed(ctx, in, n, pooling, !o->no_normalize, vec, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    print_vectors(model_path, in, n, n_embd, vec, pooling, !o->no_normalize, o->json);
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : cli_runtime_error("writing the output failed");
done:
    for (int32_t i = 0; in && i < n; i++)
        free((void *)in[i].tokens);
    free(in);
    free(vec);
    free(lines);
    ponder_context_free(ctx);
    ponder_pool_free(pool);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
    return rc;
}

int cmd_embed(int argc, char **argv)
{
    const char *cmd = "embed";
    embed_opts o = { 0 };
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &o.model_arg, 0, 0, NULL },
        { "-p", "--prompt", CLI_STRING, &o.prompt, 0, 0, NULL },
        { "-f", "--file", CLI_STRING, &o.file, 0, 0, NULL },
        { "--pooling", NULL, CLI_STRING, &o.pooling, 0, 0, NULL },
        { "--normalize", NULL, CLI_FLAG, &o.normalize, 0, 0, NULL },
        { "--no-normalize", NULL, CLI_FLAG, &o.no_normalize, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &o.json, 0, 0, NULL },
        { "-t", "--threads", CLI_INT, &o.n_threads, 1, 1024, NULL },
    };
    const char *pos[2] = { NULL, NULL };
    int n_pos = 0;
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 2, &n_pos);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    int next = 0;
    if (!o.model_arg && next < n_pos)
        o.model_arg = pos[next++];
    if (!o.prompt && !o.file && next < n_pos)
        o.prompt = pos[next++];
    if (next < n_pos)
        return cli_usage_error(cmd, "unexpected argument '%s'", pos[next]);
    if (o.prompt && o.file)
        return cli_usage_error(cmd, "give the text with -p or -f, not both");
    if (!o.prompt && !o.file)
        return cli_usage_error(cmd, "no text to embed (pass -p TEXT or -f FILE)");
    if (o.normalize && o.no_normalize)
        return cli_usage_error(cmd, "--normalize and --no-normalize contradict each other");
    ponder_pooling p;
    if (o.pooling && !ponder_pooling_parse(o.pooling, &p))
        return cli_usage_error(cmd, "--pooling must be mean, last or cls, not '%s'", o.pooling);

    char model_path[PATH_MAX];
    int rc = cli_find_model(cmd, o.model_arg, model_path, sizeof model_path);
    if (rc != 0)
        return rc;
    if (!o.file)
        return embed_run(model_path, &o, o.prompt, strlen(o.prompt));
    size_t len = 0;
    char *text = cli_read_file(o.file, &len);
    if (!text)
        return CLI_EXIT_RUNTIME;
    rc = embed_run(model_path, &o, text, len);
    free(text);
    return rc;
}
