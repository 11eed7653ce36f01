/*
 * fuzz_jsonl_event.c -- one JSON-lines event (ingest/codec.h, tl_event_from_json), the
 * record of `tally replay --format jsonl`.
 *
 * Input: the line.
 *
 * Asserted (codec.h is the contract):
 *   - the result is 0 or -1, and -1 comes with a message;
 *   - partition and offset are left untouched;
 *   - on 0: the type is in range, dwell_ms was only set from a 32-bit integer, and the
 *     event written back as a JSON object (fuzz_event_to_json: the schema's field names)
 *     decodes to the same event (a double compares equal, or both are NaN; 0 and -0 are
 *     the same number to JSON).
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"
#include "ingest/codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

static int same_double(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size ? size : 1);
    memcpy(line, data, size);
    tl_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.partition = 3;
    ev.offset = 99;
    char err[256] = "";
    int rc = tl_event_from_json(line, size, &ev, fuzz_arena(), err, sizeof(err));
    free(line);
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_CHECK(ev.partition == 3 && ev.offset == 99, "partition/offset changed");
    if (rc != 0) {
        FUZZ_CHECK(err[0] != '\0', "a malformed line without a message");
        tl_arena_reset(fuzz_arena());
        return 0;
    }
    FUZZ_CHECK(ev.type >= 0 && ev.type < TL_EVENT_TYPE_COUNT, "type %d", (int)ev.type);
    /* Non-finite numbers have no JSON form (tl_json_put_double writes null). */
    if ((!ev.has_value || isfinite(ev.value)) && (!ev.has_propensity || isfinite(ev.propensity))) {
        tl_buf b = {0};
        fuzz_event_to_json(&b, &ev);
        tl_event back;
        memset(&back, 0, sizeof(back));
        back.partition = 3;
        back.offset = 99;
        rc = tl_event_from_json(b.data, b.len, &back, fuzz_arena(), err, sizeof(err));
        FUZZ_CHECK(rc == 0, "the event written back does not decode: %s: %s", err, b.data);
        FUZZ_CHECK(!ev.has_value || same_double(ev.value, back.value),
                   "value %.17g came back as %.17g", ev.value, back.value);
        FUZZ_CHECK(!ev.has_propensity || same_double(ev.propensity, back.propensity),
                   "propensity %.17g came back as %.17g", ev.propensity, back.propensity);
        back.value = ev.value;
        back.propensity = ev.propensity;
        const char *field = NULL;
        FUZZ_CHECK(fuzz_events_identical(&ev, &back, &field),
                   "the event written back decodes differently in %s: %s", field, b.data);
        tl_buf_free(&b);
    }
    tl_arena_reset(fuzz_arena());
    return 0;
}
