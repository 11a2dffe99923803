/*
 * fuzz_policy.c — libFuzzer target: the policy loader, the enrolment registry loader and the
 * federation directory's (signed with a key made for the run, then loaded and checked), on one
 * YAML file each (the first byte chooses which; the rest is the file).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "directory.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char s_dir[256], s_file[300], s_reg[300], s_fed[300], s_sig[310];
static sh_signkey *s_key;
static uint8_t s_pub[SH_SIGN_PUB_BYTES];

static void s_init(void)
{
    /* on tmpfs when there is one: every input is written once */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s_dir, sizeof s_dir, "%s/sharehub-fuzz-policy-%d", base, (int)getpid());
    mkdir(s_dir, 0700);
    snprintf(s_file, sizeof s_file, "%s/isp.yaml", s_dir);
    snprintf(s_reg, sizeof s_reg, "%s.registry.yaml", s_dir);
    snprintf(s_fed, sizeof s_fed, "%s.directory.yaml", s_dir);
    snprintf(s_sig, sizeof s_sig, "%s.sig", s_fed);
    if (sh_signkey_generate(&s_key)) abort();
    sh_signkey_public(s_key, s_pub);
}

static void s_cleanup(void)
{
    unlink(s_file);
    unlink(s_reg);
    unlink(s_fed);
    unlink(s_sig);
    rmdir(s_dir);
    sh_signkey_destroy(&s_key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0]) {
        s_init();
        atexit(s_cleanup);
    }
    if (size < 1) return 0;
    int registry = data[0] & 1, directory = (data[0] & 3) == 3;
    FILE *f = fopen(directory ? s_fed : registry ? s_reg : s_file, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    if (fclose(f) != 0) abort();
    sh_error err;
    if (directory) {
        sh_directory *d = NULL;
        unlink(s_sig);
        if (sh_directory_sign(s_fed, s_key, &err) == SH_OK) {
            if (sh_directory_load(s_fed, s_pub, &d, &err) != SH_OK) abort(); /* it signed it */
            for (size_t i = 0; i < sh_directory_count(d); i++)
                (void)sh_directory_serving(d, sh_directory_at(d, i)->la_code);
            sh_directory_destroy(&d);
        }
    } else if (registry) {
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
