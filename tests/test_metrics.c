/* test_metrics.c — the Prometheus text rendering and the HTTP endpoint's refusals. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"

static char *s_render(int (*fn)(FILE *, const void *), const void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(fn(f, arg), 0);
    cr_assert_eq(fclose(f), 0);
    return text;
}

static int s_tally_page(FILE *f, const void *t)
{
    return sh_prom_family(f, "x_total", "counter", "help") || sh_prom_tally(f, "x_total", t);
}

static int s_hist_page(FILE *f, const void *h)
{
    return sh_prom_hist(f, "lat_seconds", h);
}

Test(metrics, labels_are_escaped_and_never_overrun)
{
    char lab[SH_LABELS_MAX] = "";
    cr_assert_eq(sh_label(lab, sizeof lab, "isp", "a\"b\\c\nd"), 0);
    cr_assert_str_eq(lab, "isp=\"a\\\"b\\\\c\\nd\"");
    cr_assert_eq(sh_label(lab, sizeof lab, "code", "SH_E_X"), 0);
    cr_assert_str_eq(lab, "isp=\"a\\\"b\\\\c\\nd\",code=\"SH_E_X\"");
    /* too long for the buffer: refused, and the buffer is left as it was */
    char small[16] = "";
    cr_assert_eq(sh_label(small, sizeof small, "k", "v"), 0);
    cr_assert_eq(sh_label(small, sizeof small, "key", "a value too long"), -1);
    cr_assert_str_eq(small, "k=\"v\"");
}

Test(metrics, a_tally_counts_by_label_set_and_overflows_into_one_series)
{
    sh_tally *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    sh_tally_add(t, "code=\"A\"", 2);
    sh_tally_add(t, "code=\"B\"", 1);
    sh_tally_add(t, "code=\"A\"", 3);
    cr_assert_eq(sh_tally_get(t, "code=\"A\""), 5);
    cr_assert_eq(sh_tally_get(t, "code=\"C\""), 0);
    char lab[32];
    for (int i = 0; i < SH_TALLY_MAX + 10; i++) {
        snprintf(lab, sizeof lab, "n=\"%d\"", i);
        sh_tally_add(t, lab, 1);
    }
    cr_assert_eq(t->n, SH_TALLY_MAX);
    cr_assert_eq(t->overflow, 12); /* 2 of the slots were A and B */
    char *text = s_render(s_tally_page, t);
    cr_assert(strstr(text, "# TYPE x_total counter\n"));
    cr_assert(strstr(text, "x_total{code=\"A\"} 5\n"));
    cr_assert(strstr(text, "x_total{overflow=\"true\"} 12\n"));
    free(text);
    sh_tally *sum = calloc(1, sizeof *sum);
    cr_assert_not_null(sum);
    sh_tally_add(sum, "code=\"A\"", 1);
    sh_tally_merge(sum, t);
    cr_assert_eq(sh_tally_get(sum, "code=\"A\""), 6);
    cr_assert_eq(sum->overflow, 12);
    sh_tally_reset(t);
    cr_assert_eq(t->n, 0);
    cr_assert_eq(sh_tally_get(t, "code=\"A\""), 0);
    free(sum);
    free(t);
}

Test(metrics, histogram_buckets_are_cumulative)
{
    sh_hist h = {0}, more = {0};
    sh_hist_observe(&h, 0.0005);
    sh_hist_observe(&h, 0.003);
    sh_hist_observe(&h, 0.003);
    sh_hist_observe(&more, 120); /* past the last bound: +Inf only */
    sh_hist_observe(&more, -1);  /* a clock stepping back counts as 0 */
    sh_hist_merge(&h, &more);
    char *text = s_render(s_hist_page, &h);
    cr_assert(strstr(text, "lat_seconds_bucket{le=\"0.001\"} 2\n"), "%s", text);
    cr_assert(strstr(text, "lat_seconds_bucket{le=\"0.005\"} 4\n"), "%s", text);
    cr_assert(strstr(text, "lat_seconds_bucket{le=\"60\"} 4\n"), "%s", text);
    cr_assert(strstr(text, "lat_seconds_bucket{le=\"+Inf\"} 5\n"), "%s", text);
    cr_assert(strstr(text, "lat_seconds_count 5\n"), "%s", text);
    cr_assert(strstr(text, "lat_seconds_sum 120.006500\n"), "%s", text);
    free(text);
}

static unsigned s_site(void *ctx, const char *path, char **body, size_t *len, const char **ctype)
{
    (void)ctx;
    (void)path;
    (void)ctype;
    *body = NULL;
    *len = 0;
    return 200;
}

Test(metrics, the_http_endpoint_refuses_a_bad_address_and_a_port_in_use)
{
    sh_http *h = NULL;
    sh_error err;
    int lfd = -1;
    const char *bad[] = {
        "9750",      "localhost:9750", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
        "[::1:9750", "300.0.0.1:9750"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(sh_http_listen(bad[i], &lfd, &err), SH_E_INVAL, "%s", bad[i]);
        cr_assert_eq(lfd, -1);
    }
    /* a port another socket holds */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
    cr_assert_eq(sh_http_listen(addr, &lfd, &err), SH_E_IO);
    cr_assert(strstr(err.detail, addr), "%s", err.detail);
    close(fd);
    /* free again: it listens, serves, and closes the socket it was given */
    cr_assert_eq(sh_http_listen(addr, &lfd, &err), SH_OK, "%s", err.detail);
    cr_assert(lfd >= 0);
    cr_assert_eq(sh_http_new(lfd, s_site, NULL, &h, &err), SH_OK, "%s", err.detail);
    cr_assert(sh_http_fd(h) >= 0);
    sh_http_destroy(&h);
    cr_assert_null(h);
    cr_assert_eq(fcntl(lfd, F_GETFD), -1, "the listening socket is closed");
    cr_assert_eq(sh_http_listen(addr, &lfd, &err), SH_OK, "%s", err.detail);
    close(lfd);
}
