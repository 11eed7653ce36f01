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
 *     several as-of times (0, a recent time, INT64_MAX) and top-n limits.
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

static tl_features_cfg fcfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    char err[256];
    tl_config *c = tl_config_new(tl_app_config);
    if (tl_features_cfg_load(&fcfg, c, err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "features", "%s", err);
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
