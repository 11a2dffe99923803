/*
 * isp_fixture.h — makes a test protocol one the loader accepts as in force: appends what an
 * IG officer's protocol carries beyond who, what and why (purpose statement, gateway,
 * controllers, retention, DPIA) and a signature from every party — the lead, each
 * organisation the text names, and '881' for every sector — for the text's own version.
 *
 * Header-only so that the unit tests, the process rigs and the benchmarks can all use it.
 * Never: used by anything but tests and benchmarks.
 */
#ifndef SHAREHUB_ISP_FIXTURE_H
#define SHAREHUB_ISP_FIXTURE_H

#include <stdio.h>
#include <string.h>

/* The value after each "key" in text (quotes dropped), in turn: returns the next position. */
static inline const char *isp_fixture_next(const char *text, const char *key, char out[16])
{
    const char *p = strstr(text, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == '\'' || *p == '"')
        p++;
    size_t n = 0;
    while (n < 15 && ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.'))
        out[n++] = *p++;
    out[n] = '\0';
    return p;
}

/* Appends the signed tail to the protocol in text (cap bytes in all). */
static inline void isp_fixture_sign(char *text, size_t cap)
{
    char version[16] = "1", codes[32][16];
    size_t ncodes = 0;
    isp_fixture_next(text, "\nversion:", version);
    if (!version[0]) strcpy(version, "1"); /* a test of a bad version */
    const char *keys[] = {"\nlead:", "organisation:"};
    for (int k = 0; k < 2; k++)
        for (const char *p = text;
             ncodes < 32 && (p = isp_fixture_next(p, keys[k], codes[ncodes]));)
            ncodes += codes[ncodes][0] != '\0';
    size_t n = strlen(text);
    if (n && text[n - 1] != '\n' && n + 1 < cap) text[n++] = '\n', text[n] = '\0';
    n += (size_t)snprintf(text + n, n < cap ? cap - n : 0,
                          "purpose_statement: A protocol the tests sign and share under.\n"
                          "gateways: [Children Act 1989 s47]\n"
                          "controllers: [{organisation: '881', role: controller}]\n"
                          "retention: {keep: 6 years, then: erase}\n"
                          "dpia: {reference: TEST-DPIA-1, completed_on: '2026-01-05'}\n"
                          "signatories:\n");
    static const char *const sectors[] = {"education", "health", "social_care", "police",
                                          "local_authority"};
    for (size_t i = 0; i < sizeof sectors / sizeof sectors[0] && n < cap; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "  - {organisation: '881', signs_for: %s, role: Lead, "
                              "signed_on: '2026-01-06', version: '%s'}\n",
                              sectors[i], version);
    for (size_t i = 0; i < ncodes && n < cap; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "  - {organisation: '%s', role: Signatory, signed_on: "
                              "'2026-01-06', version: '%s'}\n",
                              codes[i], version);
}

#endif
