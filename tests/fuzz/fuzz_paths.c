/*
 * fuzz_paths.c -- Markov path files (ChannelAttribution's aggregated format) as
 * `tally paths` reads them.
 *
 * The parser is tl_markov_read_paths (model/markov_paths.c); the harness runs it the way
 * the command does, through the command's files (tally_fuzz_cmd in fuzz.cmake), so the
 * solve and the JSON written after it are fuzzed too: tl_cmd_paths("paths --input FILE --order K --output FILE.json"), K from
 * 1 to TL_MARKOV_MAX_ORDER by the input's size (so every order is fuzzed): the file is
 * parsed into the Markov model (model/markov.h), the removal effects are solved, the
 * table is printed (to /dev/null here) and the JSON written.
 *
 * Input: the path file.
 *
 * Asserted:
 *   - the command exits 0 or 1 (never 2, a usage error: the arguments are right);
 *   - on 0 the JSON output parses, has one object per channel with a non-empty name and
 *     numbers (or null for a non-finite one), a removal effect in [0, 1], a
 *     conversion probability in [0, 1], and, when the totals are of ordinary size,
 *     first-touch and last-touch credits that each add up to the total conversions.
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
#include "model/markov.h"

static char in_path[1024], out_path[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    snprintf(in_path, sizeof(in_path), "%s/path_data.csv", fuzz_tmpdir());
    snprintf(out_path, sizeof(out_path), "%s/paths.json", fuzz_tmpdir());
    if (!freopen("/dev/null", "w", stdout)) fuzz_fail(__FILE__, __LINE__, "stdout", "/dev/null");
    return 0;
}

static double num(const tl_json *o, const char *key)
{
    const tl_json *j = tl_json_get(o, key);
    FUZZ_CHECK(j && (j->type == TL_JSON_NUMBER || j->type == TL_JSON_NULL), "%s is not a number",
               key);
    return j->type == TL_JSON_NUMBER ? j->num : NAN;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_file(in_path, data, size);
    char order[2] = {(char)('1' + size % TL_MARKOV_MAX_ORDER), '\0'};
    char *argv[] = {"paths", "--input", in_path, "--order", order, "--output", out_path, NULL};
    const tl_json *j = fuzz_run_json_cmd(tl_cmd_paths, 7, argv, out_path);
    if (!j) return 0;
    const tl_json *ch = tl_json_get(j, "channels");
    FUZZ_CHECK(ch && ch->type == TL_JSON_ARRAY, "no channels array");
    double conv = num(j, "conversions"), p = num(j, "conversion_probability");
    FUZZ_CHECK(isnan(p) || (p >= 0 && p <= 1 + 1e-9), "conversion probability %.17g", p);
    double first = 0, last = 0;
    for (size_t i = 0; i < tl_json_len(ch); i++) {
        const tl_json *c = tl_json_at(ch, i);
        const char *name = tl_json_str(tl_json_get(c, "channel"));
        FUZZ_CHECK(name && *name, "channel %zu has no name", i);
        double re = num(c, "removal_effect");
        FUZZ_CHECK(isnan(re) || (re >= -1e-9 && re <= 1 + 1e-9),
                   "channel %s: removal effect "
                   "%.17g",
                   name, re);
        first += num(c, "first_touch");
        last += num(c, "last_touch");
    }
    if (isfinite(conv) && conv < 1e12 && conv >= 1e-6 && isfinite(first) && isfinite(last)) {
        FUZZ_CHECK(close_to(first, conv),
                   "first-touch credits add up to %.17g of %.17g "
                   "conversions",
                   first, conv);
        FUZZ_CHECK(close_to(last, conv),
                   "last-touch credits add up to %.17g of %.17g "
                   "conversions",
                   last, conv);
    }
    tl_arena_reset(fuzz_arena());
    return 0;
}
