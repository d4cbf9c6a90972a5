/*
 * metrics.c — counters, gauges and histograms behind GET /metrics, rendered in the
 * Prometheus text format (version 0.0.4). One mutex: updates are a few per request.
 *
 * Bucket bounds (seconds) span a tiny model's milliseconds to a big model's minute.
 */
#include "http/http.h"

#include <stdlib.h>
#include <string.h>

static const double hist_bounds[HTTP_HIST_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1.0,   2.5,  5.0,   10.0, 30.0, 60.0, 120.0 };

void http_metrics_init(http_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void http_metrics_destroy(http_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void http_metrics_count_status(http_metrics *m, int http_status)
{
    pthread_mutex_lock(&m->mu);
    /* a slot per code: every status is counted (it was the first 8 distinct ones) */
    m->status_count[http_status >= 100 && http_status < HTTP_STATUS_MAX ? http_status : 0]++;
    pthread_mutex_unlock(&m->mu);
}

static void bump(http_metrics *m, uint64_t *counter)
{
    pthread_mutex_lock(&m->mu);
    (*counter)++;
    pthread_mutex_unlock(&m->mu);
}

void http_metrics_count_cancelled(http_metrics *m) { bump(m, &m->cancelled); }
void http_metrics_count_failed(http_metrics *m) { bump(m, &m->failed); }
void http_metrics_count_timeout(http_metrics *m) { bump(m, &m->conn_timeouts); }

void http_metrics_add_tokens(http_metrics *m, int64_t prompt, int64_t completion)
{
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)(prompt > 0 ? prompt : 0);
    m->completion_tokens += (uint64_t)(completion > 0 ? completion : 0);
    pthread_mutex_unlock(&m->mu);
}

static void observe(http_histogram *h, double s)
{
    int i = 0;
    while (i < HTTP_HIST_BUCKETS && s > hist_bounds[i])
        i++;
    h->counts[i]++;
    h->sum += s;
    h->n++;
}

void http_metrics_observe_latency(http_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->latency, seconds);
    pthread_mutex_unlock(&m->mu);
}

void http_metrics_observe_ttft(http_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->ttft, seconds);
    pthread_mutex_unlock(&m->mu);
}

void http_metrics_set_load(http_metrics *m, int64_t queue_depth, int64_t active_requests, int64_t active_sequences)
{
    pthread_mutex_lock(&m->mu);
    m->queue_depth = queue_depth;
    m->active_requests = active_requests;
    m->active_sequences = active_sequences;
    pthread_mutex_unlock(&m->mu);
}

static void render_hist(http_buf *b, const char *name, const char *help, const http_histogram *h)
{
    http_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < HTTP_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        http_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, hist_bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[HTTP_HIST_BUCKETS];
    http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum,
                    name, h->sum, name, (unsigned long long)h->n);
}

char *http_metrics_render(http_metrics *m)
{
    http_buf b = { 0 };
    pthread_mutex_lock(&m->mu);
    http_buf_printf(&b, "# HELP ponder_requests_total HTTP requests answered, by status code.\n"
                        "# TYPE ponder_requests_total counter\n");
    for (int i = 100; i < HTTP_STATUS_MAX; i++)
        if (m->status_count[i])
            http_buf_printf(&b, "ponder_requests_total{code=\"%d\"} %llu\n", i, (unsigned long long)m->status_count[i]);
    if (m->status_count[0])
        http_buf_printf(&b, "ponder_requests_total{code=\"other\"} %llu\n", (unsigned long long)m->status_count[0]);
    http_buf_printf(&b,
                    "# HELP ponder_requests_cancelled_total Generation requests cancelled because the client left.\n"
                    "# TYPE ponder_requests_cancelled_total counter\nponder_requests_cancelled_total %llu\n"
                    "# HELP ponder_requests_failed_total Generation requests that failed after they were accepted.\n"
                    "# TYPE ponder_requests_failed_total counter\nponder_requests_failed_total %llu\n"
                    "# HELP ponder_connections_timed_out_total Connections closed for a request not read in time.\n"
                    "# TYPE ponder_connections_timed_out_total counter\nponder_connections_timed_out_total %llu\n",
                    (unsigned long long)m->cancelled, (unsigned long long)m->failed,
                    (unsigned long long)m->conn_timeouts);
    http_buf_printf(&b,
                    "# HELP ponder_prompt_tokens_total Prompt tokens of generation requests (finished or cancelled).\n"
                    "# TYPE ponder_prompt_tokens_total counter\nponder_prompt_tokens_total %llu\n"
                    "# HELP ponder_completion_tokens_total Tokens generated, over all choices.\n"
                    "# TYPE ponder_completion_tokens_total counter\nponder_completion_tokens_total %llu\n",
                    (unsigned long long)m->prompt_tokens, (unsigned long long)m->completion_tokens);
    render_hist(&b, "ponder_request_duration_seconds", "Generation request latency, arrival to last byte.",
                &m->latency);
    render_hist(&b, "ponder_time_to_first_token_seconds", "Arrival to the first generated token.", &m->ttft);
    http_buf_printf(&b,
                    "# HELP ponder_queue_depth Requests waiting for a slot.\n"
                    "# TYPE ponder_queue_depth gauge\nponder_queue_depth %lld\n"
                    "# HELP ponder_active_requests Requests being decoded.\n"
                    "# TYPE ponder_active_requests gauge\nponder_active_requests %lld\n"
                    "# HELP ponder_active_slots Sequences (slots) being decoded, over all choices.\n"
                    "# TYPE ponder_active_slots gauge\nponder_active_slots %lld\n",
                    (long long)m->queue_depth, (long long)m->active_requests, (long long)m->active_sequences);
    pthread_mutex_unlock(&m->mu);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
