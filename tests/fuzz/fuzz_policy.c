/*
 * fuzz_policy.c — libFuzzer target: the policy loader and the enrolment registry loader, on
 * one YAML file each (the first byte chooses which; the rest is the file).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char s_dir[256], s_file[300], s_reg[300];

static void s_init(void)
{
    /* on tmpfs when there is one: every input is written once */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s_dir, sizeof s_dir, "%s/sharehub-fuzz-policy-%d", base, (int)getpid());
    mkdir(s_dir, 0700);
    snprintf(s_file, sizeof s_file, "%s/isp.yaml", s_dir);
    snprintf(s_reg, sizeof s_reg, "%s.registry.yaml", s_dir);
}

static void s_cleanup(void)
{
    unlink(s_file);
    unlink(s_reg);
    rmdir(s_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0]) {
        s_init();
        atexit(s_cleanup);
    }
    if (size < 1) return 0;
    int registry = data[0] & 1;
    FILE *f = fopen(registry ? s_reg : s_file, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    if (fclose(f) != 0) abort();
    sh_error err;
    if (registry) {
        sh_registry *r = NULL;
        if (sh_registry_load(s_reg, &r, &err) == SH_OK) sh_registry_destroy(&r);
    } else {
        sh_policy *p = NULL;
        if (sh_policy_load(s_dir, &p, &err) == SH_OK) {
            for (size_t i = 0; i < sh_policy_count(p); i++)
                (void)sh_isp_state_at(sh_policy_at(p, i), 1767225600000);
            sh_policy_destroy(&p);
        }
    }
    return 0;
}
