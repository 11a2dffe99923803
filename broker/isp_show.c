/*
 * isp_show.c — a protocol as an information-governance officer reviews it: Markdown, in words,
 * from the loaded file (`sharehub policy show`, docs/policy-review.md).
 *
 * Owns: nothing past the call. Never: prints what the file does not say, or today's date (the
 * page is the same whenever it is made).
 */
#include <stdio.h>
#include <string.h>

#include "isp_int.h"
#include "law.h"

#define N(a) (sizeof a / sizeof a[0])

static const char *s_org(const sh_registry *reg, const char *code, char *buf, size_t cap)
{
    const sh_org *o = reg ? sh_registry_by_code(reg, code) : NULL;
    snprintf(buf, cap, "%s%s%s", code, o ? " " : "", o ? o->name : "");
    return buf;
}

/* "social care": a sector's name in words, written to f */
static void s_sector(FILE *f, int sector)
{
    for (const char *c = sh_sector_name((sh_sector)sector); *c; c++)
        fputc(*c == '_' ? ' ' : *c, f);
}

static void s_party(FILE *f, const y_party *p, const sh_registry *reg)
{
    char buf[300];
    if (p->organisation) {
        fputs(s_org(reg, p->organisation, buf, sizeof buf), f);
    } else if (p->relationship) {
        static const char *const rel[] = {
            "", "the referrer (who published the referral this answers)",
            "the child's responsible local authority", "the child's school of record"};
        fputs(rel[p->relationship], f);
    } else {
        fputs("every ", f);
        s_sector(f, p->sector);
        fputs(" organisation", f);
        for (unsigned i = 0; i < p->service_types_count; i++)
            fprintf(f, "%s%s", i ? ", " : " of type ", p->service_types[i]);
        for (unsigned i = 0; i < p->localities_count; i++)
            fprintf(f, "%s%s", i ? ", " : " in ", p->localities[i]);
    }
}

static const char *s_consent_rule(int rule)
{
    switch (rule) {
    case CONSENT_RULE_REQUIRED:
        return "required: shared only with consent given";
    case CONSENT_RULE_UNLESS_HARM:
        return "required unless there is a risk of significant harm: shared with consent given, "
               "at level of need 4, or when the event asserts a risk of significant harm "
               "(immediate risk, the priority line)";
    case CONSENT_RULE_HARM_ONLY:
        return "only on a risk of significant harm: at level of need 4, or when the event "
               "asserts the risk; consent alone does not open it";
    default:
        return "not required: the sharing does not rest on consent";
    }
}

void sh_isp_write_markdown(const sh_isp *isp, const sh_registry *reg, FILE *f)
{
    const y_isp *y = isp->y;
    char buf[300];
    static const char *const status[] = {"", "a draft: it permits nothing", "active",
                                         "suspended: it permits nothing"};
    fprintf(f, "## %s\n\n", y->title);
    fprintf(f,
            "`%s`, version %s, in `%s` — %s. Review by %s (it lapses on %s if not renewed). "
            "Lead: %s.\n\n",
            y->id, y->version, strrchr(isp->file, '/') ? strrchr(isp->file, '/') + 1 : isp->file,
            status[y->status], y->review_date, isp->lapse_from,
            s_org(reg, y->lead, buf, sizeof buf));
    if (y->purpose_statement) fprintf(f, "**Why.** %s\n\n", y->purpose_statement);
    fputs("**The law.** ", f);
    for (unsigned i = 0; i < y->gateways_count; i++)
        fprintf(f, "%s%s", i ? "; " : "Gateways: ", y->gateways[i]);
    if (y->gateways_count) fputs(". ", f);
    fprintf(f, "Lawful basis: %s; %s", sh_article6_words(y->lawful_basis->article6),
            sh_article9_words(y->lawful_basis->article9));
    if (y->lawful_basis->paragraph)
        fprintf(f, ", DPA 2018 Schedule 1 paragraph %u", y->lawful_basis->paragraph);
    fputs(".\n\n**For** ", f);
    for (unsigned i = 0; i < y->purposes_count; i++)
        fprintf(f, "%s%s", i ? ", " : "",
                sh_enum_name(&sharehub__v1__purpose__descriptor, y->purposes[i]));
    fputs(". **Events:** ", f);
    for (unsigned i = 0; i < y->event_types_count; i++)
        fprintf(f, "%s%s", i ? ", " : "", sh_event_type_name(y->event_types[i]));
    unsigned lo = y->level_of_need ? y->level_of_need->min : 0;
    unsigned hi = y->level_of_need ? y->level_of_need->max : 4;
    fprintf(f, ". **Levels of need:** %u to %u.\n\n**Consent:** %s.\n\n**Who sends.**\n\n", lo, hi,
            s_consent_rule(y->consent));
    for (unsigned i = 0; i < y->senders_count; i++) {
        fputs("- ", f);
        s_party(f, &y->senders[i], reg);
        fputc('\n', f);
    }
    fputs("\n**Who receives, what they see, how long they keep it.**\n\n"
          "| recipient | sees | keeps it |\n|---|---|---|\n",
          f);
    for (unsigned i = 0; i < y->recipients_count; i++) {
        const y_party *p = &y->recipients[i];
        fputs("| ", f);
        s_party(f, p, reg);
        fputs(" | ", f);
        for (unsigned k = 0; k < p->data_items_count; k++)
            fprintf(f, "%s`%s`", k ? ", " : "", p->data_items[k]);
        if (p->ret.count)
            fprintf(f, " | %s, then %s |\n", p->ret.text, p->ret.review ? "review" : "erase");
        else
            fputs(" | not said |\n", f);
    }
    if (y->controllers_count) fputs("\n**Controllers.** ", f);
    static const char *const roles[] = {"", "controller", "joint controller", "processor"};
    for (unsigned i = 0; i < y->controllers_count; i++) {
        const y_controller *c = &y->controllers[i];
        if (c->organisation)
            fprintf(f, "%s%s (%s)", i ? "; " : "", s_org(reg, c->organisation, buf, sizeof buf),
                    roles[c->role]);
        else {
            fprintf(f, "%severy ", i ? "; " : "");
            s_sector(f, c->sector);
            fprintf(f, " organisation (%s)", roles[c->role]);
        }
    }
    if (y->controllers_count) fputs(".", f);
    if (y->dpia)
        fprintf(f, "\n\n**DPIA.** %s, completed %s.", y->dpia->reference, y->dpia->completed_on);
    if (y->delivery_expiry)
        fprintf(f, "\n\n**Undelivered shares expire** after %s.", y->delivery_expiry);
    fputs("\n\n", f);
    if (!y->signatories_count) {
        fputs("**Not signed.**\n\n", f);
        return;
    }
    fprintf(f,
            "**Signed** (version %s):\n\n| organisation | signs for | role | signed on | "
            "version |\n|---|---|---|---|---|\n",
            y->version);
    for (unsigned i = 0; i < y->signatories_count; i++) {
        const y_signatory *s = &y->signatories[i];
        fprintf(f, "| %s | ", s_org(reg, s->organisation, buf, sizeof buf));
        if (s->signs_for)
            s_sector(f, s->signs_for);
        else
            fputs("itself", f);
        fprintf(f, " | %s%s%s | %s | %s |\n", s->role, s->name ? ", " : "", s->name ? s->name : "",
                s->signed_on ? s->signed_on : "-", s->version ? s->version : "-");
    }
    fputc('\n', f);
}
