/*
 * ident.c — identifier check algorithms and synthetic generators.
 *
 * Owns: NHS Modulus 11, the UPN check letter, code shapes, UUIDv7 generation.
 * Never: logs or echoes an identifier; treats a valid shape as a known organisation.
 */
#include "ident.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "crypto.h"

static bool s_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool s_upper_alnum(char c)
{
    return s_digit(c) || (c >= 'A' && c <= 'Z');
}

/* Modulus 11 check digit for the first nine digits, or -1 when it would be 10 (invalid). */
static int s_nhs_check_digit(const char *d)
{
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (d[i] - '0') * (10 - i);
    int check = 11 - (sum % 11);
    if (check == 11) check = 0;
    return check == 10 ? -1 : check;
}

sh_err sh_nhs_check(const char *s)
{
    if (!s) return SH_E_BAD_NHS_NUMBER;
    for (int i = 0; i < SH_NHS_LEN; i++)
        if (!s_digit(s[i])) return SH_E_BAD_NHS_NUMBER;
    if (s[SH_NHS_LEN] != '\0') return SH_E_BAD_NHS_NUMBER;
    if (strcmp(s, "0000000000") == 0) return SH_E_BAD_NHS_NUMBER;
    int check = s_nhs_check_digit(s);
    return (check >= 0 && check == s[9] - '0') ? SH_OK : SH_E_BAD_NHS_NUMBER;
}

sh_err sh_nhs_normalise(const char *in, char out[SH_NHS_LEN + 1])
{
    size_t n = 0;
    out[0] = '\0';
    if (!in) return SH_E_BAD_NHS_NUMBER;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-') continue;
        if (!s_digit(*p) || n == SH_NHS_LEN) return SH_E_BAD_NHS_NUMBER;
        out[n++] = *p;
    }
    out[n] = '\0';
    return sh_nhs_check(out);
}

static const char s_upn_letters[] = "ABCDEFGHJKLMNPQRTUVWXYZ"; /* 23: no I, O, S */

static int s_upn_letter_value(char c)
{
    const char *p = c ? strchr(s_upn_letters, c) : NULL;
    return p ? (int)(p - s_upn_letters) : -1;
}

char sh_upn_check_letter(const char twelve[12])
{
    int sum = 0;
    for (int i = 0; i < 12; i++) {
        int v;
        if (s_digit(twelve[i]))
            v = twelve[i] - '0';
        else if (i == 11 && (v = s_upn_letter_value(twelve[i])) >= 0)
            ; /* temporary UPN: the letter takes its table value */
        else
            return 0;
        sum += v * (i + 2);
    }
    return s_upn_letters[sum % 23];
}

sh_err sh_upn_check(const char *s)
{
    if (!s || strlen(s) != SH_UPN_LEN) return SH_E_BAD_UPN;
    char want = sh_upn_check_letter(s + 1);
    if (want == 0 || want != s[0]) return SH_E_BAD_UPN;
    char la[4] = {s[1], s[2], s[3], '\0'};
    return sh_la_code_check(la) == SH_OK ? SH_OK : SH_E_BAD_UPN;
}

sh_err sh_la_code_check(const char *s)
{
    if (!s || !s_digit(s[0]) || !s_digit(s[1]) || !s_digit(s[2]) || s[3] != '\0')
        return SH_E_BAD_LA_CODE;
    int v = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return (v >= 201 && v <= 938) ? SH_OK : SH_E_BAD_LA_CODE;
}

static const struct {
    const char *code, *name;
} s_las[] = {
    {"881", "Essex"},         {"882", "Southend-on-Sea"}, {"883", "Thurrock"},
    {"884", "Herefordshire"}, {"873", "Cambridgeshire"},  {"935", "Suffolk"},
    {"919", "Hertfordshire"}, {"320", "Waltham Forest"},  {"317", "Redbridge"},
    {"311", "Havering"},
};

const char *sh_la_name(const char *code)
{
    if (!code) return NULL;
    for (size_t i = 0; i < sizeof s_las / sizeof s_las[0]; i++)
        if (strcmp(s_las[i].code, code) == 0) return s_las[i].name;
    return NULL;
}

