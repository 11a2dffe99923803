/*
 * sandbox.h — what the processes that read untrusted input drop once they have started: new
 * privileges, and system calls they do not need (docs/security.md, "Privilege separation").
 * The broker's network process (broker/net.c) keeps an allowlist of its own; sharehub-api
 * (api/main.c) calls sh_sandbox_service().
 *
 * Owns: nothing. Never: says a filter is on when it is not; runs without one where the kernel
 * has seccomp and the filter was refused.
 */
#ifndef SHAREHUB_SANDBOX_H
#define SHAREHUB_SANDBOX_H

#include "error.h"

/* 1 when this kernel filters system calls (seccomp(2)); 0 where the call does not exist at
 * all (ENOSYS: an old kernel, or valgrind, which does not emulate it). */
int sh_seccomp_present(void);

/* For a service that has opened its sockets and files: PR_SET_NO_NEW_PRIVS, then a filter
 * on every thread that kills the process for starting a program, tracing or reading another
 * process, making a socket other than AF_UNIX, or administering the system (mount, modules,
 * namespaces, keys, BPF, reboot). Where seccomp does not exist, only the first (*filtered 0).
 * SH_E_IO naming the step. */
sh_err sh_sandbox_service(int *filtered, sh_error *err) SH_WUR;

#endif
