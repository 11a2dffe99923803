/*
 * cli.h — the command-line conventions every sharehub program keeps (docs/cli.md): exit
 * codes, options, help, and error messages in words or, with --json, in JSON.
 *
 *   exit 0  success (verified, found, done)
 *   exit 1  the operation failed, or what was checked is bad (tampering found, an invalid
 *           identifier); the message says which file, key or value
 *   exit 2  usage: an unknown option, a missing value, a bad number, an argument too many
 *
 * Owns: parsing argv against a command's table of options. Never: exits the process (the
 * caller returns the code), or accepts an option it does not know or a number it cannot read.
 */
#ifndef SHAREHUB_CLI_H
#define SHAREHUB_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

enum { SH_EXIT_OK = 0, SH_EXIT_FAILED = 1, SH_EXIT_USAGE = 2 };

typedef enum {
    CLI_FLAG,   /* --json: sets *(int *)out to 1 */
    CLI_TEXT,   /* --user U: *(const char **)out = U (the last one given wins) */
    CLI_NUMBER, /* --since N: *(long *)out = N, a whole number in [lo, hi] */
    CLI_MANY,   /* --endpoint EP, repeatable: appended to *(cli_list *)out */
    CLI_REST,   /* --stores A B C: the arguments after it go to *(cli_list *)out */
} cli_kind;

typedef struct cli_list {
    const char **v;
    size_t n, cap; /* cap: the most that may be given */
} cli_list;

typedef struct cli_opt {
    const char *name; /* "--user" */
    cli_kind kind;
    void *out;
    long lo, hi; /* CLI_NUMBER */
} cli_opt;

/* A command: its name as typed ("sharehub audit replay"), its usage text (synopsis lines
 * then what it does: printed by --help), its options, and how many positional arguments it
 * takes. */
typedef struct cli_cmd {
    const char *name;
    const char *usage;
    const cli_opt *opts; /* ended by an entry with a NULL name */
    size_t min_pos, max_pos;
    const char *args; /* the positional arguments' names, space-separated ("STORE EVENT-ID") */
} cli_cmd;

#define CLI_RUN (-1) /* cli_parse: go on and run the command */

/* Parses argv[0..argc) (the words after the command's name) against c. "--opt VALUE" and
 * "--opt=VALUE" both work; "-" alone is a positional argument; after "--" every word is one.
 * "-h" and "--help" print c->usage on stdout and return SH_EXIT_OK. A usage error prints one
 * line naming the option or argument at fault ("unknown option '--bogus'", "option '--since'
 * needs a whole number, not 'abc'", "extra argument 'x'") and a pointer to --help on stderr —
 * as JSON when "--json" is among the words — and returns SH_EXIT_USAGE. Otherwise stores the
 * values, the positionals into pos[0..*npos) (pos holds max_pos), and returns CLI_RUN. */
int cli_parse(const cli_cmd *c, int argc, char **argv, const char **pos, size_t *npos);

/* A usage error found after parsing (a required option missing, two that exclude each other):
 * reported as cli_parse reports its own. Returns SH_EXIT_USAGE. */
int cli_usage(const cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether errors are to be written as JSON (set by cli_parse when --json was given). */
int cli_json(void);

/* An error of command c, on stderr: "<name>: E<code> <NAME>: <message>" (code 0: just the
 * message), or with --json {"ok":false,"code":N,"name":"SH_E_...","message":"..."}. Returns
 * exit. */
int cli_error(const cli_cmd *c, int exit, sh_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* cli_error for an sh_error: exit 1 with its code and detail. */
int cli_fail(const cli_cmd *c, const sh_error *e);

/* Reads the file at path ("-": standard input) into a new NUL-terminated buffer (*out, of
 * *len bytes before the NUL; free()). A directory, a file over max bytes ("too large (limit
 * 1 MiB)" for 1 MiB), or one that cannot be read is reported as cli_error does, naming the
 * file, with code (the caller's: the size limit's error), and its exit (1) is returned;
 * CLI_RUN when the file was read. */
int cli_read_file(const cli_cmd *c, const char *path, size_t max, sh_err too_large, char **out,
                  size_t *len);

/* Writes s to f as a JSON string, with its quotes. */
void cli_json_string(FILE *f, const char *s);

/* A daemon's signals: SIGTERM and SIGINT (and SIGHUP, with hup) call on_signal; SIGPIPE is
 * ignored (a peer gone is an error from the write, not a death). 0, or -1 with errno set. */
int cli_signals(void (*on_signal)(int), int hup);

/* The whole number in text, in [lo, hi]; 0, or -1 when text is anything else. */
int cli_number(const char *text, long lo, long hi, long *out);

#endif
