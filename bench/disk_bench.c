/*
 * disk_bench.c — the store disk's limit: how long fdatasync takes after a 4 KiB write (what
 * one LMDB commit pays twice: data pages, then the meta page), alone and with four writers at
 * once (the broker and three agents share one disk in the benchmark). Prints "key value"
 * lines. Not a test.
 *
 * usage: disk_bench DIR [N]      (N syncs per writer, default 2000)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "measure.h"

/* n rounds of a 4 KiB pwrite and fdatasync on a file of its own; latencies (ms) into lat. */
static int s_writer(const char *dir, int who, int n, double *lat)
{
    char path[600], block[4096];
    snprintf(path, sizeof path, "%s/disk_bench.%d", dir, who);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    memset(block, 0x5a, sizeof block);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        double t = bench_now();
        if (pwrite(fd, block, sizeof block, (off_t)(i % 256) * 4096) != (ssize_t)sizeof block ||
            fdatasync(fd) != 0)
            rc = -1;
        lat[i] = (bench_now() - t) * 1e3;
    }
    close(fd);
    unlink(path);
    return rc;
}

static void s_report(const char *name, double *lat, size_t n, double seconds)
{
    bench_sort(lat, n);
    printf("%s_p50_ms %.3f\n%s_p99_ms %.3f\n%s_per_s %.0f\n", name, lat[n / 2], name,
           lat[(size_t)((double)n * 0.99)], name, (double)n / seconds);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: disk_bench DIR [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    if (n < 100) n = 100;
    enum { WRITERS = 4 };
    size_t bytes = sizeof(double) * (size_t)n * WRITERS;
    double *lat = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lat == MAP_FAILED) return 1;
    double t0 = bench_now();
    if (s_writer(argv[1], 0, n, lat)) {
        perror("disk_bench");
        return 1;
    }
    s_report("fdatasync_alone", lat, (size_t)n, bench_now() - t0);
    t0 = bench_now();
    pid_t kid[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        kid[w] = fork();
        if (kid[w] < 0) return 1;
        if (kid[w] == 0) _exit(s_writer(argv[1], w, n, lat + (size_t)w * (size_t)n) ? 1 : 0);
    }
    int ok = 1;
    for (int w = 0; w < WRITERS; w++) {
        int st = 0;
        waitpid(kid[w], &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    if (!ok) return 1;
    s_report("fdatasync_4_writers", lat, (size_t)n * WRITERS, bench_now() - t0);
    munmap(lat, bytes);
    return 0;
}
