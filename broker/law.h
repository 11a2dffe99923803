/*
 * law.h — UK GDPR Article 6 and 9 conditions and DPA 2018 Schedule 1 paragraphs, as written in
 * protocols and on the command line, and in words for explanations.
 *
 * Owns: nothing past the call. Never: maps an unknown citation to a known one.
 */
#ifndef SHAREHUB_LAW_H
#define SHAREHUB_LAW_H

/* The schema's Article6 value of "6(1)(e)", "Article 6(1)(e)", "public_task" or
 * "e_public_task" (spaces and case ignored); -1 when it is none of the conditions the schema
 * has (6(1)(a), (c), (d), (e)). */
int sh_law_article6(const char *text);

/* "contract" or "legitimate interests" when text cites 6(1)(b) or 6(1)(f), else NULL. */
const char *sh_law_article6_unusable(const char *text);

/* The schema's Article9 value of "none", "9(2)(g)", "substantial_public_interest" ...; -1. */
int sh_law_article9(const char *text);

/* A DPA 2018 Schedule 1 paragraph ("18", "paragraph 18", "Schedule 1 paragraph 18",
 * "DPA 2018 Schedule 1 Part 2 paragraph 18", "Sch 1 para 18"): 0 with *para (1-37) and *part
 * (the part the text named, 0 when none); -1 when it is not such a citation. */
int sh_law_paragraph(const char *text, unsigned *para, unsigned *part);

/* The part of Schedule 1 a paragraph is in: 1 (1-4), 2 (5-28), 3 (29-37). */
unsigned sh_law_part(unsigned para);

/* "6(1)(e) public task", "9(2)(g) substantial public interest", "no special-category data". */
const char *sh_article6_words(int article6);
const char *sh_article9_words(int article9);

#endif
