/* audit_fixture.h — the shared fixture of test_audit.c and test_audit_format.c: a store in a
 * temporary directory with its master key, its audit log and a signing key. */
#ifndef SHAREHUB_AUDIT_FIXTURE_H
#define SHAREHUB_AUDIT_FIXTURE_H

#include "audit.h"

extern char *dir, *signpath;
extern sh_key *master, *akey;
extern sh_signkey *signer;
extern sh_store *store;
extern sh_audit *audit;

/* Opens the store, derives its audit key and opens the log with checkpoints every `every`. */
void audit_fixture_open(uint32_t every);
void audit_fixture_close(void);
void audit_fixture_setup(void);
void audit_fixture_teardown(void);

#endif
