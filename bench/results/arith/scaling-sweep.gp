set logscale xy
set grid
set key bottom left box opaque font ',12'
set xlabel 'training tokens (log scale)' font ',13'
set ylabel 'held-out loss, test.jsonl difficulties 1-4 (log scale)' font ',13'
set title 'arith scaling sweep: held-out loss against tokens, three sizes (1,500-step cosine each; s2 cut at step 400)' font ',12'
set tics font ',11'
plot 's1.dat' using 4:5 with linespoints lw 2 pt 7 title 's1: 0.85 M (dim 128, 4 layers)', \
     'm.dat' using 4:5 with linespoints lw 2 pt 5 title 'm: 2.5 M (dim 192, 6 layers)', \
     's2.dat' using 4:5 with linespoints lw 2 pt 9 title 's2: 4.6 M (dim 256, 6 layers), cut short'
