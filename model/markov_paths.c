/*
 * markov_paths.c -- reading an aggregated path file in ChannelAttribution's format into a
 * Markov chain (`tally paths`).
 *
 * Input: a header line naming the columns, separated by ';' -- path and
 * total_conversions are required, total_conversion_value and total_null optional, in
 * any order, other columns ignored -- then one path per line:
 *
 *     path;total_conversions;total_conversion_value;total_null
 *     eta > iota > alpha > eta;1;0.244;3
 *
 * Channels are separated by '>' with surrounding blanks trimmed. A field may be wrapped
 * in double quotes (without quotes inside). Blank lines are skipped. Anything else that
 * does not parse -- a missing field, an empty channel, a number that is negative or not
 * a number -- stops the reading with an error naming the line.
 */
#define _XOPEN_SOURCE 700
#include "markov_paths.h"
#include "lib/util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    COL_PATH,
    COL_CONV,
    COL_VALUE,
    COL_NULL,
    NCOLS
};
static const char *const col_names[NCOLS] = {"path", "total_conversions", "total_conversion_value",
                                             "total_null"};

#define MAX_FIELDS 64

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
    *e = '\0';
    return s;
}

/* Splits line at ';' in place into trimmed, unquoted fields; returns their count, or -1
 * when there are more than max. */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *sc = strchr(p, ';');
        if (sc) *sc = '\0';
        if (n == max) return -1;
        char *v = trim(p);
        size_t len = strlen(v);
        if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
            v[len - 1] = '\0';
            v = trim(v + 1);
        }
        f[n++] = v;
        if (!sc) return n;
        p = sc + 1;
    }
}

static int parse_weight(const char *s, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(d) || d < 0) return -1;
    *out = d;
    return 0;
}

int tl_markov_read_paths(tl_markov *m, FILE *in, const char *name, tl_paths_progress_fn progress,
                         void *arg, char *err, size_t errlen)
{
    char *line = NULL, *f[MAX_FIELDS];
    size_t cap = 0;
    const char **states = NULL;
    int states_cap = 0, col[NCOLS] = {-1, -1, -1, -1}, nfields = 0, rc = -1;
    uint64_t lineno = 0;
    ssize_t len;
    uint64_t bytes = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        bytes += (uint64_t)len;
        if ((lineno & 1023) == 0 && progress) progress(arg, lineno, bytes);
        if ((size_t)len != strlen(line)) {
            snprintf(err, errlen, "%s:%" PRIu64 ": a NUL byte in the line", name, lineno);
            goto done;
        }
        char *s = trim(line);
        if (!*s) continue;
        int n = split_fields(s, f, MAX_FIELDS);
        if (nfields == 0) {   /* the header */
            if (n < 0) {
                snprintf(err, errlen, "%s:%" PRIu64 ": more than %d columns", name, lineno,
                         MAX_FIELDS);
                goto done;
            }
            for (int i = 0; i < n; i++)
                for (int c = 0; c < NCOLS; c++) {
                    if (strcmp(f[i], col_names[c]) != 0) continue;
                    if (col[c] >= 0) {
                        snprintf(err, errlen, "%s:%" PRIu64 ": column %s twice", name, lineno,
                                 col_names[c]);
                        goto done;
                    }
                    col[c] = i;
                }
            if (col[COL_PATH] < 0 || col[COL_CONV] < 0) {
                snprintf(err, errlen,
                         "%s:%" PRIu64 ": expected a header naming the columns path and "
                         "total_conversions (and optionally total_conversion_value, "
                         "total_null), separated by ';'",
                         name, lineno);
                goto done;
            }
            nfields = n;
            continue;
        }
        if (n != nfields) {
            if (n < 0)
                snprintf(err, errlen,
                         "%s:%" PRIu64 ": expected %d fields "
                         "separated by ';' as in the header, got more than %d",
                         name, lineno, nfields, MAX_FIELDS);
            else
                snprintf(err, errlen,
                         "%s:%" PRIu64 ": expected %d fields "
                         "separated by ';' as in the header, got %d",
                         name, lineno, nfields, n);
            goto done;
        }
        double w[NCOLS] = {0, 0, 0, 0};
        for (int c = COL_CONV; c < NCOLS; c++) {
            if (col[c] < 0 || parse_weight(f[col[c]], &w[c]) == 0) continue;
            snprintf(err, errlen,
                     "%s:%" PRIu64 ": %s: expected a number >= 0, "
                     "got '%.40s'",
                     name, lineno, col_names[c], f[col[c]]);
            goto done;
        }
        int ns = 0;
        for (char *p = f[col[COL_PATH]];;) {
            char *gt = strchr(p, '>');
            if (gt) *gt = '\0';
            char *ch = trim(p);
            if (!*ch) {
                snprintf(err, errlen, "%s:%" PRIu64 ": %s", name, lineno,
                         ns == 0 && !gt ? "empty path" : "empty channel in the path");
                goto done;
            }
            TL_GROW(states, ns, states_cap, 64);
            states[ns++] = ch;
            if (!gt) break;
            p = gt + 1;
        }
        int e = tl_markov_add_path(m, states, ns, w[COL_CONV], w[COL_NULL], w[COL_VALUE]);
        if (e != TL_MARKOV_OK) {
            snprintf(err, errlen, "%s:%" PRIu64 ": %s", name, lineno, tl_markov_strerror(e));
            goto done;
        }
    }
    if (ferror(in)) {
        snprintf(err, errlen, "%s: read error: %s", name, strerror(errno));
        goto done;
    }
    if (nfields == 0) {
        snprintf(err, errlen, "%s: empty file (no header)", name);
        goto done;
    }
    rc = 0;
done:
    free(line);
    free(states);
    return rc;
}
