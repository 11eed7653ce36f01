/*
 * fuzz_report.c -- the records `tally report` reads (JSON lines: a replay's output, or
 * `tally consume` lines with the record under "value").
 *
 * The reader is static in app/report.c (under tl_report_run, which the command and
 * GET /v1/attribution call), so this harness runs the command itself (linking tally_fuzz_cmd, as fuzz_paths does):
 * tl_cmd_report("report --input FILE --format json --output FILE.json --by B --window W"),
 * the dimension and window chosen by the input's first byte; with its bit 7 set, what
 * follows the first NUL byte is a spend file (--spend; `date,channel,spend` CSV).
 *
 * Asserted:
 *   - the command exits 0 or 1 (never 2: the arguments are right);
 *   - on 0 the output parses as JSON, with a rows array whose every row has a non-empty
 *     id, purchases at most its touchpoints, and numbers (or null for a sum that is not
 *     finite) for every method listed.
 * The command's messages on stderr go to /dev/null while it runs (fuzz_run_json_cmd).
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "lib/arena.h"
#include "lib/json.h"

static char in_path[1024], out_path[1024], spend_path[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    snprintf(in_path, sizeof(in_path), "%s/records.jsonl", fuzz_tmpdir());
    snprintf(out_path, sizeof(out_path), "%s/report.json", fuzz_tmpdir());
    snprintf(spend_path, sizeof(spend_path), "%s/spend.csv", fuzz_tmpdir());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const by[] = {"channel", "channel_group", "category"};
    static const char *const window[] = {"all", "day", "hour"};
    unsigned sel = size ? data[0] : 0;
    data += size ? 1 : 0;
    size -= size ? 1 : 0;
    /* With bit 7, the bytes after the first NUL are a spend file (channel or group, window
     * all or day, so that --spend is allowed). */
    const uint8_t *nul = sel & 0x80 ? memchr(data, 0, size) : NULL;
    size_t records = nul ? (size_t)(nul - data) : size;
    fuzz_write_file(in_path, data, records);
    char *argv[] = {"report",
                    "--input",
                    in_path,
                    "--format",
                    "json",
                    "--output",
                    out_path,
                    "--by",
                    (char *)by[sel % 3],
                    "--window",
                    (char *)window[(sel / 3) % 3],
                    "--spend",
                    spend_path,
                    NULL};
    int argc = 11;
    if (nul) {
        fuzz_write_file(spend_path, nul + 1, size - records - 1);
        argv[8] = (char *)by[sel % 2];
        argv[10] = (char *)window[(sel / 3) % 2];
        argc = 13;
    }
    const tl_json *j = fuzz_run_json_cmd(tl_cmd_report, argc, argv, out_path);
    if (!j) return 0;
    const tl_json *rows = tl_json_get(j, "rows"), *methods = tl_json_get(j, "methods");
    FUZZ_CHECK(rows && rows->type == TL_JSON_ARRAY && methods && methods->type == TL_JSON_ARRAY,
               "no rows or methods array");
    for (size_t i = 0; i < tl_json_len(rows); i++) {
        const tl_json *r = tl_json_at(rows, i);
        const char *id = tl_json_str(tl_json_get(r, "id"));
        FUZZ_CHECK(id && *id, "row %zu has no id", i);
        const tl_json *p = tl_json_get(r, "purchases"), *t = tl_json_get(r, "touchpoints");
        FUZZ_CHECK(p && t && p->type == TL_JSON_NUMBER && t->type == TL_JSON_NUMBER &&
                       p->num <= t->num,
                   "row %s: purchases and touchpoints", id);
        const tl_json *conv = tl_json_get(r, "conversions"), *spend = tl_json_get(r, "spend");
        FUZZ_CHECK(!nul ||
                       (spend &&
                        (spend->type == TL_JSON_NULL ||
                         (spend->type == TL_JSON_NUMBER && spend->num >= 0))),
                   "row %s: spend", id);
        for (size_t k = 0; k < tl_json_len(methods); k++) {
            const tl_json *c = tl_json_get(conv, tl_json_str(tl_json_at(methods, k)));
            FUZZ_CHECK(c && (c->type == TL_JSON_NUMBER || c->type == TL_JSON_NULL),
                       "row %s: method %zu is not a number", id, k);
        }
    }
    tl_arena_reset(fuzz_arena());
    return 0;
}
