/*
 * fuzz_user_record.c -- stored user records (engine/state.h, tl_user_decode): the value
 * of a user's key in RocksDB and of the changelog record that restores it, read back by
 * tl_store_get and rendered for GET /v1/users/{id} (features/profile.h,
 * tl_profile_render).
 *
 * Input: the record bytes.
 *
 * Asserted:
 *   - tl_user_decode returns 0 or -1;
 *   - a record that decodes re-encodes (tl_user_encode) to bytes that decode, and whose
 *     own re-encoding is the same bytes (one canonical encoding per record);
 *   - tl_profile_render succeeds exactly when tl_user_decode does, leaves its output as
 *     it was when it fails, and otherwise appends one valid JSON object (lib/json), at
 *     several as-of times (0, a recent time, INT64_MAX) and top-n limits;
 *   - a record that decodes goes through the stages (model/pipeline.h: attribution with
 *     the model, intent and next categories on, then features) with a click and a
 *     purchase at the earliest, a recent and the latest event time tally accepts: both
 *     return TL_OK (and the sanitizers see no overflow of the record's times).
 */
#include "app/config.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/json.h"
#include "engine/state.h"
#include "lib/util.h"
#include "features/interest.h"
#include "features/profile.h"
#include "model/pipeline.h"

static tl_features_cfg fcfg;
static tl_pipeline pipe;

static tl_rc take_interest(void *c, const tl_interest_delta *d) { return (void)c, (void)d, TL_OK; }
static tl_rc take_attribution(void *c, const tl_attribution *a) { return (void)c, (void)a, TL_OK; }
static tl_rc take_credit(void *c, const tl_credit_delta *d) { return (void)c, (void)d, TL_OK; }
static tl_rc take_dlq(void *c, const tl_dlq_record *r) { return (void)c, (void)r, TL_OK; }
static tl_rc take_intent(void *c, const tl_intent_delta *d) { return (void)c, (void)d, TL_OK; }
static tl_rc take_next(void *c, const tl_next_categories *r) { return (void)c, (void)r, TL_OK; }
static tl_rc flushed(void *c, int timeout_ms) { return (void)c, (void)timeout_ms, TL_OK; }
static const tl_sink discard = {.name = "discard",
                                .emit_interest = take_interest,
                                .emit_attribution = take_attribution,
                                .emit_credit = take_credit,
                                .emit_dlq = take_dlq,
                                .emit_intent = take_intent,
                                .emit_next_categories = take_next,
                                .flush = flushed};

/* The decoded record u through both stages: a click, then a purchase, at time t. */
static void through_stages(tl_user *u, int64_t t)
{
    static const tl_event_type type[] = {TL_CLICK, TL_PURCHASE};
    for (int k = 0; k < 2; k++) {
        tl_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.event_id = k ? "fuzz-purchase" : "fuzz-click";
        ev.user_id = u->user_id;
        ev.item_id = "fuzz-item";
        ev.category_id = "fuzz-category";
        ev.channel = "fuzz-channel";
        ev.type = type[k];
        ev.ts = t + k;
        for (int i = 0; i < pipe.n_stages; i++) {
            tl_rc rc =
                pipe.stages[i].process(pipe.stages[i].ctx, NULL, u, &ev, fuzz_arena(), &discard);
            FUZZ_CHECK(rc == TL_OK, "stage %s returned %d at ts %lld", pipe.stages[i].name, (int)rc,
                       (long long)ev.ts);
        }
    }
    tl_arena_reset(fuzz_arena());
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    char err[256];
    tl_config *c = tl_config_new(tl_app_config);
    if (tl_features_cfg_load(&fcfg, c, err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "features", "%s", err);
    static const char *const on[][2] = {{"model.enabled", "true"},
                                        {"markov.enabled", "true"},
                                        {"intent.enabled", "true"},
                                        {"categories.enabled", "true"},
                                        {"model.warmup.examples", "1"}};
    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++)
        if (tl_config_set(c, on[i][0], on[i][1], "fuzz", err, sizeof(err)) != 0)
            fuzz_fail(__FILE__, __LINE__, "config", "%s", err);
    if (tl_pipeline_init(&pipe, c, fuzz_tmpdir(), err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "pipeline", "%s", err);
    tl_config_destroy(c);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *rec = malloc(size ? size : 1);   /* exact size: ASan sees an over-read */
    memcpy(rec, data, size);
    tl_user u;
    memset(&u, 0, sizeof(u));
    int rc = tl_user_decode(&u, rec, size);
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc == 0) {
        tl_buf e1 = {0}, e2 = {0};
        tl_user_encode(&u, &e1);
        tl_user v;
        memset(&v, 0, sizeof(v));
        FUZZ_CHECK(tl_user_decode(&v, e1.data, e1.len) == 0,
                   "a decoded record, re-encoded (%zu bytes), does not decode", e1.len);
        tl_user_encode(&v, &e2);
        FUZZ_CHECK(e1.len == e2.len && !memcmp(e1.data, e2.data, e1.len),
                   "re-encoding is not stable: %zu then %zu bytes", e1.len, e2.len);
        tl_user_clear(&v);
        tl_buf_free(&e1);
        tl_buf_free(&e2);
        static const int64_t at[] = {-TL_TIME_MAX, 1700000000000, TL_TIME_MAX - 1};
        u.user_id = "fuzz-user";
        for (int k = 0; k < 3; k++) through_stages(&u, at[k]);
        u.user_id = NULL;
    }
    tl_user_clear(&u);

    static const int64_t as_of[] = {0, 1700000000000, INT64_MAX};
    static const int top[] = {0, 3, 10};
    for (int k = 0; k < 3; k++) {
        tl_buf out = {0};
        tl_buf_puts(&out, "[");
        size_t before = out.len;
        char err[256] = "";
        int r = tl_profile_render(&fcfg, "fuzz-user", 0, rec, size, as_of[k], top[k], &out, err,
                                  sizeof(err));
        FUZZ_CHECK(r == rc, "tl_profile_render %d, tl_user_decode %d", r, rc);
        if (r != 0) {
            FUZZ_CHECK(out.len == before, "a failed render changed its output");
            FUZZ_CHECK(err[0], "a failed render without a message");
        } else {
            char jerr[128];
            const tl_json *j = tl_json_parse(out.data + before, out.len - before, fuzz_arena(),
                                             jerr, sizeof(jerr));
            FUZZ_CHECK(j && j->type == TL_JSON_OBJECT,
                       "the profile is not a JSON object: %s: %.300s", jerr, out.data + before);
            FUZZ_CHECK(fuzz_str_eq(tl_json_str(tl_json_get(j, "user_id")), "fuzz-user"),
                       "the profile names another user");
        }
        tl_buf_free(&out);
        tl_arena_reset(fuzz_arena());
    }
    free(rec);
    return 0;
}
