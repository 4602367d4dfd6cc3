# bench/soak/plot.gp: the picture of a soak run (bench/soak/run.sh draws it).
#   gnuplot -e "data='samples.dat'; out='soak.svg'; title='...'; warm=60; load_end=600" plot.gp
# data: soak_client --data columns: t hold_up churn_up connects/s msgs/s, then RSS (MiB) and
# descriptors of each server: plain (6, 7) and TLS (8, 9). warm and load_end mark the end of the
# warm-up and of the load with vertical lines.
set terminal svg size 1000,900 dynamic enhanced background rgb 'white'
set output out
set multiplot layout 3,1 title title noenhanced
set grid
plain_color = '#9400d3'
tls_color = '#009e73'
set key outside right top
set xlabel 'elapsed (s)'
set xrange [0:*]
set autoscale xfixmax
set arrow 1 from warm, graph 0 to warm, graph 1 nohead dashtype 2 lc rgb 'gray40'
set arrow 2 from load_end, graph 0 to load_end, graph 1 nohead dashtype 2 lc rgb 'gray40'

# Two scales: the plain server's RSS is a few MiB, the TLS server's over a hundred, and a drift
# of either must show.
set ylabel 'TLS server RSS (MiB)'
set y2label 'plain server RSS (MiB)'
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot data using 1:8 with lines lw 2 lc rgb tls_color title 'TLS', \
     data using 1:6 axes x1y2 with lines lw 2 lc rgb plain_color title 'plain (right)'
unset y2label
unset y2tics
set ytics mirror

set ylabel 'server descriptors'
plot data using 1:7 with lines lw 2 lc rgb plain_color title 'plain', \
     data using 1:9 with lines lw 2 lc rgb tls_color title 'TLS'

set ylabel 'connections up'
set y2label 'connects/s'
set y2tics
set ytics nomirror
set y2range [0:*]
plot data using 1:2 with lines lw 2 title 'hold', \
     data using 1:3 with lines lw 2 title 'churn', \
     data using 1:4 axes x1y2 with lines lw 1 title 'connects/s'
unset multiplot
