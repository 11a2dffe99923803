/*
 * rig.h — a deployment of real sharehub processes for the reliability tests: the broker and
 * four agents (the hub 881, a school 8819990, an acute trust RAJ, and the publisher, a
 * community health trust R1L), each its own executable with its own store, keys generated for
 * the run, on loopback. The tests kill, starve and restart them, then open the stores to count.
 *
 * Policy of the rig (docs/reliability.md): R1L publishes safeguarding concerns, permitted to
 * 881 (whole) and RAJ (minimised), and requests for support, permitted to 881 only. The school
 * subscribes to everything and is named by no protocol: it must never receive anything.
 *
 * Owns: the scratch directory, the child processes, their logs. Never: leaves a process
 * running after rig_destroy.
 */
#ifndef SHAREHUB_RIG_H
#define SHAREHUB_RIG_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { RIG_BROKER, RIG_HUB, RIG_SCHOOL, RIG_HEALTH, RIG_PUB, RIG_N };

/* The organisation code of each process (the broker's is "SHAREHUB"). */
extern const char *const rig_org[RIG_N];

typedef struct rig_opts {
    const char *broker_store;      /* directory for the broker's store; NULL: in the scratch dir */
    unsigned map_mib;              /* broker map size; 0: the default */
    int port;                      /* TCP port on 127.0.0.1 */
    unsigned redeliver_ms;         /* broker redelivery; 0: 1000 */
    const char *hub_subscriptions; /* the hub agent's subscriptions; NULL: all */
    /* the body of the only ISP (after its id, head and review date: purposes, event types,
     * senders, recipients); NULL: the rig's two ISPs */
    const char *policy;
    /* metrics and health endpoints on 127.0.0.1: the broker's on this port, each agent's on
     * the next (in rig order: hub, school, health, publisher); 0: none */
    int http_port;
} rig_opts;

typedef struct rig rig;

/* Writes keys, registry, policy and configs into a new scratch directory. bindir is
 * the build tree: broker/sharehub-broker, agents/sharehub-agent, tools/sharehub. NULL on failure
 * (reason on stderr). */
rig *rig_new(const char *bindir, const rig_opts *o);

/* Stops every process (SIGKILL if need be) and removes the scratch directory (kept when the
 * environment has KEEP=1; its path is printed). */
void rig_destroy(rig **r);

const char *rig_dir(const rig *r);
const char *rig_bindir(const rig *r);
pid_t rig_pid(const rig *r, int who);

/* Starts process who (its stderr appended to DIR/<org>.log). 0, or -1. */
int rig_start(rig *r, int who);

/* Turns process who's fault point on or off (common/fault.h: it fails while on; test builds
 * only). 0, or -1. */
int rig_fault(rig *r, int who, const char *point, int on);

/* Sends sig and reaps the process; returns its wait status (0 for a clean exit). */
int rig_signal(rig *r, int who, int sig);

/* Waits up to timeout_ms for process who to exit by itself (SIGKILL after that); its wait
 * status, or -1 if it had to be killed. */
int rig_wait_exit(rig *r, int who, int timeout_ms);

/* Stops the agents then the broker with SIGTERM; 0 when every one exited cleanly, else the
 * number that did not (each named on stderr). */
int rig_stop_all(rig *r);

/* One JSON request to an agent's local socket; the reply, or NULL after timeout_ms. */
json_object *rig_call(rig *r, int who, const char *request, int timeout_ms);

/* Sends a request without waiting for the answer (to kill the agent while it works on it). */
int rig_send(rig *r, int who, const char *request);

/* Waits until agent who reports connected; 0, or -1 after timeout_ms. */
int rig_wait_connected(rig *r, int who, int timeout_ms);

/* The agent's status fields, or -1 each if it did not answer. */
int rig_status(rig *r, int who, long *outbox, long *received, int *connected);

/* A publish request for R1L: a safeguarding concern (type 0) or a request for support
 * (type 1) about a new synthetic child, with a fresh event id (id, 16 bytes) the caller can
 * resend it under. The child's NHS number is copied to nhs (11 bytes). Returns malloc'd JSON. */
char *rig_publish_request(uint64_t *rng, int type, uint8_t id[16], char nhs[11]);

/* Runs `sharehub ARGS...` (NULL-terminated) with output appended to DIR/cli.log; exit status. */
int rig_cli(rig *r, const char *const *args);

/* A protocol client (not an agent) holding who's CURVE key: for tests that speak to the broker
 * directly. 0, or -1. */
struct sh_client;
int rig_client(rig *r, int who, struct sh_client **out);

/* The broker's endpoint and public key. */
const char *rig_endpoint(const rig *r);
const char *rig_broker_public(const rig *r);

/* Paths in the scratch directory for a process: its store, master key and signing key. */
void rig_paths(const rig *r, int who, char store[512], char master[512], char sign[512]);

/* Current resident set (VmRSS) of a running process in KiB, -1 if unknown; with its peak
 * (VmHWM) and its anonymous part (RssAnon: heap and stacks, without file pages such as the
 * LMDB map) when asked. */
long rig_rss_kib(const rig *r, int who, long *peak_kib, long *anon_kib);

/* Bytes process who has caused to be written to storage (/proc/PID/io write_bytes), or -1.
 * A store's commits end in fdatasync, so this is what its store wrote. */
long long rig_write_bytes(const rig *r, int who);

/* One HTTP request with curl to 127.0.0.1:port: the status (0 when curl could not connect)
 * and the body (malloc'd, NUL-ended) in *body when asked. */
int rig_http(int port, const char *method, const char *path, char **body);

/* Lines of the file at path that hold needle (0 when it cannot be read). */
size_t rig_count_in(const char *path, const char *needle);

/* xorshift64* */
uint64_t rig_rand(uint64_t *s);

/* Milliseconds on the monotonic clock. */
int64_t rig_ms(void);

#endif
