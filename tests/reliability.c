/*
 * reliability.c — the reliability programs (docs/reliability.md), run by ctest against the
 * real executables in BUILD-DIR:
 *
 *   sharehub-reliability chaos BUILD-DIR [--seed N] [--kills N]
 *       SIGKILLs the broker and the agents at random while the publisher streams events, and
 *       the publisher's agent right after it accepted an event (before the broker confirmed);
 *       restarts each; then counts every store.
 *   sharehub-reliability diskfull BUILD-DIR
 *       the broker's store on a small tmpfs (in a private mount namespace) that fills up while
 *       the publisher goes on publishing, then is freed.
 *
 *   sharehub-reliability hostile BUILD-DIR
 *       peers without CURVE, with unknown keys, spoofing a source, replaying an id, sending a
 *       100 MB frame and a burst of 10,000 malformed frames, while the agents keep working.
 *
 *   sharehub-reliability backlog BUILD-DIR [--events N]
 *       the hub offline while N events (default 200,000) queue for it: the broker's resident
 *       memory before and after.
 *   sharehub-reliability keys BUILD-DIR
 *       the broker and an agent refuse to start on a key file that is loose, missing or wrong.
 *
 * Each prints its figures and exits 0 only when every check held (1 otherwise, 2 on usage or
 * when the scenario could not be set up).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "crypto.h"
#include "error.h"
#include "ledger.h"
#include "synth.h"
#include "feed.h"
#include "rig.h"

static int s_chaos(const char *bindir, uint64_t seed, int kills)
{
    printf("chaos: seed %llu, %d kills (replay: sharehub-reliability chaos BUILD-DIR --seed %llu "
           "--kills %d)\n",
           (unsigned long long)seed, kills, (unsigned long long)seed, kills);
    fflush(stdout);
    rig_opts o = {.port = 31000 + getpid() % 1700};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    feed f = {.rng = seed};
    uint64_t rng = seed ^ 0x5deece66dull;
    int status = 2;
    for (int i = 0; i < RIG_N; i++)
        if (rig_start(r, i)) goto out;
    for (int i = 1; i < RIG_N; i++)
        if (rig_wait_connected(r, i, 15000)) {
            fprintf(stderr, "chaos: %s never connected\n", rig_org[i]);
            goto out;
        }
    status = 1;
    int64_t t0 = rig_ms(), next_kill = t0 + 300 + (int64_t)(rig_rand(&rng) % 500);
    int64_t restart_at[RIG_N] = {0};
    int done = 0, by_kind[4] = {0};
    while (done < kills) {
        int64_t now = rig_ms();
        for (int i = 0; i < RIG_N; i++)
            if (restart_at[i] && now >= restart_at[i]) {
                if (rig_start(r, i)) goto out;
                restart_at[i] = 0;
            }
        if (rig_pid(r, RIG_PUB) > 0) {
            if (feed_one(r, &f) < 0) goto out;
        } else {
            usleep(5 * 1000);
        }
        if (now < next_kill) continue;
        /* broker 2/8; one of the four agents 3/8; the publisher's agent just after it accepted
         * an event (before the broker confirmed) 2/8, or while it works on one 1/8 */
        unsigned k = (unsigned)(rig_rand(&rng) % 8), v;
        if (k < 2) {
            v = RIG_BROKER;
        } else if (k < 5) {
            v = RIG_HUB + (unsigned)(rig_rand(&rng) % 4);
        } else {
            v = RIG_PUB;
            if (rig_pid(r, RIG_PUB) <= 0) continue;
            if (k < 7) {
                int got = feed_one(r, &f);
                if (got < 0) goto out;
                usleep((useconds_t)(rig_rand(&rng) % 3000));
                by_kind[2] += got == 1;
            } else {
                if (feed_pending(&f) || rig_send(r, RIG_PUB, f.pending)) goto out;
                usleep((useconds_t)(rig_rand(&rng) % 2000));
                by_kind[3]++;
                f.lost_answers++;
            }
        }
        if (rig_pid(r, (int)v) <= 0) continue;
        by_kind[v == RIG_BROKER ? 0 : 1]++;
        rig_signal(r, (int)v, SIGKILL);
        restart_at[v] = rig_ms() + 50 + (int64_t)(rig_rand(&rng) % 400);
        done++;
        next_kill = rig_ms() + 150 + (int64_t)(rig_rand(&rng) % 450);
    }
    for (int i = 0; i < RIG_N; i++)
        if (restart_at[i] && rig_start(r, i)) goto out;
    for (int i = 1; i < RIG_N; i++)
        if (rig_wait_connected(r, i, 15000)) {
            fprintf(stderr, "chaos: %s did not come back\n", rig_org[i]);
            goto out;
        }
    /* the event whose answer was lost with the last kill, resent until answered */
    for (int tries = 0; f.pending && tries < 50; tries++)
        if (feed_one(r, &f) < 0) goto out;
    int64_t t1 = rig_ms();
    printf("chaos: %d kills in %.1f s: broker %d, agents %d (of which the publisher's agent %d "
           "times just after accepting an event, %d times while publishing one); %zu events "
           "published, %zu answers lost with a killed agent (resent under the same id)\n",
           done, (double)(t1 - t0) / 1000, by_kind[0], by_kind[1], by_kind[2], by_kind[3], f.n,
           f.lost_answers);
    fflush(stdout);
    if (feed_settle(r, f.n, 120000))
        fprintf(stderr, "chaos: deliveries did not settle in 120 s; counting anyway\n");
    printf("chaos: settled %.1f s after the last kill\n", (double)(rig_ms() - t1) / 1000);
    if (rig_stop_all(r)) goto out;
    ledger_result l;
    if (ledger_count(r, (const uint8_t(*)[16])f.id, f.n, &l)) goto out;
    int bad = ledger_report(&l) != 0;
    int audit = ledger_verify_audit(r);
    printf("audit: %s\n", audit ? "a chain FAILED to verify"
                                : "all five chains verify; the agents' agree with the broker's "
                                  "witness records");
    size_t pii = ledger_grep_logs(r, (const char(*)[11])f.nhs, f.n);
    printf("logs: %s\n", pii ? "personal data FOUND" : "no NHS number, name or narrative");
    status = bad || audit || pii ? 1 : 0;
