/*
 * cmd_pull.c — `ponder pull NAME`: fetch a model into $PONDER_MODELS (src/hub does the
 * work), with a progress bar (percent, bytes, speed, ETA) on a terminal and silence when
 * stderr is not one, so scripts and logs get only the result line.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/hub.h"

#define BAR_WIDTH 24
#define BAR_INTERVAL_MS 100.0

static void usage(void)
{
    printf("usage: ponder pull NAME [--sha256 HEX] [--retries N] [--force] [-q] [--json]\n"
           "       ponder pull --catalogue\n"
           "\n"
           "Downloads a GGUF model into $PONDER_MODELS (default ~/.local/share/ponder/models),\n"
           "after which NAME works wherever a model is taken (-m NAME).\n"
           "\n"
           "NAME is one of:\n"
           "  hf.co/OWNER/REPO[:QUANT]     a Hugging Face repository; QUANT (Q4_K_M, Q8_0, ...)\n"
           "                               picks the file, default Q4_K_M or the closest there is\n"
           "  hf.co/OWNER/REPO/PATH.gguf   one file of a repository\n"
           "  https://HOST/.../FILE.gguf   any URL\n"
           "  FAMILY[:TAG]                 a name of the built-in catalogue (--catalogue),\n"
           "                               e.g. smollm2:135m; FAMILY:TAG-QUANT picks another quant\n"
           "\n"
           "Downloads resume: an interrupted one keeps FILE.gguf.partial and the next pull asks\n"
           "only for the missing bytes (HTTP Range). The file is checked against the sha256 the\n"
           "hub publishes (or --sha256) and renamed into place only when it matches.\n"
           "\n"
           "environment:\n"
           "  HF_ENDPOINT   the hub's address (a mirror), default https://huggingface.co\n"
           "  HF_TOKEN      access token for gated and private repositories (sent to HF_ENDPOINT)\n"
           "  PONDER_MODELS where models are kept\n"
           "\n"
           "options:\n"
           "      --sha256 HEX   expected sha256 of the file (for URLs that publish none)\n"
           "      --retries N    further attempts after a cut transfer, each resuming (default 3)\n"
           "      --force        download again even if the file is present\n"
           "  -q, --quiet        no progress bar\n"
           "      --json         print the result as one JSON object\n"
           "      --catalogue    list the built-in names and what they fetch\n"
           "  -h, --help         this help\n");
}

typedef struct bar {
    double t0, last_ms;
    uint64_t first; /* bytes present when the transfer started (a resume) */
    bool started, drawn, finished;
    const char *label;
} bar;

static void fmt_eta(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 99 * 3600)
        snprintf(buf, cap, "--:--");
    else if (s >= 3600)
        snprintf(buf, cap, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
    else
        snprintf(buf, cap, "%d:%02d", (int)s / 60, (int)s % 60);
}

