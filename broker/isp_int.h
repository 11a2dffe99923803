/*
 * isp_int.h — the parsed form of an ISP file, shared by the two files that own it: isp.c
 * (reading and checking the file) and policy.c (deciding under it). Nothing else includes it.
 */
#ifndef SHAREHUB_ISP_INT_H
#define SHAREHUB_ISP_INT_H

#include "policy.h"

enum { STATUS_DRAFT = 1, STATUS_ACTIVE = 2, STATUS_SUSPENDED = 3 };
enum { REL_NONE = 0, REL_REFERRER = 1, REL_RESPONSIBLE_LA = 2, REL_CHILD_SCHOOL = 3 };
enum {
    CONSENT_RULE_REQUIRED = 1,
    CONSENT_RULE_UNLESS_HARM = 2,
    CONSENT_RULE_NOT_REQUIRED = 3,
    CONSENT_RULE_HARM_ONLY = 4, /* only on a risk of significant harm; consent does not open it */
};
enum { THEN_ERASE = 1, THEN_REVIEW = 2 };
enum { CONTROLLER = 1, JOINT_CONTROLLER = 2, PROCESSOR = 3 };

typedef struct y_retention {
    char *keep; /* "6 years", "18 months", "90 days" */
    int then;   /* THEN_ERASE or THEN_REVIEW */
} y_retention;

typedef struct y_party {
    char *organisation;
    int sector;
    int relationship;
    char **localities;
    unsigned localities_count;
    char **service_types;
    unsigned service_types_count;
    char **data_items;
    unsigned data_items_count;
    y_retention *retention;
    sh_retention ret; /* parsed: the party's own, else the protocol's */
} y_party;

/* (numbers are read as text and parsed strictly: libcyaml reads "2.1" as 2) */
typedef struct y_basis {
    char *article6_text, *article9_text, *paragraph_text;
    int article6, article9;
    unsigned paragraph;
} y_basis;

typedef struct y_range {
    char *min_text, *max_text;
    unsigned min, max;
} y_range;

typedef struct y_signatory {
    char *organisation; /* the signing organisation */
    int signs_for;      /* a sector it signs for as that sector's lead, or 0 */
    char *role, *name, *signed_on, *version;
} y_signatory;

typedef struct y_controller {
    char *organisation;
    int sector;
    int role; /* CONTROLLER, JOINT_CONTROLLER, PROCESSOR */
} y_controller;

typedef struct y_dpia {
    char *reference, *completed_on;
} y_dpia;

typedef struct y_isp {
    char *id;
    char *version;
    char *title;
    int status;
    char *review_date;
    char *lead;
    char *purpose_statement;
    char **gateways;
    unsigned gateways_count;
    int *purposes;
    unsigned purposes_count;
    int *event_types;
    unsigned event_types_count;
    y_party *senders;
    unsigned senders_count;
    y_party *recipients;
    unsigned recipients_count;
    y_basis *lawful_basis;
    int consent;
    y_range *level_of_need;
    y_controller *controllers;
    unsigned controllers_count;
    y_retention *retention;
    y_dpia *dpia;
    y_signatory *signatories;
    unsigned signatories_count;
    char *delivery_expiry; /* "5d": undelivered shares expire after this; NULL: the broker's */
} y_isp;

struct sh_isp {
    y_isp *y;
    char *file;
    char rule[72];
    char due_from[11], lapse_from[11]; /* review date - 3 months, + 3 months */
    int64_t expiry_ms;                 /* delivery_expiry; 0 when not set */
};

struct sh_policy {
    sh_isp *isps;
    size_t n;
};

#endif