out:
    if (status)
        fprintf(stderr, "chaos: FAILED (seed %llu; KEEP=1 keeps the stores and logs)\n",
                (unsigned long long)seed);
    rig_destroy(&r);
    feed_free(&f);
    return status;
}

/* Writes a file until the filesystem refuses more: bytes written, or -1. */
static long s_fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    static char chunk[65536];
    long total = 0;
    for (size_t size = sizeof chunk; size >= 512; size /= 2) {
        ssize_t w;
        while ((w = write(fd, chunk, size)) > 0)
            total += w;
        if (w < 0 && errno != ENOSPC) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    return total;
}

static int s_diskfull(const char *bindir, uint64_t seed)
{
    /* a private mount namespace (as root, or as a user where user namespaces are allowed),
     * so the tmpfs is seen by this program and the processes it starts, and by nobody else */
    if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        printf("diskfull: SKIPPED: cannot make a mount namespace here (%s)\n", strerror(errno));
        return 0;
    }
    char mnt[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(mnt, sizeof mnt, "%s/sharehub-tmpfs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(mnt) || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=16m,mode=0700") != 0) {
        printf("diskfull: SKIPPED: cannot mount a tmpfs here (%s)\n", strerror(errno));
        return 0;
    }
    char store[300], filler[300], log[600];
    snprintf(store, sizeof store, "%s/broker.store", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    rig_opts o = {.port = 31000 + getpid() % 1700, .broker_store = store};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    snprintf(log, sizeof log, "%s/R1L.log", rig_dir(r));
    feed f = {.rng = seed};
    sh_client *direct = NULL;
    int status = 2;
    for (int i = 0; i < RIG_N; i++)
        if (rig_start(r, i)) goto out;
    for (int i = 1; i < RIG_N; i++)
        if (rig_wait_connected(r, i, 15000)) goto out;
    status = 1;
    /* 1. all is well */
    if (feed_n(r, &f, 200) || feed_settle(r, f.n, 30000)) goto out;
    printf("diskfull: 200 events confirmed and delivered with room on the broker's disk\n");
    /* 2. the hub goes offline and 100 more are confirmed, queued for it; then the disk fills
     * up and the hub comes back: what was confirmed is delivered even with the disk full */
    if (rig_signal(r, RIG_HUB, SIGTERM) || feed_n(r, &f, 100)) goto out;
    long outbox = -1, received = 0;
    int conn = 0;
    for (int64_t end = rig_ms() + 15000; rig_ms() < end && outbox != 0;)
        if (rig_status(r, RIG_PUB, &outbox, &received, &conn) || outbox) usleep(100 * 1000);
    long filled = s_fill(filler);
    if (outbox != 0 || filled < 0 || rig_start(r, RIG_HUB) || rig_wait_connected(r, RIG_HUB, 15000))
        goto out;
    long hub = 0;
    for (int64_t end = rig_ms() + 20000; rig_ms() < end && hub < (long)f.n;)
        if (rig_status(r, RIG_HUB, &outbox, &hub, &conn) || hub < (long)f.n) usleep(100 * 1000);
    printf("diskfull: tmpfs filled (%ld bytes of filler) with 100 confirmed events queued for "
           "the hub; the hub then received %ld of its %zu with the disk full\n",
           filled, hub, f.n);
    int full_ok = hub == (long)f.n;
    /* a client speaking to the broker directly gets the documented code once the broker has
     * no room left: in its WAL's blocks, which exist before a record lands there (every batch
     * in them is durable), and in LMDB's free pages (the hub's acknowledged queue entries freed
     * some). Exclusion notices: no protocol shares them, so they reach nobody. */
    uint64_t rng = seed;
    int direct_code = -1, direct_fit = 0;
    if (rig_client(r, RIG_PUB, &direct)) goto out;
    for (int tries = 0; tries < 5000 && direct_code != SH_E_DISK_FULL; tries++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        uint8_t *env = NULL;
        size_t len = 0;
        sh_error err;
        sh_msg m;
        if (sh_synth_event(&rng, 8, &c, "R1L", NULL, NULL, 0, &env, &len, &err) == SH_OK &&
            sh_client_publish(direct, env, len) == SH_OK &&
            sh_client_expect(direct, "CONFIRM", 5000, &m) == SH_OK)
            direct_code = sh_msg_code(&m);
        direct_fit += direct_code == 0;
        free(env);
    }
    sh_client_destroy(&direct);
    /* and the publisher goes on publishing: its agent keeps what the broker refuses */
    size_t before = f.n;
    if (feed_n(r, &f, 200)) goto out;
    int64_t until = rig_ms() + 3000;
    while (rig_ms() < until)
        usleep(100 * 1000);
    if (rig_status(r, RIG_PUB, &outbox, &received, &conn)) goto out;
    size_t retries = rig_count_in(log, "E503");
    int broker_up = rig_pid(r, RIG_BROKER) > 0 && kill(rig_pid(r, RIG_BROKER), 0) == 0;
    printf("diskfull: tmpfs filled (%ld bytes of filler); a direct publish got E%03d (after %d "
           "fitted in the WAL's blocks and freed pages); then %zu more events accepted by the "
           "publisher's agent, %ld of them waiting in its outbox; the agent logged %zu retry "
           "answers E503; broker %s\n",
           filled, direct_code, direct_fit, f.n - before, outbox, retries,
           broker_up ? "running" : "DOWN");
    full_ok &= outbox > 0 && direct_code == SH_E_DISK_FULL && retries > 0 && broker_up;
    /* 3. room again: everything waiting goes through, nothing twice */
    if (unlink(filler)) goto out;
    int64_t t = rig_ms();
    if (feed_settle(r, f.n, 60000)) fprintf(stderr, "diskfull: did not settle after freeing\n");
    printf("diskfull: space freed; the outbox drained and deliveries settled in %.1f s\n",
           (double)(rig_ms() - t) / 1000);
    if (rig_stop_all(r)) goto out;
    ledger_result l;
    if (ledger_count(r, (const uint8_t(*)[16])f.id, f.n, &l)) goto out;
    int bad = ledger_report(&l) != 0;
    int audit = ledger_verify_audit(r);
    printf("audit: %s\n", audit ? "a chain FAILED to verify" : "all five chains verify");
    status = !full_ok || bad || audit ? 1 : 0;
out:
    if (status) fprintf(stderr, "diskfull: FAILED (KEEP=1 keeps the stores and logs)\n");
    rig_destroy(&r);
    feed_free(&f);
    umount(mnt);
    rmdir(mnt);
    return status;
}

