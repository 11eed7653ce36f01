/*
 * names.c -- the Kafka names of a deployment (names.h).
 */
#include "names.h"

#include <stdarg.h>
#include <stdio.h>

static const char *or_default(const char *v, const char *dflt) { return v && *v ? v : dflt; }

/* Formats one name; 0, or -1 with err when it does not fit. */
static int name(char *out, char *err, size_t errlen, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, TL_NAME_MAX, fmt, ap);
    va_end(ap);
    if (len >= 0 && len < TL_NAME_MAX) return 0;
    snprintf(err, errlen, "%s: the name made from it is %d bytes, more than %d", what, len,
             TL_NAME_MAX - 1);
    return -1;
}

int tl_app_names_make(const tl_app_settings *s, tl_app_names *n, char *err, size_t errlen)
{
    const char *g = or_default(s->group_id, "tally");
    const char *inst = or_default(s->instance_id, "");
    const char *gk = "kafka.group.id";
    if (name(n->group, err, errlen, gk, "%s", g) ||
        (s->changelog_topic && *s->changelog_topic
             ? name(n->changelog, err, errlen, "state.changelog.topic", "%s", s->changelog_topic)
             : name(n->changelog, err, errlen, gk, "%s-users-changelog", g)) ||
        name(n->transactional_id, err, errlen, "instance.id", "tally-%s-%s", g, inst) ||
        name(n->rollup_group, err, errlen, gk, "%s-rollup", g) ||
        name(n->rollup_transactional_id, err, errlen, "instance.id", "tally-%s-%s-rollup", g,
             inst) ||
        name(n->rollup_state, err, errlen, gk, "%s-rollup-state", g) ||
        (s->partials_topic && *s->partials_topic
             ? name(n->partials, err, errlen, "rollup.partials.topic", "%s", s->partials_topic)
             : name(n->partials, err, errlen, gk, "%s-rollup-partials", g)) ||
        name(n->model, err, errlen, gk, "%s-model", g))
        return -1;
    return 0;
}
