/*
 * names.h -- the Kafka names a deployment of tally derives from its settings: its
 * consumer group, the changelog topic, the transactional ids, and the topics and group
 * of the roll-ups (docs/operations.md, "Names"). One pure function, so that `tally run`,
 * `tally reset` and the tests name things the same way.
 */
#ifndef TL_APP_NAMES_H
#define TL_APP_NAMES_H

#include "lib/config.h"

#include <stddef.h>

#define TL_NAME_MAX 512   /* longest name kept, with its '\0' */

typedef struct tl_app_settings {
    const char *group_id;          /* kafka.group.id (or kafka.consumer.group.id); NULL or
                                    * "": "tally" */
    const char *changelog_topic;   /* state.changelog.topic; NULL or "": derived */
    const char *partials_topic;    /* rollup.partials.topic; NULL or "": derived */
    const char *instance_id;       /* instance.id, as configured or kept in state.dir */
} tl_app_settings;

typedef struct tl_app_names {
    char group[TL_NAME_MAX];              /* the input's consumer group */
    char changelog[TL_NAME_MAX];          /* <group>-users-changelog */
    char transactional_id[TL_NAME_MAX];   /* tally-<group>-<instance.id> */
    char rollup_group[TL_NAME_MAX];       /* <group>-rollup */
    char rollup_transactional_id[TL_NAME_MAX];   /* tally-<group>-<instance.id>-rollup */
    char rollup_state[TL_NAME_MAX];       /* <group>-rollup-state */
    char partials[TL_NAME_MAX];           /* <group>-rollup-partials */
    char model[TL_NAME_MAX];              /* <group>-model: the shared model's updates */
} tl_app_names;

/* Fills n from s. 0, or -1 with err naming the setting when a name would be longer than
 * TL_NAME_MAX - 1 bytes. */
int tl_app_names_make(const tl_app_settings *s, tl_app_names *n, char *err, size_t errlen);

/* The consumer group (kafka.group.id, kafka.consumer.group.id, or tally's default "tally"). */
const char *tl_app_group(const tl_config *c);
/* The deployment's Kafka names (app/names.h) from c and the resolved instance id. 0 or -1
 * (err: a name too long). */
int tl_app_names_of(const tl_config *c, const char *instance_id, tl_app_names *n, char *err,
                    size_t errlen);
/* This instance's id when instance.id is not set: the one kept in <state_dir>/instance.id,
 * made (a random UUID) and written there on first use, so that it stays the same across
 * restarts of one state directory and differs between two state directories on one host.
 * Creates state_dir if needed. 0, or -1 with err (state.dir cannot be created, read or
 * written, or the file holds something else than an id). */
int tl_app_instance_id(const char *state_dir, char *out, size_t outlen, char *err, size_t errlen);

#endif