/* The last line of a log, into out. */
static void s_last_line(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        snprintf(out, cap, "%s", line);
    fclose(f);
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[n - 1] = '\0';
}

/* Starts who, expects it to exit 1 at once with `code` in its last log line. */
static int s_refuses(rig *r, int who, const char *what, const char *code)
{
    char log[600], last[1024];
    snprintf(log, sizeof log, "%s/%s.log", rig_dir(r), rig_org[who]);
    if (truncate(log, 0) != 0 && errno != ENOENT) return 1;
    if (rig_start(r, who)) return 1;
    int st = rig_wait_exit(r, who, 10000);
    s_last_line(log, last, sizeof last);
    int ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(last, code) &&
             !strstr(last, "ZZTEST");
    printf("keys: %-4s %s %s: %s\n", ok ? "ok" : "FAIL", rig_org[who], what, last);
    return !ok;
}

static int s_keys(const char *bindir)
{
    rig_opts o = {.port = 31000 + getpid() % 1700};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    int fails = 0, status = 2;
    /* stores made once, under the right keys */
    if (rig_start(r, RIG_BROKER) || rig_start(r, RIG_HUB) || rig_wait_connected(r, RIG_HUB, 15000))
        goto out;
    if (rig_stop_all(r)) goto out;
    status = 1;
    const int who[2] = {RIG_BROKER, RIG_HUB};
    for (int k = 0; k < 2; k++) {
        char store[512], master[512], sign[512], curve[600], saved[600];
        rig_paths(r, who[k], store, master, sign);
        snprintf(curve, sizeof curve, "%s/%s.curve", rig_dir(r), rig_org[who[k]]);
        snprintf(saved, sizeof saved, "%s.saved", master);
        if (chmod(master, 0644)) goto out;
        fails += s_refuses(r, who[k], "master key readable by others", "E401");
        if (chmod(master, 0640)) goto out;
        fails += s_refuses(r, who[k], "master key readable by its group", "E401");
        if (chmod(master, 0600) || chmod(curve, 0604)) goto out;
        fails += s_refuses(r, who[k], "CURVE secret key readable by others", "E401");
        if (chmod(curve, 0600) || chmod(sign, 0660)) goto out;
        fails += s_refuses(r, who[k], "signing key writable by its group", "E401");
        if (chmod(sign, 0600) || rename(master, saved)) goto out;
        fails += s_refuses(r, who[k], "master key missing", "E400");
        sh_error err;
        if (sh_key_generate_file(master, &err)) goto out;
        fails += s_refuses(r, who[k], "another master key for its store", "E404");
        if (rename(saved, master)) goto out;
        FILE *f = fopen(master, "w");
        if (!f || fputs("not a key\n", f) < 0 || fclose(f)) goto out;
        fails += s_refuses(r, who[k], "master key file that is not a key", "E402");
    }
    status = fails ? 1 : 0;
out:
    if (status) fprintf(stderr, "keys: FAILED (KEEP=1 keeps the files)\n");
    rig_destroy(&r);
    return status;
}

