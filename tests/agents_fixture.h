/* agents_fixture.h — the broker and three agents under test (agents_fixture.c). Each suite
 * using it declares TestSuite(NAME, .init = af_setup, .fini = af_teardown, .timeout = 90). */
#ifndef SHAREHUB_AGENTS_FIXTURE_H
#define SHAREHUB_AGENTS_FIXTURE_H

#include <json-c/json.h>
#include <sys/types.h>

#include "broker.h"
#include "synth.h"

enum { HUB, SCHOOL, HEALTH, NAGENT };
extern const char *const af_org[NAGENT];
extern const char *const af_role[NAGENT];
extern char af_pub[NAGENT][41], af_sec[NAGENT][41], af_bpub[41];
extern char *af_dir, af_ep[64];
extern pid_t af_broker_pid, af_agent_pid[NAGENT];
extern sh_broker_config af_bcfg;
extern void *af_zctx;

#define CONCERN_JSON                                                                               \
    "{\"op\":\"publish\",\"user\":\"dsl-1\",\"purpose\":\"safeguarding\",\"event\":{"              \
    "\"event_type\":\"safeguarding_concern\",\"purpose\":\"safeguarding\",\"consent\":"            \
    "\"not_sought_risk_of_harm\",\"level_of_need\":4,\"lawful_basis\":{\"article6\":"              \
    "\"e_public_task\",\"article9\":\"2g_substantial_public_interest\","                           \
    "\"dpa_schedule1_paragraph\":18},\"child\":{\"nhs_number\":\"%s\",\"upn\":\"%s\","             \
    "\"given_name\":\"Child001\",\"family_name\":\"ZZTEST-0001\",\"date_of_birth\":\"2015-03-"     \
    "01\","                                                                                        \
    "\"responsible_la\":\"881\"},\"safeguarding_concern\":{\"category\":\"neglect\","              \
    "\"narrative\":\"SYNTHETIC-NARRATIVE-MARKER: no food at home for days\",\"reported_by\":{"     \
    "\"org_code\":\"8819990\",\"role\":\"Designated Safeguarding Lead\"}}}}"

/* path = the test's directory + "/" + name, malloc'd. */
char *af_path(const char *name);
void af_write(const char *name, const char *text, mode_t mode);
void af_start_broker(void);
/* Starts agent i and waits until its socket exists. */
void af_start_agent(int i);
/* Stops a process; 0 for a clean exit, else its wait status. af_stop asserts a clean one. */
int af_halt(pid_t *pid);
void af_stop(pid_t *pid);
/* One request to agent i's local socket; the parsed reply (json_object_put it). */
json_object *af_call(int i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int af_ok(json_object *o);
const char *af_get(json_object *o, const char *key);
/* Polls agent i's inbox until an item of type arrives; that item (put it). */
json_object *af_wait_for(int i, const char *type);
/* Waits until every agent reports itself connected. */
void af_wait_ready(void);
void af_setup(void);
void af_teardown(void);
/* The Essex case through the three agents: a concern, the hub's decision, a CP plan for
 * cp_child, an attendance, each checked where it lands. */
void af_play_case(const sh_synth_child *cp_child);
/* Grants the broker's and the agents' audit keys to an auditor's keyring ("broker", "hub",
 * "school", "health"); returns its path (free it). */
char *af_keyring(void);

#endif
