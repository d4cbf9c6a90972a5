set datafile separator ','
set key top left box opaque font ',12'
set logscale x
set xlabel 'FLOPs per item (log scale)' font ',13'
set ylabel 'accuracy, difficulty 3-4 (160 held-out items, seed 7)' font ',13'
set title 'Test-time compute on the arithmetic models: greedy chain, then sc:4 and sc:16 votes (T 0.5)' font ',13'
set yrange [0.45:0.95]
set grid
set tics font ',11'
plot 'ttc-sweep.csv' every ::1 using ($0<3?$6:1/0):3:4:5 with yerrorlines lw 2 pt 7 ps 1.2 title 'System 1 (arith-s1, one path per line)', \
     '' every ::1 using (($0>=3 && $0<6)?$6:1/0):3:4:5 with yerrorlines lw 2 pt 5 ps 1.2 title 'System 1 on mixed paths (arith-s1-paths)', \
     '' every ::1 using ($0>=6?$6:1/0):3:4:5 with yerrorlines lw 2 pt 9 ps 1.4 title 'System 2 (arith-s2, 4.6 M)'
