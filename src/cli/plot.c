/*
 * plot.c — the accuracy-vs-cost plot of `ponder eval --plot` and `ponder calibrate`
 * (plot.h). One renderer for both forms: gnuplot (gnuplot-nox) draws SVG and PNG from the
 * same script, so the two never differ; it places ticks on the log axis and keeps the key
 * outside the data, which the hand-written SVG this replaced did not (its points crowded
 * into a corner and its labels overlapped). Axes are fitted to the data with a margin;
 * a lone labelled point is named in the key rather than beside itself, and the labels of
 * a series alternate above and below its points.
 */
#include "cli/plot.h"

#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

bool cli_plot_path_ok(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && (strcmp(path + n - 4, ".svg") == 0 || strcmp(path + n - 4, ".png") == 0);
}

static int cmp_x(const void *a, const void *b)
{
    const cli_plot_point *p = *(const cli_plot_point *const *)a, *q = *(const cli_plot_point *const *)b;
    return p->x < q->x ? -1 : p->x > q->x;
}

/* The series' points in x order (pointers into it); NULL when out of memory. */
static const cli_plot_point **sorted(const cli_plot_series *s)
{
    const cli_plot_point **o = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *o);
    if (!o)
        return NULL;
    for (int i = 0; i < s->n; i++)
        o[i] = &s->pts[i];
    qsort(o, (size_t)s->n, sizeof *o, cmp_x);
    return o;
}

/* A gnuplot single-quoted string: a quote is doubled. */
static void gp_string(FILE *g, const char *s)
{
    fputc('\'', g);
    for (; s && *s; s++) {
        if (*s == '\'')
            fputc('\'', g);
        fputc(*s, g);
    }
    fputc('\'', g);
}

/* A label in the data file: double-quoted, so a double quote becomes a single one. */
static void data_label(FILE *d, const char *s)
{
    fputc('"', d);
    for (; s && *s; s++)
        fputc(*s == '"' ? '\'' : *s, d);
    fputc('"', d);
}

typedef struct plot_range {
    double x0, x1, y0, y1;
} plot_range;

/* The data's extent: x in decades padded by a fifth of one, y padded by 8 % of its span. */
static plot_range fit(const cli_plot *p)
{
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            const cli_plot_point *pt = &p->series[s].pts[i];
            if (pt->x > 0 && isfinite(pt->x)) {
                xmin = fmin(xmin, log10(pt->x));
                xmax = fmax(xmax, log10(pt->x));
            }
            ymin = fmin(ymin, isnan(pt->lo) ? pt->y : fmin(pt->y, pt->lo));
            ymax = fmax(ymax, isnan(pt->hi) ? pt->y : fmax(pt->y, pt->hi));
        }
    if (!isfinite(xmin))
        xmin = xmax = 0;
    if (!isfinite(ymin))
        ymin = 0, ymax = 1;
    double span = fmax(ymax - ymin, 0.05);
    plot_range r = { pow(10, xmin - 0.15), pow(10, xmax + 0.15), ymin - 0.08 * span, ymax + 0.1 * span };
    if (ymin >= 0) /* accuracy: a little room under 0 and over 1, no more */
        r.y0 = fmax(r.y0, -0.04 * span);
    if (ymax <= 1)
        r.y1 = fmin(r.y1, 1.0 + 0.06 * span);
    return r;
}

/* "200M", "1.5G": a tick label with an SI prefix. */
static void si_label(char *buf, size_t cap, double v)
{
    static const char prefix[] = { 'p', 'n', 'u', 'm', 0, 'k', 'M', 'G', 'T', 'P', 'E' };
    int e = (int)floor(log10(v) / 3.0 + 1e-9);
    e = e < -4 ? -4 : e > 6 ? 6 : e;
    const double m = v / pow(10, 3.0 * e);
    if (prefix[e + 4])
        snprintf(buf, cap, "%g%c", m, prefix[e + 4]);
    else
        snprintf(buf, cap, "%g", m);
}

/* Explicit x ticks at 1, 2 and 5 of each decade in range (only 1 over wide ranges):
 * gnuplot's log axis labels decades only, which leaves a narrow range unlabelled. */
static void write_xtics(FILE *g, const plot_range *r)
{
    const bool wide = log10(r->x1 / r->x0) > 3.0;
    static const double steps[] = { 1, 2, 5 };
    fputs("set xtics (", g);
    int n = 0;
    for (int d = (int)floor(log10(r->x0)); d <= (int)ceil(log10(r->x1)); d++)
        for (int k = 0; k < (wide ? 1 : 3); k++) {
            const double v = steps[k] * pow(10, d);
            if (v < r->x0 || v > r->x1)
                continue;
            char lab[32];
            si_label(lab, sizeof lab, v);
            fprintf(g, "%s'%s' %.9g", n++ ? ", " : "", lab, v);
        }
    fputs(")\n", g);
}

/* One block per series (gnuplot's "index"), points in x order so lines join them; the
 * sixth column is the label's vertical offset, alternating sign along the series. */
