/*
 * names.c -- the Kafka names of a deployment (names.h): tl_app_names_make, pure, and
 * what feeds it from a configuration (the group, the instance id kept in state.dir).
 */
#include "names.h"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

/* [A-Za-z0-9._-]{1,64}: what a transactional.id part may hold without surprises. */
static int valid_id(const char *s, size_t n)
{
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return 0;
    return 1;
}

int tl_app_instance_id(const char *state_dir, char *out, size_t outlen, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/instance.id", state_dir);
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state.dir %s: cannot create it: %s", state_dir, strerror(errno));
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f) {
        char line[128] = "";
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        line[n] = 0;
        if (!valid_id(line, n) || n >= outlen) {
            snprintf(err, errlen,
                     "%s: not an instance id (1 to 64 of A-Z a-z 0-9 . _ -); "
                     "remove it to get a new one, or set instance.id",
                     path);
            return -1;
        }
        memcpy(out, line, n + 1);
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return -1;
    }
    unsigned char b[16];
    FILE *r = fopen("/dev/urandom", "r");
    int got = r && fread(b, 1, sizeof(b), r) == sizeof(b);
    if (r) fclose(r);
    if (!got) {
        snprintf(err, errlen, "cannot read /dev/urandom for a new instance id: %s",
                 strerror(errno));
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* a version 4 (random) UUID */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char id[40];
    snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%s\n", id) > 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "state.dir %s: cannot write %s: %s", state_dir, path,
                 strerror(errno));
        remove(tmp);
        return -1;
    }
    snprintf(out, outlen, "%s", id);
    return 0;
}

const char *tl_app_group(const tl_config *c)
{
    return tl_config_kafka(c, "group.id")         ? tl_config_kafka(c, "group.id")
        : tl_config_kafka(c, "consumer.group.id") ? tl_config_kafka(c, "consumer.group.id")
                                                  : "tally";
}

int tl_app_names_of(const tl_config *c, const char *instance_id, tl_app_names *n, char *err,
                    size_t errlen)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    tl_app_settings s = {.group_id = tl_app_group(c),
                         .changelog_topic = ac.changelog_topic,
                         .partials_topic = ac.partials_topic,
                         .instance_id = instance_id};
    return tl_app_names_make(&s, n, err, errlen);
}
