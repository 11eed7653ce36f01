/*
 * report.h -- attribution summed per channel, channel group or category, per method and
 * window (docs/report.md): `tally report` and GET /v1/attribution.
 */
#ifndef TL_APP_REPORT_H
#define TL_APP_REPORT_H

#include <stddef.h>
#include <stdio.h>

/* The report itself (docs/report.md), for the command and for `run`'s /v1/attribution:
 * the options as `tally report` takes them (NULL: the default), over the records of in
 * (replay JSON lines or `tally consume` lines; name names it in messages). Writes the
 * answer to out and names skipped lines on msgs (NULL: nowhere). 0; 1 when nothing could
 * be reported (no record, unreadable input); 2 when an option is bad. err says why. */
typedef struct tl_report_args {
    const char *by, *window, *from, *to, *methods, *format, *min, *spend;
    const char *groups;   /* rollup.channel.groups */
    FILE *spend_file;     /* the spend CSV already open (spend then only names it), or NULL */
} tl_report_args;
/* The options alone: 0, or 2 with err (as tl_report_run would refuse them). */
int tl_report_check(const tl_report_args *a, char *err, size_t errlen);
int tl_report_run(const tl_report_args *a, FILE *in, const char *name, FILE *out, FILE *msgs,
                  char *err, size_t errlen);

#endif
