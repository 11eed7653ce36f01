/*
 * config_cmd.c -- `tally config list [--markdown]` and `tally config check -c FILE`.
 */
#include "app/config.h"
#include "lib/kafka.h"
#include "cmd.h"
#include "app/kafka_app.h"
#include "app/schemas.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tally config list [--markdown]\n"
    "       tally config check [-c FILE] [-X key=value ...]\n"
    "\n"
    "list   prints every configuration key with its type, default, range and meaning\n"
    "       (keys starting with kafka. go to librdkafka and are not listed)\n"
    "check  loads the file, TALLY_* environment and -X keys and finds tally's schema\n"
    "       files; exit 0 if valid (saying where the schemas are), else the first error\n"
    "       with its file:line\n";

int tl_cmd_config(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "list")) {
        int md = argc > 2 && !strcmp(argv[2], "--markdown");
        tl_config_list(tl_app_config, stdout, md);
        tl_kafka_settings_list(stdout, md);
        return 0;
    }
    if (!strcmp(argv[1], "check")) {
        tl_config *c = tl_cmd_config_load(argc - 1, argv + 1, usage, NULL, NULL);
        if (!c) return 1;
        char path[2400], err[256];   /* says where it looked when it fails */
        int found = tl_app_schema_path(c, TL_EVENT_SCHEMA, path, sizeof(path)) == 0;
        if (found && tl_app_subject_strategy(c, err, sizeof(err)) < 0) {
            fprintf(stderr, "tally: configuration error: %s\n", err);
            found = 0;
        }
        if (found) printf("configuration ok; tally's reader schema: %s\n", path);
        tl_config_destroy(c);
        return found ? 0 : 1;
    }
    return tl_cmd_usage_error(usage, "unknown config command '%s'", argv[1]);
}
