/*
 * fuzz_json.c -- the JSON parser (lib/json.h, tl_json_parse), which reads registry
 * responses, JSON-lines input and everything else tally takes as JSON.
 *
 * Input: the text to parse.
 *
 * Asserted, when it parses (json.h is the contract):
 *   - every string is NUL-terminated at its length and valid UTF-8 (tl_utf8_seq), keys
 *     too; a number with is_int holds that exact integer (num == (double)i); counts match
 *     the items; the tree is no deeper than TL_JSON_MAX_DEPTH;
 *   - every member of an object is found by tl_json_get under its key (for keys without
 *     a NUL byte), and the one found is the last member with that key;
 *   - tl_json_write's output parses again, and writing that tree gives the same text
 *     (writing is a fixed point after one round);
 * and when it does not parse, that an error message with a byte offset was given.
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

static void check_utf8(const char *s, size_t len, const char *what)
{
    FUZZ_CHECK(s[len] == '\0', "%s not NUL-terminated at its length %zu", what, len);
    for (size_t i = 0; i < len;) {
        if (s[i] == '\0') {   /* \u0000: allowed, counted by len */
            i++;
            continue;
        }
        size_t n = tl_utf8_seq((const unsigned char *)s + i, len - i);
        FUZZ_CHECK(n > 0, "%s holds invalid UTF-8 at byte %zu", what, i);
        i += n;
    }
}

static void check_tree(const tl_json *j, int depth)
{
    FUZZ_CHECK(j != NULL, "a NULL node");
    FUZZ_CHECK(depth <= TL_JSON_MAX_DEPTH + 1, "depth %d", depth);
    switch (j->type) {
    case TL_JSON_NULL: break;
    case TL_JSON_BOOL: FUZZ_CHECK(j->boolean == 0 || j->boolean == 1, "bool %d", j->boolean); break;
    case TL_JSON_NUMBER:
        if (j->is_int)
            FUZZ_CHECK(j->num == (double)j->i, "is_int %lld but num %.17g", (long long)j->i,
                       j->num);
        break;
    case TL_JSON_STRING:
        FUZZ_CHECK(j->str != NULL, "string without text");
        check_utf8(j->str, j->len, "string");
        FUZZ_CHECK(tl_json_str(j) == j->str, "tl_json_str");
        break;
    case TL_JSON_ARRAY:
    case TL_JSON_OBJECT:
        FUZZ_CHECK(tl_json_len(j) == j->len, "tl_json_len %zu, len %zu", tl_json_len(j), j->len);
        FUZZ_CHECK(tl_json_at(j, j->len) == NULL, "tl_json_at past the end");
        for (size_t i = 0; i < j->len; i++) {
            const tl_json *m = j->items[i];
            FUZZ_CHECK(tl_json_at(j, i) == m, "tl_json_at(%zu)", i);
            check_tree(m, depth + 1);
            if (j->type != TL_JSON_OBJECT) continue;
            FUZZ_CHECK(m->key != NULL, "member %zu without a key", i);
            check_utf8(m->key, m->key_len, "key");
            if (strlen(m->key) != m->key_len) continue;
            const tl_json *got = tl_json_get(j, m->key);
            FUZZ_CHECK(got != NULL, "member \"%s\" not found by its key", m->key);
            size_t last = i;
            for (size_t k = i + 1; k < j->len; k++)
                if (j->items[k]->key_len == m->key_len && !strcmp(j->items[k]->key, m->key))
                    last = k;
            FUZZ_CHECK(got == j->items[last],
                       "tl_json_get(\"%s\") is not the last member with "
                       "that key",
                       m->key);
        }
        break;
    default: FUZZ_CHECK(0, "node type %d", (int)j->type);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    /* An exact-size copy: the parser is given a length, not a terminated string. */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    const tl_json *j = tl_json_parse(text, size, fuzz_arena(), err, sizeof(err));
    free(text);
    if (!j) {
        FUZZ_CHECK(err[0] != '\0', "rejected without a message");
        tl_arena_reset(fuzz_arena());
        return 0;
    }
    check_tree(j, 0);
    tl_buf once = {0}, twice = {0};
    tl_json_write(&once, j);
    const tl_json *j2 = tl_json_parse(once.data, once.len, fuzz_arena(), err, sizeof(err));
    FUZZ_CHECK(j2 != NULL, "tl_json_write's output does not parse: %s: %.*s", err,
               (int)(once.len > 200 ? 200 : once.len), once.data);
    check_tree(j2, 0);
    tl_json_write(&twice, j2);
    FUZZ_CHECK(once.len == twice.len && !memcmp(once.data, twice.data, once.len),
               "writing is not stable: %.*s then %.*s", (int)(once.len > 200 ? 200 : once.len),
               once.data, (int)(twice.len > 200 ? 200 : twice.len), twice.data);
    tl_buf_free(&once);
    tl_buf_free(&twice);
    tl_arena_reset(fuzz_arena());
    return 0;
}
