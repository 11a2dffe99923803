/*
 * sandbox.c — no new privileges and a seccomp filter for a service (sandbox.h), through
 * libseccomp.
 *
 * Owns: nothing. Never: leaves a service running unfiltered where seccomp exists.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

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
#if defined(__SANITIZE_ADDRESS__)
    int sanitized = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    int sanitized = 1;
#else
    int sanitized = 0;
#endif
#else
    int sanitized = 0;
#endif
    if (!rc && !sanitized) rc = seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(ptrace), 0);
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
