/*
 * cmd_perplexity.c — `ponder perplexity`: llama-perplexity's method, so the numbers are
 * comparable (shared/reference/perplexity/README.md describes it step by step):
 * the whole text tokenized once (one trailing newline dropped), cut into chunks of n_ctx
 * tokens, each chunk evaluated alone from an empty cache with its first token replaced
 * by BOS when the vocabulary adds one, and only the second half of each chunk scored.
 * Prints the running value after each chunk, then PPL ± its standard error.
 */
#include "cli/cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/tokenizer.h"

#define PPL_DEFAULT_N_CTX 512   /* llama-perplexity's -c default */
#define PPL_DEFAULT_N_BATCH 512 /* tokens per decode call */

static void usage(void)
{
    printf("usage: ponder perplexity [-m MODEL] -f FILE [options]\n"
           "\n"
           "Perplexity of the model on a text, by llama-perplexity's method: the text is\n"
           "tokenized once, cut into chunks of -c tokens, each chunk is evaluated on its own\n"
           "(its first token replaced by BOS when the model adds one) and the second half\n"
           "of every chunk is scored. Prints the running estimate after each chunk and\n"
           "'Final estimate: PPL = X +/- Y' (the standard error of the mean NLL, scaled).\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        GGUF file, or a name in $PONDER_MODELS\n"
           "  -f, --file FILE          the text (bytes as stored; one trailing newline dropped)\n"
           "  -c, --ctx-size N         chunk length in tokens (default: %d)\n"
           "  -b, --batch-size N       tokens per forward call (default: %d; quantized\n"
           "                           models round batched products slightly differently)\n"
           "      --chunks K           evaluate at most K chunks (default: all)\n"
           "  -t, --threads N          threads (default: the number of CPUs)\n"
           "  -ctk, --cache-type-k T   KV cache type for K: f16 (default), f32, q8_0 or q4_0\n"
           "  -ctv, --cache-type-v T   KV cache type for V: f16 (default), f32, q8_0 or q4_0\n"
           "  -fa, --flash-attn M      attention fused over KV blocks: on, off or auto\n"
           "                           (default auto: on for a quantized V cache)\n"
           "      --float-activations  exact-float mode: dequantize weights, f32 activations\n"
           "      --json               print one JSON object with the results\n"
           "  -h, --help               this help\n"
           "\n"
           "A progress line with the running estimate is shown on a terminal.\n"
           "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
           PPL_DEFAULT_N_CTX, PPL_DEFAULT_N_BATCH);
}

/* Negative log-likelihood of token t under logits z: float exps, double sum and log
 * (llama-perplexity's log_softmax). */
static double token_nll(const float *z, int32_t n_vocab, int32_t t)
{
    float zmax = z[0];
    for (int32_t i = 1; i < n_vocab; i++)
        zmax = z[i] > zmax ? z[i] : zmax;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += (double)expf(z[i] - zmax);
    return -((double)(z[t] - zmax) - log(sum));
}

/* What the chunks scored: the sum of the tokens' NLL and of its squares, the running PPL
 * after each chunk. */
typedef struct ppl_sums {
    double nll, nll2;
    size_t count;
    double seconds;
    json_t *running;
} ppl_sums;

/* llama-perplexity's method over n_chunks chunks of n_ctx tokens: each chunk decoded from
 * an empty cache (BOS first when the model adds one), its second half scored. */
