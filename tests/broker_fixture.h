/* broker_fixture.h — the broker under test (broker_fixture.c): its organisations, keys,
 * configuration and process, and the helpers its tests share. Each test suite using it
 * declares TestSuite(NAME, .init = bf_setup, .fini = bf_teardown). */
#ifndef SHAREHUB_BROKER_FIXTURE_H
#define SHAREHUB_BROKER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker.h"
#include "client.h"

#define WAIT 3000 /* ms to wait for anything the broker should send */

enum { HUB, SCHOOL, HEALTH, POLICE, SOUTHEND, NORG };
extern const char *const bf_org[NORG];
extern char bf_pub[NORG][41], bf_sec[NORG][41];
extern char bf_broker_pub[41];
extern char *bf_dir, *bf_tcp, *bf_ipc;
extern pid_t bf_broker;
extern sh_broker_config bf_cfg;

/* path = the test's directory + "/" + name, malloc'd. */
char *bf_path(const char *name);
/* Writes text to the file name in the test's directory. */
void bf_write(const char *name, const char *text);
/* The registry, with every org's key except those in `revoked` (a bit set). */
void bf_registry(unsigned revoked);
void bf_policy(void);
/* Forks the broker and waits until it answers a PING; bf_stop stops it and checks its exit. */
void bf_start(void);
void bf_stop(void);
sh_client *bf_client_at(int org, const char *endpoint);
sh_client *bf_client(int org);
/* A client that has said HELLO and got READY. */
sh_client *bf_agent(int org);
void bf_setup(void);
void bf_teardown(void);
/* An encoded synthetic event of `type` published as `as` (source_org), malloc'd. */
uint8_t *bf_event(int type, const char *as, const uint8_t *ref, size_t *len);
/* Publishes and returns the CONFIRM. */
void bf_publish(sh_client *c, const uint8_t *buf, size_t len, sh_msg *m);
/* Publishes n safeguarding concerns as the school, each accepted; their ids in ids. */
void bf_publish_concerns(sh_client *school, uint8_t (*ids)[16], int n);
/* 1 when the CONFIRM m holds the outcome line. */
int bf_has_line(const sh_msg *m, const char *line);

/* Turns the broker's fault point on or off (common/fault.h): it fails while on. */
void bf_fault(const char *point, int on);
/* Entries in the stopped broker's audit log with this action and code (-1: any) whose detail
 * holds detail_part (NULL: any). */
int bf_audit_count(int action, int code, const char *detail_part);

#endif