/* The backlog's policy: requests for support for safeguarding (the synthetic events' purpose)
 * from R1L to the hub alone. */
static const char *s_backlog_policy =
    "purposes: [safeguarding]\nevent_types: [request_for_support]\n"
    "senders: [{organisation: R1L}]\nrecipients:\n"
    "  - {organisation: '881', data_items: [child, level_of_need, request_for_support]}\n";

/* Publishes n requests for support (the hub's alone) straight to the broker with R1L's key,
 * up to `window` unconfirmed at a time; returns how many were confirmed, each queued for the
 * hub as its CONFIRM says (-1 on a refusal, or a confirm that did not queue it). */
static long s_pump_events(sh_client *c, uint64_t *rng, long n, int window)
{
    long sent = 0, confirmed = 0;
    sh_synth_child child;
    sh_synth_child_make(rng, "881", &child);
    while (confirmed < n) {
        /* what the window has room for goes as one batch: one signature (docs/evidence.md) */
        uint8_t *envs[256];
        size_t lens[256], k = 0;
        int bad = 0;
        /* (refilled once half the window is free: batches, not one signature an event) */
        int room = sent - confirmed <= window / 2;
        while (room && !bad && sent + (long)k < n && sent + (long)k - confirmed < window &&
               k < 256) {
            sh_error err;
            if ((sent + (long)k) % 64 == 0) sh_synth_child_make(rng, "881", &child);
            envs[k] = NULL;
            bad = sh_synth_event(rng, 1, &child, "R1L", NULL, NULL, 0, &envs[k], &lens[k], &err) !=
                  SH_OK;
            k++;
        }
        if (!bad && k && sh_client_publish_batch(c, (const uint8_t *const *)envs, lens, k)) bad = 1;
        for (size_t i = 0; i < k; i++)
            free(envs[i]);
        if (bad) return -1;
        sent += (long)k;
        sh_msg m;
        if (sh_client_expect(c, "CONFIRM", 10000, &m)) return -1;
        if (sh_msg_code(&m) != 0) {
            fprintf(stderr, "backlog: refused E%03d\n", sh_msg_code(&m));
            return -1;
        }
        int queued = 0;
        for (size_t i = SH_CONFIRM_LINES_AT; i < m.nframes; i++)
            queued |= m.len[i] >= 10 && memcmp(m.frame[i], "881 permit", 10) == 0;
        if (!queued) {
            fprintf(stderr, "backlog: an event was not queued for the hub: %.*s\n",
                    m.nframes > 4 ? (int)m.len[4] : 0,
                    m.nframes > 4 ? (const char *)m.frame[4] : "");
            return -1;
        }
        confirmed++;
    }
    return confirmed;
}