static bool on_progress(uint64_t done, uint64_t total, void *user)
{
    bar *b = user;
    double now = ponder_now_ms();
    if (!b->started) {
        b->started = true;
        b->t0 = now;
        b->first = done;
    }
    bool finished = total && done >= total;
    if ((now - b->last_ms < BAR_INTERVAL_MS && !finished) || (finished && b->finished))
        return true;
    b->finished = finished;
    b->last_ms = now;
    double secs = (now - b->t0) / 1000.0;
    double rate = secs > 0.05 ? (double)(done - b->first) / secs : 0.0;
    char d[32], t[32], r[32], eta[32];
    cli_human_bytes(done, d, sizeof d);
    cli_human_bytes(rate > 0 ? (unsigned long long)rate : 0, r, sizeof r);
    if (total) {
        int pct = (int)(100.0 * (double)done / (double)total);
        int fill = (int)((double)BAR_WIDTH * (double)done / (double)total);
        char line[BAR_WIDTH + 1];
        for (int i = 0; i < BAR_WIDTH; i++)
            line[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        line[BAR_WIDTH] = '\0';
        fmt_eta(rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
        fprintf(stderr, "\r%3d%% [%s] %s / %s  %s/s  ETA %s\033[K", pct > 100 ? 100 : pct, line, d,
                cli_human_bytes(total, t, sizeof t), r, eta);
    } else {
        fprintf(stderr, "\r%s  %s/s\033[K", d, r);
    }
    b->drawn = true;
    fflush(stderr);
    return true;
}

static int print_catalogue(void)
{
    printf("%-14s %-52s %s\n", "NAME", "FETCHES", "WHAT");
    const ponder_hub_catalogue_entry *e;
    for (int i = 0; (e = ponder_hub_catalogue_at(i)); i++)
        printf("%-14s %-52s %s\n", e->name, e->target, e->summary);
    return CLI_EXIT_OK;
}

static int print_result(const char *name, const ponder_hub_pull_result *r, bool json)
{
    char sz[32];
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:b, s:b, s:I, s:I, s:i}", "request", name, "name", r->name,
                              "path", r->path, "bytes", (json_int_t)r->bytes, "sha256", r->sha256, "verified",
                              r->verified, "already_present", r->already, "downloaded", (json_int_t)r->downloaded,
                              "resumed_from", (json_int_t)r->resumed_from, "attempts", r->attempts);
        if (!j)
            return cli_runtime_error("out of memory");
        json_dumpf(j, stdout, JSON_COMPACT);
        json_decref(j);
        putchar('\n');
    } else if (r->already) {
        printf("%s is already present: %s (%s; --force downloads it again)\n", r->name, r->path,
               cli_human_bytes(r->bytes, sz, sizeof sz));
    } else {
        char from[48] = "";
        if (r->resumed_from) {
            char rb[32];
            snprintf(from, sizeof from, ", resumed at %s", cli_human_bytes(r->resumed_from, rb, sizeof rb));
        }
        printf("pulled %s -> %s (%s%s, sha256 %s%s)\n", r->name, r->path, cli_human_bytes(r->bytes, sz, sizeof sz),
               from, r->sha256, r->verified ? " verified" : ": the source publishes no checksum");
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_runtime_error("cannot write to stdout");
    return CLI_EXIT_OK;
}

int cmd_pull(int argc, char **argv)
{
    const char *cmd = "pull";
    const char *sha = NULL;
    int32_t retries = 3;
    bool force = false, quiet = false, json = false, catalogue = false;
    const cli_opt opts[] = {
        { "--sha256", NULL, CLI_STRING, &sha, 0, 0, NULL },
        { "--retries", NULL, CLI_INT, &retries, 0, 100, NULL },
        { "--force", NULL, CLI_FLAG, &force, 0, 0, NULL },
        { "-q", "--quiet", CLI_FLAG, &quiet, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &json, 0, 0, NULL },
        { "--catalogue", "--catalog", CLI_FLAG, &catalogue, 0, 0, NULL },
    };
    const char *pos[1];
    int npos = 0;
    cli_result pr = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &npos);
    if (pr == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (pr == CLI_BAD)
        return CLI_EXIT_USAGE;
    if (catalogue)
        return print_catalogue();
    if (npos != 1)
        return cli_usage_error(cmd, "expected one NAME (hf.co/OWNER/REPO[:QUANT], a URL, or a catalogue name)");

    ponder_hub_params p = ponder_hub_params_default();
    p.sha256 = sha;
    p.retries = retries;
    p.force = force;
    bar b = { .label = pos[0] };
    if (!quiet && isatty(STDERR_FILENO)) {
        p.progress = on_progress;
        p.progress_user = &b;
    }
    ponder_hub_pull_result res;
    ponder_error err;
    ponder_status st = ponder_hub_pull(pos[0], &p, &res, &err);
    if (b.drawn)
        fputs("\r\033[K", stderr);
    if (st != PONDER_OK)
        return st == PONDER_ERR_INVALID_ARG ? cli_usage_error(cmd, "%s", err.msg) : cli_runtime_error("%s", err.msg);
    return print_result(pos[0], &res, json);
}
