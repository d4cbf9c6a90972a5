/*
 * plot.h — accuracy-against-cost plots for `ponder eval --plot` and `ponder calibrate`:
 * series of points over a log-scaled x axis, drawn by gnuplot as SVG or PNG (the
 * extension decides; one script for both, so they show the same thing).
 */
#ifndef PONDER_CLI_PLOT_H
#define PONDER_CLI_PLOT_H

#include <stdbool.h>

typedef struct cli_plot_point {
    double x, y;       /* x > 0 (log scale); y in [0, 1] */
    double lo, hi;     /* an error bar; NaN: none */
    const char *label; /* written next to the point; NULL: none */
} cli_plot_point;

typedef struct cli_plot_series {
    const char *name;  /* the legend's entry (shown when there are several series) */
    const char *color; /* "#1f77b4" */
    const cli_plot_point *pts;
    int n;
    bool line;         /* join the points in x order */
    double radius;     /* marker size in pixels */
} cli_plot_series;

typedef struct cli_plot {
    const char *title, *xlabel, *ylabel;
    const cli_plot_series *series;
    int n_series;
} cli_plot;

/* True when path ends in .svg or .png (the forms cli_plot_write takes). */
bool cli_plot_path_ok(const char *path);
/* Writes the plot; returns 0, else the exit status after printing the error. */
int cli_plot_write(const char *path, const cli_plot *p);

#endif