static int score_chunks(ponder_context *ctx, const ponder_tokenizer *tok, int32_t n_vocab, const ponder_token *tokens,
                        size_t n_chunks, int32_t n_ctx, int32_t n_batch, bool json, ppl_sums *out)
{
    ponder_error err = { 0 };
    const bool add_bos = ponder_tokenizer_add_bos(tok);
    const ponder_token bos = ponder_tokenizer_bos(tok);
    const int32_t first = n_ctx / 2; /* only the second half of each chunk is scored */
    float *logits = malloc((size_t)n_batch * (size_t)n_vocab * sizeof *logits);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    int rc = CLI_EXIT_RUNTIME;
    if (!logits || !chunk || !(out->running = json_array())) {
        cli_runtime_error("out of memory");
        goto done;
    }
    const bool progress = !json && isatty(STDERR_FILENO);
    const double t0 = ponder_now_ms();
    for (size_t c = 0; c < n_chunks; c++) {
        memcpy(chunk, tokens + c * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (add_bos && bos != PONDER_TOKEN_NULL)
            chunk[0] = bos;
        ponder_context_reset(ctx);
        /* positions before `first` need no logits */
        if (ponder_context_decode(ctx, chunk, first, NULL, &err) != PONDER_OK) {
            cli_runtime_error("chunk %zu: %s", c + 1, err.msg);
            goto done;
        }
        for (int32_t pos = first; pos < n_ctx - 1;) {
            int32_t n = n_ctx - 1 - pos < n_batch ? n_ctx - 1 - pos : n_batch;
            if (ponder_context_decode(ctx, chunk + pos, n, logits, &err) != PONDER_OK) {
                cli_runtime_error("chunk %zu: %s", c + 1, err.msg);
                goto done;
            }
            for (int32_t j = 0; j < n; j++) {
                /* logits at position pos+j predict the token at pos+j+1 */
                double v = token_nll(logits + (size_t)j * (size_t)n_vocab, n_vocab, chunk[pos + j + 1]);
                out->nll += v;
                out->nll2 += v * v;
                out->count++;
            }
            pos += n;
        }
        const double ppl = exp(out->nll / (double)out->count);
        json_array_append_new(out->running, json_real(ppl));
        if (!json) {
            if (progress) {
                const double elapsed = (ponder_now_ms() - t0) / 1000.0;
                const double eta = elapsed / (double)(c + 1) * (double)(n_chunks - c - 1);
                fprintf(stderr, "\rperplexity: chunk %zu/%zu, PPL %.4f, %.0f s left   ", c + 1, n_chunks, ppl, eta);
            }
            printf("[%zu]%.4f,", c + 1, ppl);
            fflush(stdout);
        }
    }
    out->seconds = (ponder_now_ms() - t0) / 1000.0;
    if (progress)
        fprintf(stderr, "\r%60s\r", "");
    rc = 0;
done:
    free(chunk);
    free(logits);
    return rc;
}

int cmd_perplexity(int argc, char **argv)
{
    const char *cmd = "perplexity";
    const char *model = NULL, *file = NULL, *ctk = NULL, *ctv = NULL, *fa = NULL;
    int32_t n_ctx = PPL_DEFAULT_N_CTX, n_batch = PPL_DEFAULT_N_BATCH, max_chunks = -1, n_threads = 0;
    bool json = false, float_act = false;
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &model, 0, 0, NULL },
        { "-f", "--file", CLI_STRING, &file, 0, 0, NULL },
        { "-c", "--ctx-size", CLI_INT, &n_ctx, 4, INT32_MAX, NULL },
        { "-b", "--batch-size", CLI_INT, &n_batch, 1, INT32_MAX, NULL },
        { "--chunks", NULL, CLI_INT, &max_chunks, -1, INT32_MAX, NULL },
        { "-t", "--threads", CLI_INT, &n_threads, 1, 1024, NULL },
        { "-ctk", "--cache-type-k", CLI_STRING, &ctk, 0, 0, NULL },
        { "-ctv", "--cache-type-v", CLI_STRING, &ctv, 0, 0, NULL },
        { "-fa", "--flash-attn", CLI_STRING, &fa, 0, 0, NULL },
        { "--float-activations", NULL, CLI_FLAG, &float_act, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &json, 0, 0, NULL },
    };
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (!file)
        return cli_usage_error(cmd, "a text file is required (-f FILE)");
    if (max_chunks == 0)
        return cli_usage_error(cmd, "--chunks must be at least 1 (or -1: all)");
    ponder_context_params cp = ponder_context_params_default();
    int bad_cache = cli_set_cache_types(cmd, ctk, ctv, &cp);
    if (bad_cache == 0)
        bad_cache = cli_set_flash_attn(cmd, fa, &cp);
    if (bad_cache != 0)
        return bad_cache;
    cp.float_activations = float_act;
    cp.n_ctx = n_ctx;

    char model_path[PATH_MAX];
    int rc = cli_find_model(cmd, model, model_path, sizeof model_path);
    if (rc != 0)
        return rc;
    size_t text_len;
    char *text = cli_read_file(file, &text_len);
    if (!text)
        return CLI_EXIT_RUNTIME;
    if (text_len > 0 && text[text_len - 1] == '\n')
        text[--text_len] = '\0';

    ponder_error err = { 0 };
    ponder_model *m = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_context *ctx = NULL;
    ponder_pool *pool = NULL;
    ponder_token *tokens = NULL;
    json_t *running = NULL;
    size_t n_tokens = 0;
    rc = CLI_EXIT_RUNTIME;

    if (ponder_model_load(model_path, NULL, &m, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab;
    if (ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", model_path, err.msg);
        goto done;
    }
    if (ponder_tokenizer_encode(tok, text, text_len, true, false, &tokens, &n_tokens, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", file, err.msg);
        goto done;
    }
    if (n_tokens < 2 * (size_t)n_ctx) {
        cli_runtime_error("%s: %zu tokens; at least %lld (2 x -c) are needed for a context of %d", file, n_tokens,
                          2 * (long long)n_ctx, n_ctx);
        goto done;
    }
    size_t n_chunks = n_tokens / (size_t)n_ctx;
    if (max_chunks >= 0 && (size_t)max_chunks < n_chunks)
        n_chunks = (size_t)max_chunks;
    if (ponder_pool_create(n_threads, &pool, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    cp.pool = pool;
    if (ponder_context_create(m, &cp, &ctx, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (n_batch > n_ctx)
        n_batch = n_ctx;
    ppl_sums sums = { 0 };
    const int scored = score_chunks(ctx, tok, n_vocab, tokens, n_chunks, n_ctx, n_batch, json, &sums);
    running = sums.running;
    if (scored != 0)
        goto done;
    const double secs = sums.seconds, nll = sums.nll, nll2 = sums.nll2;
    const size_t count = sums.count;
    const double m1 = nll / (double)count, m2 = nll2 / (double)count;
    const double ppl = exp(m1);
    const double ppl_err = count > 1 ? ppl * sqrt((m2 - m1 * m1) / (double)(count - 1)) : 0.0;
    if (json) {
        json_t *out = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:o, s:f, s:f, s:f, s:f}", "model", model_path, "file",
                                file, "n_ctx", (int)n_ctx, "n_chunks", (json_int_t)n_chunks, "n_tokens",
                                (json_int_t)n_tokens, "n_scored", (json_int_t)count, "running_ppl", running, "ppl",
                                ppl, "ppl_stderr", ppl_err, "ln_ppl", m1, "seconds", secs);
        running = NULL; /* owned by out now */
        char *s = out ? json_dumps(out, JSON_PRESERVE_ORDER) : NULL;
        json_decref(out);
        if (!s) {
            cli_runtime_error("out of memory");
            goto done;
        }
        puts(s);
        free(s);
    } else {
        printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, ppl_err);
        fprintf(stderr, "perplexity: %zu chunks of %d tokens, %zu tokens scored in %.2f s (%.1f tokens/s)\n",
                n_chunks, n_ctx, count, secs, secs > 0 ? (double)n_chunks * n_ctx / secs : 0.0);
    }
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : cli_runtime_error("writing the output failed");

done:
    json_decref(running);
    free(tokens);
    ponder_context_free(ctx);
    ponder_pool_free(pool);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
    free(text);
    return rc;
}
