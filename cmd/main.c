/*
 * main.c -- `tally COMMAND ...`: dispatch to the subcommands (cmd.h).
 */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tally COMMAND [options]    (tally COMMAND --help for each)\n"
    "\n"
    "commands:\n"
    "  run      consume events from Kafka, publish interest and attribution deltas\n"
    "  replay   the same stages over a file, output as JSON lines\n"
    "  produce  load a file of events into a Kafka topic as framed Avro\n"
    "  gen      write synthetic events (canonical CSV)\n"
    "  demo     an in-process broker, generated events, the whole pipeline, a summary\n"
    "  config   list every configuration key, or check a configuration file\n"
    "  paths    Markov-chain attribution of a ChannelAttribution path file\n"
    "  reset    start a group over: offsets, changelog and local state deleted\n"
    "  consume  print a topic's records as JSON lines, Avro decoded\n"
    "  report   attribution per channel and method: table, CSV, JSON or an HTML chart\n"
    "  version  print the version\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"run", tl_cmd_run},       {"replay", tl_cmd_replay}, {"produce", tl_cmd_produce},
        {"gen", tl_cmd_gen},       {"demo", tl_cmd_demo},     {"config", tl_cmd_config},
        {"paths", tl_cmd_paths},   {"reset", tl_cmd_reset},   {"consume", tl_cmd_consume},
        {"report", tl_cmd_report},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("tally %s (%s)\n", TALLY_VERSION, tl_cmd_allocator());
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tally: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
