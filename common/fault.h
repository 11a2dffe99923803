/*
 * fault.h — fault injection for the tests: a named point fails while a file of that name
 * exists in the directory $SHAREHUB_FAULT_DIR. Compiled only into builds with the test suite
 * (SHAREHUB_FAULTS); elsewhere sh_fault() is the constant 0 and costs nothing.
 *
 * Points: "audit_append" (sh_audit_append fails with SH_E_IO), "txn_commit" (a write
 * transaction's commit fails with SH_E_DISK_FULL, nothing written); the write-ahead log's
 * (wal.c, store_wal.c): "wal_append" (an append fails with SH_E_DISK_FULL), "wal_torn" (half
 * a record is written, then the process SIGKILLs itself), "wal_synced" (SIGKILL right after a
 * record is durable), "wal_checkpoint" (a checkpoint fails with SH_E_DISK_FULL), "wal_always"
 * (a store opened with SH_STORE_WAL_LOAD sends every batch through the log).
 *
 * Owns: nothing. Never: present in a release build.
 */
#ifndef SHAREHUB_FAULT_H
#define SHAREHUB_FAULT_H

#ifdef SHAREHUB_FAULTS
/* 1 while $SHAREHUB_FAULT_DIR/<point> exists, else 0. */
int sh_fault(const char *point);
#else
#define sh_fault(point) 0
#endif

#endif
