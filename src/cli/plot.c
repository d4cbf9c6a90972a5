/*
 * plot.c — the accuracy-vs-cost plot of `ponder eval --plot` and `ponder calibrate`
 * (plot.h). SVG is written by hand (no dependency); PNG goes through gnuplot when it is
 * installed (gnuplot-nox), from a temporary data file with one block per series.
 */
#include "cli/plot.h"

#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool cli_plot_path_ok(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 4 && (strcmp(path + n - 4, ".svg") == 0 || strcmp(path + n - 4, ".png") == 0);
}

static void svg_text(FILE *f, double x, double y, const char *anchor, int size, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\">", x, y, anchor, size);
    for (const char *c = s; *c; c++) {
        if (*c == '<')
            fputs("&lt;", f);
        else if (*c == '&')
            fputs("&amp;", f);
        else
            fputc(*c, f);
    }
    fputs("</text>\n", f);
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

static int write_svg(const char *path, const cli_plot *p)
{
    const double W = 760, H = 480, L = 80, R = 30, T = 50, B = 60;
    double xmin = INFINITY, xmax = -INFINITY, ymax = 0.0;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            const cli_plot_point *pt = &p->series[s].pts[i];
            if (pt->x > 0) {
                xmin = fmin(xmin, log10(pt->x));
                xmax = fmax(xmax, log10(pt->x));
            }
            ymax = fmax(ymax, isnan(pt->hi) ? pt->y : fmax(pt->y, pt->hi));
        }
    if (!isfinite(xmin)) {
        xmin = 0;
        xmax = 1;
    }
    xmin = floor(xmin - 0.1);
    xmax = ceil(xmax + 0.1);
    if (xmax - xmin < 1)
        xmax = xmin + 1;
    ymax = ymax > 0.5 ? 1.0 : fmax(0.1, ceil(ymax * 10.0) / 10.0);
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_runtime_error("%s: %s", path, strerror(errno));
#define PX(v) (L + ((v) - xmin) / (xmax - xmin) * (W - L - R))
#define PY(v) (H - B - (v) / ymax * (H - T - B))
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    svg_text(f, W / 2, 28, "middle", 16, p->title);
    fprintf(f, "<g stroke=\"#ccc\" stroke-width=\"1\">\n");
    for (double d = xmin; d <= xmax + 1e-9; d += 1.0)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(d), PY(0), PX(d), PY(ymax));
    for (int k = 0; k <= 5; k++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(xmin), PY(ymax * k / 5), PX(xmax),
                PY(ymax * k / 5));
    fprintf(f, "</g>\n<g stroke=\"black\" stroke-width=\"1.5\" fill=\"none\">\n"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n</g>\n",
            PX(xmin), PY(0), PX(xmax), PY(0), PX(xmin), PY(0), PX(xmin), PY(ymax));
    char lab[160];
    for (double d = xmin; d <= xmax + 1e-9; d += 1.0) {
        snprintf(lab, sizeof lab, "1e%.0f", d);
        svg_text(f, PX(d), PY(0) + 18, "middle", 12, lab);
    }
    for (int k = 0; k <= 5; k++) {
        snprintf(lab, sizeof lab, "%.2f", ymax * k / 5);
        svg_text(f, PX(xmin) - 8, PY(ymax * k / 5) + 4, "end", 12, lab);
    }
    svg_text(f, (L + W - R) / 2, H - 18, "middle", 13, p->xlabel);
    fprintf(f, "<text x=\"20\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 20 %.1f)\">",
            (T + H - B) / 2, (T + H - B) / 2);
    fputs(p->ylabel, f);
    fputs("</text>\n", f);
    for (int s = 0; s < p->n_series; s++) {
        const cli_plot_series *sr = &p->series[s];
        const cli_plot_point **o = sorted(sr);
        if (!o) {
            fclose(f);
            return cli_runtime_error("out of memory");
        }
        if (sr->line && sr->n > 1) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", sr->color);
            for (int k = 0; k < sr->n; k++)
                fprintf(f, "%.1f,%.1f ", PX(o[k]->x > 0 ? log10(o[k]->x) : xmin), PY(o[k]->y));
            fprintf(f, "\"/>\n");
        }
        for (int k = 0; k < sr->n; k++) {
            double x = PX(o[k]->x > 0 ? log10(o[k]->x) : xmin);
            if (!isnan(o[k]->lo) && !isnan(o[k]->hi))
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x, PY(o[k]->lo), x,
                        PY(o[k]->hi), sr->color);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, PY(o[k]->y), sr->radius,
                    sr->color);
            if (o[k]->label)
                svg_text(f, x + 6, PY(o[k]->y) - 8, "start", 12, o[k]->label);
        }
        free(o);
        if (p->n_series > 1) {
            /* the legend, bottom right inside the axes */
            double ly = H - B - 14 - 18 * (p->n_series - 1 - s);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>\n", W - R - 200, ly - 4, sr->color);
            svg_text(f, W - R - 190, ly, "start", 12, sr->name);
        }
    }
