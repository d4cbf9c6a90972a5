/*
 * cmd_serve.c — `ponder serve`: the OpenAI-compatible HTTP server, until SIGINT or SIGTERM.
 * Both forms run the router (src/route): `--config FILE` over the file's backends, `-m
 * MODEL` over one local backend (the engine of src/server in this process, asked
 * in-process) with no retries, breaker or deadlines and the engine's own ponder object, so
 * one handler and one set of failure rules answer either.
 *
 * The signals are blocked before any thread starts, so every server thread inherits
 * the mask and the main thread alone receives them through sigwait — no handler runs
 * async-signal-unsafe code, and shutdown is an ordinary call.
 *
 * The clients' API key can come from a file or the environment (--api-key-file,
 * $PONDER_API_KEY), so it need not sit in argv where `ps` shows it to every user.
 */
#include "cli/cli.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/route.h"
#include "ponder/server.h"

#define SERVE_DEFAULT_N_CTX 4096 /* per slot, clipped to the model's training context */

static void usage(void)
{
    const ponder_server_params d = ponder_server_params_default();
    const ponder_router_params rd = ponder_router_params_default();
    printf("usage: ponder serve [-m MODEL | --config FILE] [options]\n"
           "\n"
           "Serves the model over an OpenAI-compatible HTTP API:\n"
           "  POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,\n"
           "  GET /v1/models,\n"
           "  GET /health, GET /metrics (Prometheus), GET / (a chat page).\n"
           "Requests in flight are decoded together in one batch (continuous batching).\n"
           "Prints \"listening on http://HOST:PORT\" on stderr when ready; SIGINT or SIGTERM\n"
           "stops it cleanly.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL   GGUF file, or a name in $PONDER_MODELS; the served model id is\n"
           "                      the file name without .gguf (or --alias)\n"
           "      --alias NAME    serve the model under this id instead\n"
           "      --config FILE   serve the models of a YAML file instead (docs/config.md): each\n"
           "                      a chain of local and remote backends with fallback; --parallel,\n"
           "                      --ctx-size, --threads and --chatml are the local backends' defaults\n"
           "      --host HOST     address to bind (default: %s; only this machine)\n"
           "      --port PORT     port (default: %d; 0: any free port)\n"
           "  -np, --parallel N   sequences decoded at once (default: %d); a request with n\n"
           "                      choices takes n of them\n"
           "  -c, --ctx-size N    context per sequence in tokens (default: %d, clipped to the\n"
           "                      model's training context; 0: the training context)\n"
           "  -t, --threads N     threads for the forward pass (default: the number of CPUs)\n"
           "      --queue N       requests that may wait for a sequence (default: %d); beyond\n"
           "                      them the server answers 429 with Retry-After\n"
           "      --max-body BYTES  request bodies larger than this are answered 413, from the\n"
           "                      declared length before the body is read (default: %u)\n"
           "      --max-messages N  chat messages per request (default: %d; more: 400)\n"
           "      --max-connections N  open connections in all (default: 1024)\n"
           "      --max-conn-per-client N  open connections from one address (default: half of\n"
           "                      --max-connections; 0: no cap; raise it behind a proxy that\n"
           "                      many clients share)\n"
           "      --header-timeout S  a request's headers must arrive within S seconds (default: 10)\n"
           "      --body-timeout S  its body within S seconds after them (default: 60)\n"
           "      --idle-timeout S  a kept-alive connection's next request within S seconds,\n"
           "                      and no read silence longer than that (default: 60)\n"
           "      --api-key KEY   require \"Authorization: Bearer KEY\" on /v1 and /metrics (the\n"
           "                      command line is visible to other users: prefer the next two)\n"
           "      --api-key-file FILE  the key is FILE's first line\n"
           "                      (without either, $PONDER_API_KEY if set and not empty)\n"
           "      --no-cache-prompt  evaluate every prompt whole (by default a finished\n"
           "                      request's KV stays, and a prompt starting the same way - the\n"
           "                      next turn of a chat - evaluates only the rest; not with --draft)\n"
           "      --chat-template-file FILE  this Jinja chat template instead of the model's\n"
           "                      own (llama-server's flag; its tool-call format is detected)\n"
           "      --chatml        models without a chat template use ChatML (otherwise chat\n"
           "                      requests to such a model fail with a clear error)\n"
           "      --parse-special-in-content  special-token texts in messages become special\n"
           "                      tokens (a user can forge a turn); by default they are text\n"
           "      --draft FILE    speculative decoding with this draft model (same vocabulary;\n"
           "                      greedy answers are unchanged); in a config: draft: FILE\n"
           "  -ctk, -ctv T        KV cache types: f16 (default), f32, q8_0, q4_0; with --config\n"
           "                      the local backends' default (cache_type_k/v: per backend)\n"
           "  -fa, --flash-attn M attention fused over KV blocks: on, off, auto (default: on\n"
           "                      for a quantized V cache)\n"
           "  -v, --verbose       log each connection's details on stderr\n"
           "  -h, --help          this help\n"
           "\n"
           "Exit status: 0 after a clean shutdown, 1 runtime error (model, address in use),\n"
           "2 usage error.\n",
           rd.host, rd.port, (int)d.n_parallel, SERVE_DEFAULT_N_CTX, (int)d.queue_max, (unsigned)rd.max_body_bytes,
           (int)d.max_messages);
}

