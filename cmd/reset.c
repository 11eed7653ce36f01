/*
 * reset.c -- `tally reset`: makes the next `tally run` of a group start over from the
 * beginning of its input, as Kafka Streams' application reset tool does: the group's
 * committed offsets go (the group is deleted), the changelog topic goes, and the local
 * state under state.dir goes (but its instance.id, so the instance keeps its identity).
 *
 * Without --execute it only says what it would do. The group must have no member: a
 * running instance would commit its offsets again (the broker refuses to delete a
 * non-empty group, and reset stops there, before deleting anything).
 */
#include "cmd.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tally reset [-c FILE] [-X key=value ...] [--execute]\n"
    "\n"
    "Makes the next tally run of the group reprocess its input from the beginning:\n"
    "deletes the consumer group kafka.group.id (its committed offsets), the changelog\n"
    "topic (state.changelog.topic, default <group>-users-changelog) and the local state\n"
    "in state.dir (every partition store and model.bin; instance.id is kept). Every\n"
    "instance of the group must be stopped. Output topics are left as they are: delete\n"
    "or rename them too if consumers must not see records twice.\n"
    "\n"
    "  -c FILE, -X key=value   the configuration the instances run with\n"
    "  --execute               do it (without it: only say what would be done)\n";

#define ADMIN_TIMEOUT_MS 30000

/* Runs one admin request on q and returns its result event (NULL after a timeout). */
static rd_kafka_event_t *wait_result(rd_kafka_queue_t *q)
{
    return rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
}

/* Deletes the consumer group (topic 0) or the topic (topic 1) name: 0 deleted, 1 there was
 * none, -1 with a message in err. */
static int delete_one(rd_kafka_t *rk, int topic, const char *name, char *err, size_t errlen)
{
    const char *what = topic ? "topic" : "group";
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(
        rk, topic ? RD_KAFKA_ADMIN_OP_DELETETOPICS : RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_DeleteGroup_t *g = NULL;
    rd_kafka_DeleteTopic_t *t = NULL;
    if (topic) {
        t = rd_kafka_DeleteTopic_new(name);
        rd_kafka_AdminOptions_set_operation_timeout(o, ADMIN_TIMEOUT_MS, NULL, 0);
        rd_kafka_DeleteTopics(rk, &t, 1, o, q);
    } else {
        g = rd_kafka_DeleteGroup_new(name);
        rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, NULL, 0);
        rd_kafka_DeleteGroups(rk, &g, 1, o, q);
    }
    rd_kafka_event_t *ev = wait_result(q);
    int rc = -1;
    if (!ev) {
        snprintf(err, errlen, "deleting %s %s: no answer within %d s", what, name,
                 ADMIN_TIMEOUT_MS / 1000);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "deleting %s %s: %s", what, name, rd_kafka_event_error_string(ev));
    } else {
        /* the one result's error code and message */
        size_t n = 0;
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *msg = NULL;
        if (topic) {
            const rd_kafka_topic_result_t **r =
                rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
            if (n == 1) code = rd_kafka_topic_result_error(r[0]);
            if (code) msg = rd_kafka_topic_result_error_string(r[0]);
        } else {
            const rd_kafka_group_result_t **r =
                rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
            const rd_kafka_error_t *e = n == 1 ? rd_kafka_group_result_error(r[0]) : NULL;
            if (e) code = rd_kafka_error_code(e);
            if (code) msg = rd_kafka_error_string(e);
        }
        rd_kafka_resp_err_t absent =
            topic ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND;
        if (!topic && code == RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP)
            snprintf(err, errlen, "group %s still has members: stop every instance of it first",
                     name);
        else if (code && code != absent)
            snprintf(err, errlen, "deleting %s %s: %s", what, name, msg);
        else rc = code ? 1 : 0;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    if (g) rd_kafka_DeleteGroup_destroy(g);
    if (t) rd_kafka_DeleteTopic_destroy(t);
    rd_kafka_queue_destroy(q);
    return rc;
}

static int delete_topic(rd_kafka_t *rk, const char *topic, char *err, size_t errlen)
{
    int rc = delete_one(rk, 1, topic, err, errlen);
    /* The broker deletes in the background: a run started right after would find the
     * topic still there, marked for deletion, and could not create it afresh. */
    for (int i = 0; rc == 0 && i < ADMIN_TIMEOUT_MS / 200 && tl_app_topic_exists(rk, topic) != 0;
         i++)
        tl_sleep_ms(200);
    return rc;   /* 0 deleted, 1 there was none, -1 error */
}

/* Removes every entry of dir but instance.id; counts them in *n. -1 when dir cannot be
 * read (other than not existing). */
static int clear_state_dir(const char *dir, int execute, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "instance.id"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (execute) tl_rmtree(path);
        (*n)++;
    }
    closedir(d);
    return 0;
}

int tl_cmd_reset(int argc, char **argv)
{
    int execute = 0;
    const tl_cmd_opt opts[] = {{"--execute", NULL, &execute}, {NULL, NULL, NULL}};
    tl_config *c = tl_cmd_kafka_config_parse(argc, argv, usage, opts);
    if (!c) return 2;
    const char *dir = tl_app_cfg_of(c).state_dir;
    char err[1024];
    tl_app_names names;
    if (tl_app_names_of(c, "", &names, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally: configuration error: %s\n", err);
        tl_config_destroy(c);
        return 2;
    }
    const char *group = names.group, *changelog = names.changelog;
    int n_local = 0;
    if (!execute) {
        if (clear_state_dir(dir, 0, &n_local) != 0) {
            fprintf(stderr, "tally: state.dir %s: %s\n", dir, strerror(errno));
            tl_config_destroy(c);
            return 1;
        }
        fprintf(stderr,
                "reset (dry run; add --execute): would delete the consumer group %s, "
                "the changelog topic %s and %d entries of %s (instance.id kept)\n",
                group, changelog, n_local, dir);
        tl_config_destroy(c);
        return 0;
    }
    int rc = 1;
    rd_kafka_conf_t *conf = tl_app_kafka_conf(c, "producer");
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)) : NULL;
    if (!rk) {
        if (conf) {
            rd_kafka_conf_destroy(conf);
            fprintf(stderr, "tally: kafka: %s\n", err);
        }
        goto done;
    }
    int g = delete_one(rk, 0, group, err, sizeof(err));
    if (g < 0) {
        fprintf(stderr, "tally: %s; nothing was deleted\n", err);
        goto done;
    }
    int tp = delete_topic(rk, changelog, err, sizeof(err));
    if (tp < 0) {
        fprintf(stderr, "tally: %s (the group %s was deleted)\n", err, group);
        goto done;
    }
    if (clear_state_dir(dir, 1, &n_local) != 0) {
        fprintf(stderr, "tally: state.dir %s: %s (the group and the changelog were deleted)\n", dir,
                strerror(errno));
        goto done;
    }
    fprintf(stderr,
            "reset: consumer group %s %s, changelog topic %s %s, %d entries of %s "
            "removed (instance.id kept); the next run starts from the beginning\n",
            group, g ? "did not exist" : "deleted", changelog, tp ? "did not exist" : "deleted",
            n_local, dir);
    rc = 0;
done:
    if (rc != 0 && rk) tl_app_kafka_why_failed(c);
    if (rk) rd_kafka_destroy(rk);
    tl_config_destroy(c);
    return rc;
}