static int s_backlog(const char *bindir, uint64_t seed, long events)
{
    rig_opts o = {.port = 31000 + getpid() % 1700, .map_mib = 4096, .policy = s_backlog_policy};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    sh_client *c = NULL;
    int status = 2;
    /* the broker alone: every recipient is offline */
    if (rig_start(r, RIG_BROKER) || rig_client(r, RIG_PUB, &c)) goto out;
    status = 1;
    uint64_t rng = seed;
    long warm = events / 20, done = 0;
    int64_t t0 = rig_ms();
    if (s_pump_events(c, &rng, warm, 256) != warm) goto out;
    done += warm;
    long anon0 = 0, rss0 = rig_rss_kib(r, RIG_BROKER, NULL, &anon0);
    printf("backlog: %7ld events queued for the offline hub: broker RSS %6ld KiB, of which "
           "heap %5ld KiB\n",
           done, rss0, anon0);
    while (done < events) {
        long chunk = events / 4 < events - done ? events / 4 : events - done;
        if (s_pump_events(c, &rng, chunk, 256) != chunk) goto out;
        done += chunk;
        long anon = 0, rss = rig_rss_kib(r, RIG_BROKER, NULL, &anon);
        printf("backlog: %7ld events queued for the offline hub: broker RSS %6ld KiB, of which "
               "heap %5ld KiB\n",
               done, rss, anon);
    }
    double secs = (double)(rig_ms() - t0) / 1000;
    long anon1 = 0, peak1 = 0, rss1 = rig_rss_kib(r, RIG_BROKER, &peak1, &anon1);
    char store[512], master[512], sign[512], data[600];
    rig_paths(r, RIG_BROKER, store, master, sign);
    snprintf(data, sizeof data, "%s/data.mdb", store);
    struct stat st;
    long mib = stat(data, &st) == 0 ? (long)(st.st_size >> 20) : -1;
    /* the queue lives in LMDB: the broker's own memory (heap) stays flat; the rest of its RSS
     * is pages of the store's file mapped read-only, which it unmaps past 32 MiB (they stay
     * in the page cache): so its whole resident set stays under 64 MiB */
#ifdef SHAREHUB_SANITIZED
    /* ASan keeps freed memory in quarantine (256 MiB) and grows its own caches: the figures
     * are printed, the dev build judges them */
    int flat = 1;
    const char *verdict = "not judged in a sanitizer build";
#else
    int flat = anon1 >= 0 && anon1 - anon0 < 8 * 1024 && rss1 < 64 * 1024;
    const char *verdict = flat ? "flat, RSS under 64 MiB" : "GROWING";
#endif
    printf("backlog: %ld events confirmed in %.1f s (%.0f/s); store %ld MiB; broker heap %ld -> "
           "%ld KiB (%+ld KiB): %s; RSS %ld -> %ld KiB (peak %ld), the rest being mapped pages "
           "of the store\n",
           events, secs, (double)events / secs, mib, anon0, anon1, anon1 - anon0, verdict, rss0,
           rss1, peak1);
    status = flat ? 0 : 1;
out:
    if (status) fprintf(stderr, "backlog: FAILED\n");
    sh_client_destroy(&c);
    rig_destroy(&r);
    return status;
}

static void s_usage(void)
{
    fputs("usage: sharehub-reliability chaos BUILD-DIR [--seed N] [--kills N]\n"
          "       sharehub-reliability diskfull BUILD-DIR\n"
          "       sharehub-reliability hostile BUILD-DIR\n"
          "       sharehub-reliability keys BUILD-DIR\n"
          "       sharehub-reliability backlog BUILD-DIR [--events N]\n",
          stderr);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        s_usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    int kills = 24;
    long events = 200000;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--kills") == 0)
            kills = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--events") == 0)
            events = atol(argv[i + 1]);
        else {
            s_usage();
            return 2;
        }
    }
    if (strcmp(argv[1], "chaos") == 0) return s_chaos(argv[2], seed, kills);
    if (strcmp(argv[1], "diskfull") == 0) return s_diskfull(argv[2], seed);
    if (strcmp(argv[1], "hostile") == 0) return rel_hostile(argv[2], seed);
    if (strcmp(argv[1], "keys") == 0) return s_keys(argv[2]);
    if (strcmp(argv[1], "backlog") == 0) return s_backlog(argv[2], seed, events);
    s_usage();
    return 2;
}