typedef struct serve_log {
    bool verbose;
} serve_log;

/* Each error and warning of the config on its own line: a file is read to its end, so
 * one run names every mistake. */
static void config_note(void *user, bool is_error, const char *line)
{
    (void)user;
    fprintf(stderr, "ponder serve: %s%s\n", is_error ? "" : "warning: ", line);
}

/* Runs the router until SIGINT or SIGTERM (cfg taken). banner: the line said before
 * "listening on". */
static int run_router(ponder_route_config *cfg, const ponder_router_params *rp, sigset_t *sigs, const char *banner)
{
    ponder_error err;
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    ponder_router *r = NULL;
    ponder_status st = ponder_router_create(cfg, rp, &r, &err);
    if (st == PONDER_ERR_INVALID_ARG && !rp->local_required) { /* the file names an unset variable or a bad URL */
        fprintf(stderr, "ponder serve: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    if (st != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    if (ponder_router_start(r, &err) != PONDER_OK) {
        ponder_router_free(r);
        return cli_runtime_error("%s", err.msg);
    }
    bool v6 = strchr(rp->host, ':') != NULL;
    fprintf(stderr, "ponder serve: %s\n", banner);
    fprintf(stderr, "listening on http://%s%s%s:%d\n", v6 ? "[" : "", rp->host, v6 ? "]" : "", ponder_router_port(r));
    fflush(stderr);
    int sig = 0;
    sigwait(sigs, &sig);
    fprintf(stderr, "ponder serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ponder_router_free(r);
    return CLI_EXIT_OK;
}

/* ponder serve --config: the router over the file's backends. */
static int serve_config(const char *file, const ponder_router_params *rp, sigset_t *sigs)
{
    ponder_route_config *cfg = NULL;
    ponder_error err;
    ponder_status st = ponder_route_config_load_noted(file, config_note, NULL, &cfg, &err);
    if (st == PONDER_ERR_FORMAT)
        return CLI_EXIT_USAGE; /* a bad file: exit 2, as a bad flag; its errors are printed */
    if (st != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    int32_t n_backends = 0;
    for (int32_t i = 0; i < cfg->n_models; i++)
        n_backends += cfg->models[i].n_backends;
    char banner[4200];
    snprintf(banner, sizeof banner, "%d models, %d routes, %d backends from %s", (int)cfg->n_models,
             (int)cfg->n_routes, (int)n_backends, file);
    return run_router(cfg, rp, sigs, banner);
}

/* The clients' key: --api-key, else --api-key-file's first line (trailing blanks and the
 * line end dropped), else $PONDER_API_KEY; NULL when none. *owned receives what to free.
 * Returns 0 or the exit status (message printed). */
static int resolve_api_key(const char *cmd, const char *flag, const char *file, const char **key, char **owned)
{
    *owned = NULL;
    *key = flag;
    if (flag && file)
        return cli_usage_error(cmd, "give the key with --api-key or --api-key-file, not both");
    if (flag && !flag[0])
        return cli_usage_error(cmd, "--api-key must not be empty");
    if (file) {
        size_t len = 0;
        char *text = cli_read_file(file, &len);
        if (!text)
            return CLI_EXIT_RUNTIME;
        text[strcspn(text, "\r\n")] = '\0';
        len = strlen(text);
        while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
            text[--len] = '\0';
        if (len == 0) {
            free(text);
            return cli_usage_error(cmd, "--api-key-file %s: the first line holds no key", file);
        }
        *key = *owned = text;
    } else if (!flag) {
        const char *env = getenv("PONDER_API_KEY");
        *key = env && env[0] ? env : NULL;
    }
    return 0;
}

static void log_cb(ponder_log_level level, const char *msg, void *user)
{
    const serve_log *l = user;
    if (level == PONDER_LOG_DEBUG && !l->verbose)
        return;
    static const char *const names[] = { "debug", "info", "warning", "error" };
    fprintf(stderr, "ponder serve: %s: %s\n", names[level <= PONDER_LOG_ERROR ? level : PONDER_LOG_ERROR], msg);
}

typedef struct serve_opts {
    const char *model, *config, *draft, *alias, *host, *api_key, *chat_template_file;
    int32_t port, n_parallel, n_ctx, n_threads, queue, max_body, max_messages;
    ponder_listen_limits listen; /* --max-connections ... --idle-timeout */
    bool chatml, verbose, n_ctx_given, no_cache_prompt, parse_special_in_content;
    ponder_context_params kv; /* -ctk/-ctv/-fa: type_k, type_v, flash_attn */
} serve_opts;

/* The router's parameters from the flags: --parallel, -c, -t, --chatml, -ctk/-ctv/-fa are
 * its local backends' (n_ctx 0: the server's default, clipped to the model). */
static ponder_router_params router_params(const serve_opts *o, serve_log *lg, int32_t n_ctx, int32_t n_threads)
{
    ponder_router_params rp = ponder_router_params_default();
    rp.host = o->host ? o->host : rp.host;
    rp.port = o->port;
    rp.api_key = o->api_key;
    rp.max_body_bytes = (size_t)o->max_body;
    rp.max_messages = o->max_messages;
    rp.listen = o->listen;
    rp.version = PONDER_VERSION;
    rp.log = log_cb;
    rp.log_user = lg;
    rp.local.n_parallel = o->n_parallel;
    rp.local.n_ctx = n_ctx;
    rp.local.n_threads = n_threads;
    rp.local.chatml = o->chatml;
    rp.local.type_k = o->kv.type_k;
    rp.local.type_v = o->kv.type_v;
    rp.local.flash_attn = o->kv.flash_attn;
    rp.local.version = PONDER_VERSION;
    rp.local.log = log_cb;
    rp.local.log_user = lg;
    return rp;
}

static int32_t default_threads(int32_t n_threads)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    return n_threads > 0 ? n_threads : ncpu > 0 ? (int32_t)ncpu : 1;
}

static void serve_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
}

static int serve_router(const serve_opts *o)
{
    sigset_t sigs;
    serve_signals(&sigs);
    serve_log lg = { .verbose = o->verbose };
    ponder_router_params rp = router_params(o, &lg, o->n_ctx_given ? o->n_ctx : 0, default_threads(o->n_threads));
    return serve_config(o->config, &rp, &sigs);
}

static int serve_model(const char *cmd, const serve_opts *o)
{
    char path[4096];
    int rc = cli_find_model(cmd, o->model, path, sizeof path);
    if (rc)
        return rc;

    ponder_model *probe = NULL;
    ponder_error err;
    int32_t n_ctx = o->n_ctx, n_threads = o->n_threads;
    /* the context default is clipped to the training context, as `ponder run` does */
    if (!o->n_ctx_given || n_ctx == 0) {
        if (ponder_model_load(path, NULL, &probe, &err) != PONDER_OK)
            return cli_runtime_error("%s", err.msg);
        int32_t train = ponder_model_hparams(probe)->n_ctx_train;
        if (n_ctx == 0 || (train > 0 && n_ctx > train))
            n_ctx = train > 0 ? train : SERVE_DEFAULT_N_CTX;
        ponder_model_free(probe);
    }
    n_threads = default_threads(n_threads);
    char draft_path[4096];
    if (o->draft && (rc = cli_find_model(cmd, o->draft, draft_path, sizeof draft_path)))
        return rc;
    /* the served id: --alias, else the file's name without .gguf */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char id[4096];
    snprintf(id, sizeof id, "%s", o->alias ? o->alias : base);
    size_t n = strlen(id);
    if (!o->alias && n > 5 && strcmp(id + n - 5, ".gguf") == 0)
        id[n - 5] = '\0';

    /* the router over one local backend: the engine in this process, asked in-process */
    serve_log lg = { .verbose = o->verbose };
    ponder_router_params rp = router_params(o, &lg, n_ctx, n_threads);
    rp.local_required = true;
    rp.plain_ponder = true;
    rp.local.queue_max = o->queue;
    rp.local.parse_special_in_content = o->parse_special_in_content;
    rp.local.no_cache_prompt = o->no_cache_prompt;
    rp.local.chat_template_file = o->chat_template_file;
    ponder_route_config *cfg = NULL;
    if (ponder_route_config_for_model(id, path, o->draft ? draft_path : NULL, &cfg, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    char banner[4200];
    snprintf(banner, sizeof banner, "model '%s', %d slots of %d tokens, %d threads", id, (int)o->n_parallel,
             (int)n_ctx, (int)n_threads);
    sigset_t sigs;
    serve_signals(&sigs);
    return run_router(cfg, &rp, &sigs, banner);
}

int cmd_serve(int argc, char **argv)
{
    const char *cmd = "serve";
    const ponder_server_params d = ponder_server_params_default();
    const ponder_router_params rd = ponder_router_params_default();
    serve_opts o = { .port = rd.port, .n_parallel = d.n_parallel, .n_ctx = SERVE_DEFAULT_N_CTX, .queue = d.queue_max,
                     .max_body = (int32_t)rd.max_body_bytes, .max_messages = d.max_messages };
    int32_t per_client = -2; /* not given */
    const char *api_key_file = NULL, *ctk = NULL, *ctv = NULL, *fa = NULL;
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &o.model, 0, 0, NULL },
        { "--config", NULL, CLI_STRING, &o.config, 0, 0, NULL },
        { "--alias", NULL, CLI_STRING, &o.alias, 0, 0, NULL },
        { "--host", NULL, CLI_STRING, &o.host, 0, 0, NULL },
        { "--port", NULL, CLI_INT, &o.port, 0, 65535, NULL },
        { "-np", "--parallel", CLI_INT, &o.n_parallel, 1, 1024, NULL },
        { "-c", "--ctx-size", CLI_INT, &o.n_ctx, 0, INT32_MAX, &o.n_ctx_given },
        { "-t", "--threads", CLI_INT, &o.n_threads, 1, 1024, NULL },
        { "--queue", NULL, CLI_INT, &o.queue, 0, 1000000, NULL },
        { "--max-body", NULL, CLI_INT, &o.max_body, 1, INT32_MAX, NULL },
        { "--max-messages", NULL, CLI_INT, &o.max_messages, 1, 1000000, NULL },
        { "--max-connections", NULL, CLI_INT, &o.listen.max_connections, 1, 65536, NULL },
        { "--max-conn-per-client", NULL, CLI_INT, &per_client, 0, 65536, NULL },
        { "--header-timeout", NULL, CLI_INT, &o.listen.header_timeout_s, 1, 86400, NULL },
        { "--body-timeout", NULL, CLI_INT, &o.listen.body_timeout_s, 1, 86400, NULL },
        { "--idle-timeout", NULL, CLI_INT, &o.listen.idle_timeout_s, 1, 86400, NULL },
        { "--api-key", NULL, CLI_STRING, &o.api_key, 0, 0, NULL },
        { "--api-key-file", NULL, CLI_STRING, &api_key_file, 0, 0, NULL },
        { "--chatml", NULL, CLI_FLAG, &o.chatml, 0, 0, NULL },
        { "--chat-template-file", NULL, CLI_STRING, &o.chat_template_file, 0, 0, NULL },
        { "--parse-special-in-content", NULL, CLI_FLAG, &o.parse_special_in_content, 0, 0, NULL },
        { "--no-cache-prompt", NULL, CLI_FLAG, &o.no_cache_prompt, 0, 0, NULL },
        { "--draft", NULL, CLI_STRING, &o.draft, 0, 0, NULL },
        { "-ctk", "--cache-type-k", CLI_STRING, &ctk, 0, 0, NULL },
        { "-ctv", "--cache-type-v", CLI_STRING, &ctv, 0, 0, NULL },
        { "-fa", "--flash-attn", CLI_STRING, &fa, 0, 0, NULL },
        { "-v", "--verbose", CLI_FLAG, &o.verbose, 0, 0, NULL },
    };
    int n_pos = 0;
    cli_result pr = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, &n_pos);
    if (pr == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (pr == CLI_BAD)
        return CLI_EXIT_USAGE;
    if (o.chat_template_file && o.config)
        return cli_usage_error(cmd, "--chat-template-file applies to -m MODEL, not to --config");
    if (per_client != -2)
        o.listen.max_per_client = per_client == 0 ? -1 : per_client; /* 0 on the command line: no cap */
    if (o.alias && (!o.alias[0] || strlen(o.alias) > 255))
        return cli_usage_error(cmd, "--alias must be 1 to 255 bytes long");
    if (o.config && o.alias)
        return cli_usage_error(cmd, "--alias is for -m; a config file names its models");
    if (o.config && o.model)
        return cli_usage_error(cmd, "-m and --config exclude each other (a config file lists its models)");
    if (o.config && o.draft)
        return cli_usage_error(cmd, "--draft is for -m; with --config give a local backend draft: FILE");
    o.kv = ponder_context_params_default();
    int rc = cli_set_cache_types(cmd, ctk, ctv, &o.kv);
    if (rc == 0)
        rc = cli_set_flash_attn(cmd, fa, &o.kv);
    if (rc != 0)
        return rc;
    char *key_owned = NULL;
    rc = resolve_api_key(cmd, o.api_key, api_key_file, &o.api_key, &key_owned);
    if (rc == 0)
        rc = o.config ? serve_router(&o) : serve_model(cmd, &o);
    free(key_owned);
    return rc;
}