sh_err sh_org_code_check(const char *s)
{
    if (!s || !s[0]) return SH_E_BAD_ORG_CODE;
    size_t n = 0;
    for (; s[n]; n++)
        if (n == SH_ORG_MAX || !s_upper_alnum(s[n])) return SH_E_BAD_ORG_CODE;
    return SH_OK;
}

sh_err sh_la_child_id_check(const char *s)
{
    if (!s || !s[0]) return SH_E_BAD_LA_CHILD_ID;
    for (size_t n = 0; s[n]; n++) {
        char c = s[n];
        bool ok = s_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-';
        if (n == SH_LA_CHILD_MAX || !ok) return SH_E_BAD_LA_CHILD_ID;
    }
    return SH_OK;
}

/* UUIDv7 state: the last millisecond used and the 12-bit counter within it. */
static pthread_mutex_t s_uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t s_uuid_ms = -1;
static unsigned s_uuid_counter;

sh_err sh_event_id_new(uint8_t out[SH_EVENT_ID_LEN])
{
    uint8_t rnd[10];
    if (sh_random(rnd, sizeof rnd) != SH_OK) return SH_E_IO;
    int64_t now = sh_clock_ms();

    pthread_mutex_lock(&s_uuid_lock);
    if (now > s_uuid_ms) {
        s_uuid_ms = now;
        s_uuid_counter = ((unsigned)rnd[8] << 8 | rnd[9]) & 0x3ff; /* leave headroom */
    } else if (++s_uuid_counter > 0xfff) {
        /* 4096 ids in one millisecond, or the clock went back: borrow the next ms. */
        s_uuid_ms++;
        s_uuid_counter = 0;
    }
    int64_t ms = s_uuid_ms;
    unsigned counter = s_uuid_counter;
    pthread_mutex_unlock(&s_uuid_lock);

    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (counter >> 8));
    out[7] = (uint8_t)(counter & 0xff);
    memcpy(out + 8, rnd, 8);
    out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
    return SH_OK;
}

sh_err sh_event_id_check(const uint8_t *id, size_t len)
{
    if (!id || len != SH_EVENT_ID_LEN) return SH_E_BAD_EVENT_ID;
    if ((id[6] >> 4) != 7 || (id[8] & 0xc0) != 0x80) return SH_E_BAD_EVENT_ID;
    return SH_OK;
}

int64_t sh_event_id_time_ms(const uint8_t id[SH_EVENT_ID_LEN])
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id[i];
    return (int64_t)ms;
}

char *sh_event_id_format(const uint8_t id[SH_EVENT_ID_LEN], char out[SH_EVENT_ID_STR])
{
    /* 8-4-4-4-12 */
    static const int groups[] = {4, 2, 2, 2, 6};
    char *p = out;
    for (int g = 0, at = 0; g < 5; at += groups[g], g++) {
        if (g) *p++ = '-';
        sh_hex_encode(id + at, (size_t)groups[g], p);
        p += 2 * groups[g];
    }
    return out;
}

sh_err sh_event_id_parse(const char *s, uint8_t out[SH_EVENT_ID_LEN])
{
    if (!s || strlen(s) != 36) return SH_E_BAD_EVENT_ID;
    int n = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i++] != '-') return SH_E_BAD_EVENT_ID;
            continue;
        }
        int hi = sh_hex_digit(s[i]), lo = sh_hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) return SH_E_BAD_EVENT_ID;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return sh_event_id_check(out, SH_EVENT_ID_LEN);
}

