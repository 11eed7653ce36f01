/*
 * names.h -- the Kafka names a deployment of tally derives from its settings: its
 * consumer group, the changelog topic, the transactional ids, and the topics and group
 * of the roll-ups (docs/operations.md, "Names"). One pure function, so that `tally run`,
 * `tally reset` and the tests name things the same way.
 */
#ifndef TL_APP_NAMES_H
#define TL_APP_NAMES_H

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

#endif