#undef PX
#undef PY
    fputs("</svg>\n", f);
    if (fclose(f) != 0)
        return cli_runtime_error("%s: write failed", path);
    return 0;
}

static int write_png(const char *path, const cli_plot *p)
{
    char data[] = "/tmp/ponder-plot-XXXXXX";
    int fd = mkstemp(data);
    if (fd < 0)
        return cli_runtime_error("temporary file: %s", strerror(errno));
    FILE *d = fdopen(fd, "w");
    if (!d) {
        close(fd);
        unlink(data);
        return cli_runtime_error("temporary file: %s", strerror(errno));
    }
    /* one block per series (gnuplot's "index"), points in x order so lines join them */
    for (int s = 0; s < p->n_series; s++) {
        const cli_plot_point **o = sorted(&p->series[s]);
        for (int k = 0; o && k < p->series[s].n; k++)
            fprintf(d, "%g %g %g %g \"%s\"\n", o[k]->x, o[k]->y, isnan(o[k]->lo) ? o[k]->y : o[k]->lo,
                    isnan(o[k]->hi) ? o[k]->y : o[k]->hi, o[k]->label ? o[k]->label : "");
        free(o);
        fprintf(d, "\n\n");
    }
    fclose(d);
    FILE *g = popen("gnuplot 2>&1", "w");
    int rc = 0;
    if (!g) {
        rc = cli_runtime_error("--plot %s: cannot run gnuplot (%s); install gnuplot-nox or write .svg", path,
                               strerror(errno));
    } else {
        fprintf(g, "set terminal pngcairo size 900,560\nset output '%s'\nset logscale x\n%s\n"
                   "set xlabel '%s'\nset ylabel '%s'\nset title '%s'\nplot ",
                path, p->n_series > 1 ? "set key bottom right" : "set key off", p->xlabel, p->ylabel, p->title);
        for (int s = 0; s < p->n_series; s++) {
            const cli_plot_series *sr = &p->series[s];
            fprintf(g, "%s'%s' index %d using 1:2:3:4 with %s lc rgb '%s' pt 7 ps %.2f title '%s'", s ? ", " : "", data,
                    s, sr->line ? "yerrorlines" : "yerrorbars", sr->color, sr->radius / 4, sr->name);
            fprintf(g, ", '' index %d using 1:2:5 with labels offset 1,1 notitle", s);
        }
        fprintf(g, "\n");
        int st = pclose(g);
        if (st != 0)
            rc = cli_runtime_error("--plot %s: gnuplot failed (exit status %d; is gnuplot-nox installed?); write .svg "
                                   "instead",
                                   path, st);
    }
    unlink(data);
    return rc;
}

int cli_plot_write(const char *path, const cli_plot *p)
{
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".png") == 0 ? write_png(path, p) : write_svg(path, p);
}