uint64_t sh_rng_next(uint64_t *rng)
{
    uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sh_nhs_synthetic_at(uint64_t index, char out[SH_NHS_LEN + 1])
{
    /* digits 4-8 are a permutation of index / 9 (7919 is prime to 10^5); digit 9 is the
     * (index % 9)-th of the nine values that leave a valid check digit: for fixed digits 1-8,
     * each value of digit 9 (weight 2, invertible mod 11) gives a different sum mod 11, so
     * exactly one of the ten makes the check digit 10 */
    index %= SH_SYNTH_INDEXES;
    unsigned a = (unsigned)((index / 9 * 7919 + 4321) % 100000), j = (unsigned)(index % 9);
    snprintf(out, SH_NHS_LEN + 1, "999%05u00", a);
    for (int d9 = 0, k = 0; d9 <= 9; d9++) {
        out[8] = (char)('0' + d9);
        int check = s_nhs_check_digit(out);
        if (check < 0) continue;
        if ((unsigned)k++ == j) {
            out[9] = (char)('0' + check);
            return;
        }
    }
}

void sh_nhs_synthetic(uint64_t *rng, char out[SH_NHS_LEN + 1])
{
    sh_nhs_synthetic_at(sh_rng_next(rng) % SH_SYNTH_INDEXES, out);
}

void sh_upn_synthetic_at(uint64_t index, const char *la, char out[SH_UPN_LEN + 1])
{
    /* 9 digits after the LA code: a permutation of index (1000003 is prime to 10^9) */
    unsigned v = (unsigned)((index % 1000000000u * 1000003u + 12345u) % 1000000000u);
    snprintf(out, SH_UPN_LEN + 1, "?%.3s%09u", la, v);
    out[0] = sh_upn_check_letter(out + 1);
}

void sh_upn_synthetic(uint64_t *rng, const char *la, char out[SH_UPN_LEN + 1])
{
    sh_upn_synthetic_at(sh_rng_next(rng) % 1000000000u, la, out);
}

/* 10 digits once spaces and hyphens are dropped: shaped like an NHS number. */
static int s_nhs_shaped(const char *in)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-') continue;
        if (!s_digit(*p) || ++n > SH_NHS_LEN) return 0;
    }
    return n == SH_NHS_LEN;
}

/* A letter, 11 digits, then a digit or a letter: shaped like a UPN. */
static int s_upn_shaped(const char *in)
{
    if (strlen(in) != SH_UPN_LEN ||
        !((in[0] >= 'A' && in[0] <= 'Z') || (in[0] >= 'a' && in[0] <= 'z')))
        return 0;
    for (int i = 1; i < 12; i++)
        if (!s_digit(in[i])) return 0;
    return s_digit(in[12]) || (in[12] >= 'A' && in[12] <= 'Z') || (in[12] >= 'a' && in[12] <= 'z');
}

sh_err sh_ident_classify(const char *in, char *canon, size_t cap, const char **kind,
                         const char **why)
{
    static const char *const nhs_why =
        "not an NHS number: 10 digits whose last is the modulus 11 check digit of the first 9 "
        "(this one fails that check, or is not 10 digits)";
    static const char *const upn_why =
        "not a UPN: the check letter does not match the 12 characters after it, or the "
        "3-digit LA code is not one in 201-938, or a character is out of place";
    static const char *const la_why = "not a local-authority child id: 1-32 of A-Z a-z 0-9 -";
    *kind = NULL;
    *why = NULL;
    if (!in || !*in) {
        *why = "empty: an NHS number, a UPN or a local-authority child id";
        return SH_E_BAD_LA_CHILD_ID;
    }
    int forced = 0; /* 1 nhs, 2 upn, 3 la */
    if (strncmp(in, "nhs:", 4) == 0)
        forced = 1, in += 4;
    else if (strncmp(in, "upn:", 4) == 0)
        forced = 2, in += 4;
    else if (strncmp(in, "la:", 3) == 0)
        forced = 3, in += 3;
    char nhs[SH_NHS_LEN + 1];
    if (forced == 1 || (!forced && s_nhs_shaped(in))) {
        if (sh_nhs_normalise(in, nhs) != SH_OK) {
            *why = nhs_why;
            return SH_E_BAD_NHS_NUMBER;
        }
        snprintf(canon, cap, "%s", nhs);
        *kind = "nhs";
        return SH_OK;
    }
    if (forced == 2 || (!forced && s_upn_shaped(in))) {
        if (sh_upn_check(in) != SH_OK) {
            *why = upn_why;
            return SH_E_BAD_UPN;
        }
        snprintf(canon, cap, "%s", in);
        *kind = "upn";
        return SH_OK;
    }
    if (sh_la_child_id_check(in) != SH_OK) {
        *why = forced ? la_why
                      : "not an NHS number (10 digits), a UPN (13 characters) or a "
                        "local-authority child id (1-32 of A-Z a-z 0-9 -)";
        return SH_E_BAD_LA_CHILD_ID;
    }
    snprintf(canon, cap, "%s", in);
    *kind = "la";
    return SH_OK;
}

const char *sh_ident_kind(const char *in, char *canon, size_t cap)
{
    const char *kind, *why;
    return sh_ident_classify(in, canon, cap, &kind, &why) == SH_OK ? kind : NULL;
}
