/*
 * sandbox.c — helper processes started as fresh programs, no new privileges, and seccomp
 * filters through libseccomp (sandbox.h).
 *
 * Owns: nothing. Never: leaves a process running unfiltered where seccomp exists; lets a
 * helper inherit a descriptor it was not given.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

/* 1 in an AddressSanitizer build: LeakSanitizer stops the threads with ptrace as the process
 * exits, and a sanitizer's report must not be cut short by a kill */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

int sh_seccomp_present(void)
{
    unsigned action = SECCOMP_RET_KILL_PROCESS;
    return !(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0 && errno == ENOSYS);
}

sh_err sh_sandbox_service(int *filtered, sh_error *err)
{
    static const int denied[] = {
        SCMP_SYS(execve),
        SCMP_SYS(execveat),
        SCMP_SYS(process_vm_readv),
        SCMP_SYS(process_vm_writev),
        SCMP_SYS(fork),
        SCMP_SYS(vfork),
        SCMP_SYS(mount),
        SCMP_SYS(umount2),
        SCMP_SYS(pivot_root),
        SCMP_SYS(chroot),
        SCMP_SYS(setns),
        SCMP_SYS(unshare),
        SCMP_SYS(bpf),
        SCMP_SYS(perf_event_open),
        SCMP_SYS(init_module),
        SCMP_SYS(finit_module),
        SCMP_SYS(delete_module),
        SCMP_SYS(kexec_load),
        SCMP_SYS(reboot),
        SCMP_SYS(swapon),
        SCMP_SYS(swapoff),
        SCMP_SYS(keyctl),
        SCMP_SYS(add_key),
        SCMP_SYS(request_key),
        SCMP_SYS(userfaultfd),
        SCMP_SYS(open_by_handle_at),
        SCMP_SYS(personality),
    };
    *filtered = 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return sh_error_set(err, SH_E_IO, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (!sh_seccomp_present()) return SH_OK;
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    int rc = f ? seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1) : -ENOMEM;
    for (size_t i = 0; !rc && i < sizeof denied / sizeof denied[0]; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, denied[i], 0);
    /* (LeakSanitizer stops the process's threads with ptrace as it exits: a sanitizer build
     * keeps it) */
    if (!rc && !SANITIZED) rc = seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(ptrace), 0);
    /* sockets: only AF_UNIX (to its agent); its listening sockets are open already */
    /* spelt out: SCMP_A0() leaves datum_b to a partial initialiser clang rejects */
    const struct scmp_arg_cmp not_unix = {
        .arg = 0, .op = SCMP_CMP_NE, .datum_a = AF_UNIX, .datum_b = 0};
    if (!rc) rc = seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(socket), 1, not_unix);
    if (!rc) rc = seccomp_load(f);
    seccomp_release(f);
    if (rc) return sh_error_set(err, SH_E_IO, "seccomp filter: %s", strerror(-rc));
    *filtered = 1;
    return SH_OK;
}

pid_t sh_spawn(const char *prog, const char *const argv[], const int *keep, int nkeep)
{
    if (nkeep < 0 || nkeep > 4) {
        errno = EINVAL;
        return -1;
    }
    /* this program as the kernel names it (valgrind answers for its client, where exec of
     * /proc/self/exe would start valgrind) */
    char self[PATH_MAX];
    if (!prog) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) return -1;
        self[n] = '\0';
        prog = self;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid != 0) return pid; /* (-1 with errno from fork) */
    /* the child: only async-signal-safe calls until exec */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    int moved[4];
    for (int i = 0; i < nkeep; i++) /* above the slots first, so none overwrites another */
        if ((moved[i] = fcntl(keep[i], F_DUPFD, 3 + nkeep)) < 0) _exit(127);
    for (int i = 0; i < nkeep; i++) /* (dup2 leaves FD_CLOEXEC off the copy) */
        if (dup2(moved[i], 3 + i) < 0) _exit(127);
    unsigned first = 3U + (unsigned)nkeep;
    if (syscall(SYS_close_range, first, ~0U, 0U) != 0)
        for (int fd = (int)first; fd < 65536; fd++)
            close(fd);
    execv(prog, (char *const *)argv);
    _exit(127);
}

sh_err sh_sandbox_confine(int *filtered, sh_error *err)
{
    static const int allowed[] = {
        SCMP_SYS(read),
        SCMP_SYS(write),
        SCMP_SYS(readv),
        SCMP_SYS(writev),
        SCMP_SYS(recvfrom),
        SCMP_SYS(sendto),
        SCMP_SYS(recvmsg),
        SCMP_SYS(sendmsg),
        SCMP_SYS(close),
        SCMP_SYS(poll),
        SCMP_SYS(ppoll),
        SCMP_SYS(epoll_wait),
        SCMP_SYS(epoll_pwait),
        SCMP_SYS(epoll_ctl),
        SCMP_SYS(accept),
        SCMP_SYS(accept4),
        SCMP_SYS(getsockopt),
        SCMP_SYS(setsockopt),
        SCMP_SYS(getsockname),
        SCMP_SYS(getpeername),
        SCMP_SYS(shutdown),
        SCMP_SYS(fcntl),
        SCMP_SYS(futex),
        SCMP_SYS(mmap),
        SCMP_SYS(munmap),
        SCMP_SYS(mremap),
        SCMP_SYS(brk),
        SCMP_SYS(madvise),
        SCMP_SYS(mprotect),
        SCMP_SYS(clock_gettime),
        SCMP_SYS(clock_nanosleep),
        SCMP_SYS(nanosleep),
        SCMP_SYS(gettimeofday),
        SCMP_SYS(getpid),
        SCMP_SYS(gettid),
        SCMP_SYS(getrandom),
        SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigreturn),
        SCMP_SYS(sched_yield),
        SCMP_SYS(exit),
        SCMP_SYS(exit_group),
        SCMP_SYS(eventfd2),
        SCMP_SYS(restart_syscall),
        SCMP_SYS(tgkill),
        SCMP_SYS(getuid),
        SCMP_SYS(uname),
        SCMP_SYS(sched_getaffinity),
        SCMP_SYS(rseq),
        SCMP_SYS(getppid),
        SCMP_SYS(mlock),
        SCMP_SYS(sigaltstack),
        SCMP_SYS(munlock),
    };
    uint32_t deny = SANITIZED                        ? SCMP_ACT_ERRNO(EPERM)
                    : getenv("SHAREHUB_SECCOMP_LOG") ? SCMP_ACT_LOG
                                                     : SCMP_ACT_KILL_PROCESS;
    *filtered = 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return sh_error_set(err, SH_E_IO, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (!sh_seccomp_present()) return SH_OK;
    scmp_filter_ctx f = seccomp_init(deny);
    int rc = f ? 0 : -ENOMEM;
    /* every thread: ZeroMQ's I/O threads may be running already */
    if (!rc) rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; !rc && i < sizeof allowed / sizeof allowed[0]; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed[i], 0);
    /* (glibc's malloc asks /proc whether it may shrink a thread's heap: let it hear no, as for
     * any file) */
    if (!rc) rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    if (!rc) rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
#ifdef SHAREHUB_FAULTS
    /* the tests' fault points are files whose presence sh_fault() asks after (fault.h) */
    if (!rc) rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 0);
    if (!rc) rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(stat), 0);
#endif
    if (!rc) rc = seccomp_load(f);
    seccomp_release(f);
    if (rc) return sh_error_set(err, SH_E_IO, "seccomp filter: %s", strerror(-rc));
    *filtered = 1;
    return SH_OK;
}
