/*
 * measure.h — what every benchmark program measures with: clocks in seconds, and quantiles of
 * a sample.
 *
 * Owns: nothing but these helpers. Never: prints (the programs print their own figures).
 */
#ifndef SHAREHUB_BENCH_MEASURE_H
#define SHAREHUB_BENCH_MEASURE_H

#include <stddef.h>

/* Seconds on the monotonic clock. */
double bench_now(void);

/* Seconds on the wall clock (CLOCK_REALTIME), to compare with times other processes of the
 * same machine wrote into messages. */
double bench_wall(void);

/* Sorts v[0..n) ascending, for bench_quantile. */
void bench_sort(double *v, size_t n);

/* The q-quantile (0..1) of n sorted values, nearest rank; 0 when n is 0. */
double bench_quantile(const double *v, size_t n, double q);

#endif
