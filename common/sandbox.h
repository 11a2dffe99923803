/*
 * sandbox.h — privilege separation (docs/security.md, "Privilege separation"): a helper that
 * reads untrusted input is started as a fresh program, and drops new privileges and the
 * system calls it does not need. The broker's network process (broker/net.c) and the
 * daemons' probe process (common/probe.c) call sh_sandbox_confine(); sharehub-api
 * (api/main.c), which opens sockets to its agent as it runs, sh_sandbox_service().
 *
 * Owns: nothing. Never: says a filter is on when it is not; runs without one where the kernel
 * has seccomp and the filter was refused; lets a helper inherit a descriptor, or a byte of
 * memory, it was not given.
 */
#ifndef SHAREHUB_SANDBOX_H
#define SHAREHUB_SANDBOX_H

#include <sys/types.h>

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

/* Starts prog (NULL: this program, /proc/self/exe) as a fresh process with argv (NULL-ended),
 * the descriptors keep[0..nkeep) as 3, 4, ... (nkeep at most 4) and no other above stderr. It
 * is killed when this process ends (PR_SET_PDEATHSIG). Its pid, or -1 with errno. */
pid_t sh_spawn(const char *prog, const char *const argv[], const int *keep, int nkeep);

/* For a process that serves only the sockets it holds already: PR_SET_NO_NEW_PRIVS, then an
 * allowlist on every thread — reading, writing, accepting and polling sockets, memory, clocks,
 * signals to itself, ending. Opening a file gets EACCES; anything else (exec, fork, socket,
 * connect, bind, ptrace, kill) kills the process, or in sanitizer builds gets EPERM, so a
 * sanitizer's report is not cut short. Where seccomp does not exist, only the first
 * (*filtered 0). SH_E_IO naming the step. */
sh_err sh_sandbox_confine(int *filtered, sh_error *err) SH_WUR;

#endif
