/*
 * law.c — the lawful basis as an information-governance officer writes it: UK GDPR Article 6
 * and 9 conditions ("6(1)(e)", "Article 9(2)(g)") and DPA 2018 Schedule 1 paragraphs, read
 * into the schema's values and written back in words.
 *
 * Owns: the citation tables. Never: guesses — a citation it does not know is -1, not the
 * nearest condition.
 */
#include "law.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof a / sizeof a[0])

typedef struct s_cite {
    int value;
    const char *law, *name, *words;
} s_cite;

static const s_cite s_art6[] = {{1, "6(1)(a)", "consent", "6(1)(a) consent"},
                                {2, "6(1)(c)", "legal_obligation", "6(1)(c) legal obligation"},
                                {3, "6(1)(d)", "vital_interests", "6(1)(d) vital interests"},
                                {4, "6(1)(e)", "public_task", "6(1)(e) public task"}};
static const s_cite s_art9[] = {
    {0, "none", "none", "no special-category data"},
    {1, "9(2)(a)", "explicit_consent", "9(2)(a) explicit consent"},
    {2, "9(2)(b)", "social_protection", "9(2)(b) social protection"},
    {3, "9(2)(c)", "vital_interests", "9(2)(c) vital interests"},
    {4, "9(2)(g)", "substantial_public_interest", "9(2)(g) substantial public interest"},
    {5, "9(2)(h)", "health_social_care", "9(2)(h) health or social care"}};

/* text without spaces, lower case, and without a leading "article"/"art." */
static void s_squash(const char *text, char *out, size_t cap)
{
    size_t n = 0;
    for (; *text && n + 1 < cap; text++)
        if (!isspace((unsigned char)*text)) out[n++] = (char)tolower((unsigned char)*text);
    out[n] = '\0';
    const char *pre[] = {"ukgdprarticle", "gdprarticle", "article", "art."};
    for (size_t i = 0; i < N(pre); i++)
        if (strncmp(out, pre[i], strlen(pre[i])) == 0) {
            memmove(out, out + strlen(pre[i]), strlen(out + strlen(pre[i])) + 1);
            break;
        }
}

/* The value of an Article 6 or 9 citation ("6(1)(e)", "Article 9(2)(g)", "public_task"),
 * or -1. */
static int s_cite_value(const s_cite *t, size_t n, const char *text)
{
    char sq[64];
    s_squash(text, sq, sizeof sq);
    for (size_t i = 0; i < n; i++)
        if (strcmp(sq, t[i].law) == 0 || strcmp(sq, t[i].name) == 0) return t[i].value;
    if (strncmp(sq, "e_", 2) == 0 || strncmp(sq, "a_", 2) == 0 || strncmp(sq, "c_", 2) == 0 ||
        strncmp(sq, "d_", 2) == 0)
        for (size_t i = 0; i < n; i++)
            if (strcmp(sq + 2, t[i].name) == 0) return t[i].value;
    return -1;
}

const char *sh_article6_words(int v)
{
    for (size_t i = 0; i < N(s_art6); i++)
        if (s_art6[i].value == v) return s_art6[i].words;
    return "no Article 6 condition";
}

const char *sh_article9_words(int v)
{
    for (size_t i = 0; i < N(s_art9); i++)
        if (s_art9[i].value == v) return s_art9[i].words;
    return "an unknown Article 9 condition";
}

/* A DPA 2018 Schedule 1 paragraph as written ("18", "paragraph 18", "Schedule 1 paragraph 18",
 * "DPA 2018 Schedule 1 Part 2 paragraph 18", "Sch 1 para 18"): its number and the part it was
 * said to be in (0 when not said); -1 when it is not such a citation. */
int sh_law_paragraph(const char *text, unsigned *para, unsigned *part)
{
    char sq[64];
    s_squash(text, sq, sizeof sq);
    const char *p = sq;
    const char *skip[] = {
        "dataprotectionact2018", "dpa2018", "dpa", ",", "schedule1", "sch.1", "sch1", ","};
    for (size_t i = 0; i < N(skip); i++)
        if (strncmp(p, skip[i], strlen(skip[i])) == 0) p += strlen(skip[i]);
    *part = 0;
    if (strncmp(p, "part", 4) == 0 && p[4] >= '1' && p[4] <= '4') {
        *part = (unsigned)(p[4] - '0');
        p += 5;
        if (*p == ',') p++;
    }
    const char *words[] = {"paragraph", "para.", "para", "paras", "p."};
    for (size_t i = 0; i < N(words); i++)
        if (strncmp(p, words[i], strlen(words[i])) == 0) {
            p += strlen(words[i]);
            break;
        }
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 2 || p[digits]) return -1;
    *para = (unsigned)atoi(p);
    return *para >= 1 && *para <= 37 ? 0 : -1;
}

/* Schedule 1's parts: 1 (paragraphs 1-4: employment, health and social care, public health,
 * research), 2 (5-28: substantial public interest), 3 (29-37: criminal convictions). */
unsigned sh_law_part(unsigned para)
{
    return para <= 4 ? 1 : para <= 28 ? 2 : 3;
}

int sh_law_article6(const char *text)
{
    return s_cite_value(s_art6, N(s_art6), text);
}

int sh_law_article9(const char *text)
{
    return s_cite_value(s_art9, N(s_art9), text);
}

const char *sh_law_article6_unusable(const char *text)
{
    char sq[64];
    s_squash(text, sq, sizeof sq);
    if (strcmp(sq, "6(1)(b)") == 0 || strcmp(sq, "contract") == 0) return "contract";
    if (strcmp(sq, "6(1)(f)") == 0 || strcmp(sq, "legitimate_interests") == 0)
        return "legitimate interests";
    return NULL;
}
