/*
 * lint.c — policy review findings.
 *
 * Errors: a lapsed ISP still in the directory (WEISF removes them), an organisation the
 * registry does not know, two ISPs in force that share the same event, purpose, sender and
 * recipient with different data items. Warnings: review due, overdue, draft, suspended, a
 * locality no enrolled organisation has, two ISPs that overlap with the same data items (at a
 * level of need both cover), a gateway sharehub does not know (a citation to check), a
 * signature dated after today.
 */
#include "lint.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The legal gateways a WEISF protocol usually cites, as written in docs/policy.md. Another is
 * not wrong, only worth a second look: a typo here is a typo in the signed protocol. */
static const char *const s_gateways[] = {
    "Children Act 1989 s17",
    "Children Act 1989 s27",
    "Children Act 1989 s47",
    "Children Act 2004 s10",
    "Children Act 2004 s11",
    "Children Act 2004 s12",
    "Children and Families Act 2014 s23",
    "Children and Social Work Act 2017 s16E",
    "Education Act 1996 s19",
    "Education Act 1996 s436A",
    "Education Act 2002 s175",
    "Education (Pupil Registration) (England) Regulations 2006",
    "School Discipline (Pupil Exclusions and Reviews) (England) Regulations 2012",
    "Crime and Disorder Act 1998 s115",
    "Health and Social Care Act 2012 s251B",
    "Care Act 2014 s45",
    "Working Together to Safeguard Children 2023",
    "Keeping Children Safe in Education 2024",
    "Common law duty of confidentiality (implied consent for direct care)",
};

static int s_gateway_known(const char *g)
{
    for (size_t i = 0; i < sizeof s_gateways / sizeof s_gateways[0]; i++)
        if (strcmp(g, s_gateways[i]) == 0) return 1;
    return 0;
}

static int s_in_force(sh_isp_state s)
{
    return s == SH_ISP_ACTIVE || s == SH_ISP_REVIEW_DUE || s == SH_ISP_OVERDUE;
}

static int s_same_items(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++) {
        int found = 0;
        for (size_t j = 0; j < nb && !found; j++)
            found = strcmp(a[i], b[j]) == 0;
        if (!found) return 0;
    }
    return 1;
}

/* First (event type, purpose, sender, recipient) both ISPs cover at a level of need both
 * cover, if any: ISPs for disjoint levels (1-2 and 3-4) never meet. */
static int s_overlap(const sh_isp *a, const sh_isp *b, const sh_registry *reg, char *msg,
                     size_t cap)
{
    unsigned alo, ahi, blo, bhi;
    sh_isp_levels(a, &alo, &ahi);
    sh_isp_levels(b, &blo, &bhi);
    if (ahi < blo || bhi < alo) return 0;
    unsigned lo = alo > blo ? alo : blo, hi = ahi < bhi ? ahi : bhi;
    size_t n = sh_registry_count(reg);
    for (int type = 1; type <= 13; type++)
        for (int purpose = 1; purpose <= 6; purpose++)
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                    const sh_org *from = sh_registry_at(reg, i), *to = sh_registry_at(reg, j);
                    const char *const *ia, *const *ib;
                    size_t na, nb;
                    if (i == j || !sh_isp_covers(a, type, purpose, from, to, &ia, &na) ||
                        !sh_isp_covers(b, type, purpose, from, to, &ib, &nb))
                        continue;
                    int same = s_same_items(ia, na, ib, nb);
                    snprintf(msg, cap,
                             "%s %s: both cover %s (purpose %s, level of need %u-%u) from %s "
                             "to %s, %s",
                             same ? "overlaps with" : "contradicts", sh_isp_rule(b),
                             sh_event_type_name(type),
                             sh_enum_name(&sharehub__v1__purpose__descriptor, purpose), lo, hi,
                             from->code, to->code,
                             same ? "with the same data items" : "with different data items");
                    return same ? 1 : 2;
                }
    return 0;
}