static bool write_data(FILE *d, const cli_plot *p, const plot_range *r)
{
    const double dy = 0.03 * (r->y1 - r->y0);
    for (int s = 0; s < p->n_series; s++) {
        const cli_plot_series *sr = &p->series[s];
        const cli_plot_point **o = sorted(sr);
        if (!o)
            return false;
        for (int k = 0; k < sr->n; k++) {
            fprintf(d, "%.9g %.9g %.9g %.9g ", o[k]->x, o[k]->y, isnan(o[k]->lo) ? o[k]->y : o[k]->lo,
                    isnan(o[k]->hi) ? o[k]->y : o[k]->hi);
            data_label(d, sr->n > 1 ? o[k]->label : NULL);
            fprintf(d, " %.9g\n", k % 2 ? -dy : dy);
        }
        free(o);
        fprintf(d, "\n\n");
    }
    return true;
}

static void write_script(FILE *g, const char *path, const char *data, const cli_plot *p, const plot_range *r,
                         bool png)
{
    fprintf(g, "set terminal %s size 960,600 font 'sans,%d'\nset output ", png ? "pngcairo" : "svg dynamic",
            png ? 11 : 13);
    gp_string(g, path);
    fprintf(g, "\nset logscale x\nset xrange [%.9g:%.9g]\nset yrange [%.9g:%.9g]\n"
               "set grid xtics ytics lt 1 lw 1 lc rgb '#d8d8d8'\nset border 3\nset tics nomirror\n"
               "set key outside right top vertical Left reverse spacing 1.3\n",
            r->x0, r->x1, r->y0, r->y1);
    write_xtics(g, r);
    fputs("set title ", g);
    gp_string(g, p->title);
    fputs("\nset xlabel ", g);
    gp_string(g, p->xlabel);
    fputs("\nset ylabel ", g);
    gp_string(g, p->ylabel);
    fputs("\nplot ", g);
    for (int s = 0; s < p->n_series; s++) {
        const cli_plot_series *sr = &p->series[s];
        char title[256];
        /* a lone point's label goes in the key: nothing drawn beside it can overlap */
        snprintf(title, sizeof title, "%s", sr->n == 1 && sr->pts[0].label ? sr->pts[0].label : sr->name);
        fprintf(g, "%s", s ? ", \\\n  " : "");
        gp_string(g, data);
        fprintf(g, " index %d using 1:2:3:4 with %s lc rgb '%s' lw 1.5 pt 7 ps %.2f title ", s,
                sr->line ? "yerrorlines" : "yerrorbars", sr->color, sr->radius / 3.5);
        gp_string(g, title);
        if (sr->n > 1) {
            fputs(", ", g);
            gp_string(g, data);
            fprintf(g, " index %d using 1:($2+$6):5 with labels left offset char 0.8,0 tc rgb '#333333' notitle", s);
        }
    }
    fputs("\n", g);
}

/* Runs gnuplot on the script file; 0, else the exit status after an error that quotes
 * gnuplot's own last line of complaint. */
static int run_gnuplot(const char *path, const char *script)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", script);
    FILE *g = popen(cmd, "r");
    if (!g)
        return cli_runtime_error("plot %s: cannot run gnuplot (%s); install gnuplot-nox", path, strerror(errno));
    char line[512], last[512] = "";
    while (fgets(line, sizeof line, g))
        if (strspn(line, " \t\n^") != strlen(line)) /* skip gnuplot's caret lines */
            snprintf(last, sizeof last, "%s", line);
    const int st = pclose(g);
    last[strcspn(last, "\n")] = '\0';
    if (st == 0)
        return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        return cli_runtime_error("plot %s: gnuplot is not installed; install gnuplot-nox", path);
    return cli_runtime_error("plot %s: gnuplot failed: %s", path, last[0] ? last : "no message");
}

static int write_gnuplot(const char *path, const cli_plot *p, bool png)
{
    char data[] = "/tmp/ponder-plot-XXXXXX", script[] = "/tmp/ponder-plot-XXXXXX";
    int fd = mkstemp(data), fs = fd < 0 ? -1 : mkstemp(script);
    if (fd < 0 || fs < 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(data);
        }
        return cli_runtime_error("temporary file: %s", strerror(e));
    }
    FILE *d = fdopen(fd, "w"), *g = fdopen(fs, "w");
    const plot_range r = fit(p);
    bool ok = d && g && write_data(d, p, &r);
    if (ok)
        write_script(g, path, data, p, &r, png);
    ok = (d ? fclose(d) == 0 : (close(fd), false)) && ok;
    ok = (g ? fclose(g) == 0 : (close(fs), false)) && ok;
    int rc = ok ? run_gnuplot(path, script) : cli_runtime_error("temporary file: write failed");
    unlink(data);
    unlink(script);
    return rc;
}

int cli_plot_write(const char *path, const cli_plot *p)
{
    size_t n = strlen(path);
    return write_gnuplot(path, p, n > 4 && strcmp(path + n - 4, ".png") == 0);
}