int sh_policy_lint(const sh_policy *p, const sh_registry *reg, int64_t now_ms, sh_lint_fn fn,
                   void *ctx)
{
    int errors = 0;
    char msg[300];
#define REPORT(level, isp, ...)                                                                    \
    do {                                                                                           \
        snprintf(msg, sizeof msg, __VA_ARGS__);                                                    \
        fn(ctx, level, isp, msg);                                                                  \
        errors += (level) == SH_LINT_ERROR;                                                        \
    } while (0)

    for (size_t i = 0; i < sh_policy_count(p); i++) {
        const sh_isp *isp = sh_policy_at(p, i);
        sh_isp_state st = sh_isp_state_at(isp, now_ms);
        const char *rd = sh_isp_review_date(isp);
        switch (st) {
        case SH_ISP_REVIEW_DUE:
            REPORT(SH_LINT_WARNING, isp,
                   "review due: review date %s is within 3 months; "
                   "the lead organisation (%s) should start the review",
                   rd, sh_isp_lead(isp));
            break;
        case SH_ISP_OVERDUE:
            REPORT(SH_LINT_WARNING, isp,
                   "overdue: review date %s has passed; it still "
                   "permits but every share is flagged overdue, and it lapses 3 months after",
                   rd);
            break;
        case SH_ISP_LAPSED:
            REPORT(SH_LINT_ERROR, isp,
                   "lapsed on %s (3 months after its review date %s): it never permits: renew "
                   "it or remove the file",
                   sh_isp_lapse_date(isp), rd);
            break;
        case SH_ISP_DRAFT:
            REPORT(SH_LINT_WARNING, isp, "draft: never permits until approved and active");
            break;
        case SH_ISP_SUSPENDED:
            REPORT(SH_LINT_WARNING, isp, "suspended: never permits");
            break;
        default:
            break;
        }
        const char *const *gw;
        size_t ng = sh_isp_gateways(isp, &gw);
        for (size_t k = 0; k < ng; k++)
            if (!s_gateway_known(gw[k]))
                REPORT(SH_LINT_WARNING, isp,
                       "gateway '%.80s' is not one sharehub knows: check the citation against "
                       "the statute (docs/policy.md lists the usual ones)",
                       gw[k]);
        char today[11];
        time_t t = (time_t)(now_ms / 1000);
        struct tm tm;
        strftime(today, sizeof today, "%Y-%m-%d", gmtime_r(&t, &tm));
        const char *sorg[64], *sdate[64];
        size_t ns = sh_isp_signatures(isp, sorg, sdate, 64);
        for (size_t k = 0; k < ns; k++)
            if (sdate[k] && strcmp(sdate[k], today) > 0)
                REPORT(SH_LINT_WARNING, isp,
                       "%s's signature is dated %s, after today: a protocol is signed when it "
                       "is signed",
                       sorg[k], sdate[k]);
        if (!reg) continue;
        const char *orgs[256], *roles[256];
        size_t no = sh_isp_organisations(isp, orgs, roles, 256);
        for (size_t k = 0; k < no; k++) {
            int dup = 0;
            for (size_t m = 0; m < k && !dup; m++)
                dup = strcmp(orgs[m], orgs[k]) == 0 && strcmp(roles[m], roles[k]) == 0;
            if (!dup && !sh_registry_by_code(reg, orgs[k]))
                REPORT(SH_LINT_ERROR, isp,
                       "organisation %s (%s) is not in the enrolment registry: enrol it, or "
                       "correct the code",
                       orgs[k], roles[k]);
        }
        const char *locs[256];
        sh_sector secs[256];
        size_t nl = sh_isp_localities(isp, locs, secs, 256);
        for (size_t k = 0; k < nl; k++) {
            int known = 0;
            for (size_t m = 0; m < sh_registry_count(reg) && !known; m++) {
                const sh_org *o = sh_registry_at(reg, m);
                known = o->sector == secs[k] && strcmp(o->locality, locs[k]) == 0;
            }
            if (!known)
                REPORT(SH_LINT_WARNING, isp, "no enrolled %s organisation is in locality %s",
                       sh_sector_name(secs[k]), locs[k]);
        }
    }
    for (size_t i = 0; reg && i < sh_policy_count(p); i++) {
        const sh_isp *a = sh_policy_at(p, i);
        if (!s_in_force(sh_isp_state_at(a, now_ms))) continue;
        for (size_t j = i + 1; j < sh_policy_count(p); j++) {
            const sh_isp *b = sh_policy_at(p, j);
            if (!s_in_force(sh_isp_state_at(b, now_ms))) continue;
            char what[300];
            int kind = s_overlap(a, b, reg, what, sizeof what);
            if (kind) REPORT(kind == 2 ? SH_LINT_ERROR : SH_LINT_WARNING, a, "%s", what);
        }
    }
#undef REPORT
    return errors;
}
