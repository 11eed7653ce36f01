/*
 * nextcat.h -- a user's next-category view: the categories the user's next event is most
 * likely in, with their probabilities, the user's embedding, and the categories like the
 * user's (model/categories.h makes it; docs/attribution.md, "Next categories").
 *
 * The view last published for a user is kept in its record (tl_user.nc, as these bytes),
 * so that the next one is published only when it moved, and so that /v1/users/{id} shows
 * it without the model:
 *
 *   u8 format 1 | svarint ts | f32 p_other
 *   | u8 n | n * (str category_id | f32 p)            most likely first, n <= TL_NC_TOP_MAX
 *   | u8 n_like | n_like * (str category_id | f32 affinity)               n_like <= TL_NC_LIKE_MAX
 *   | u8 dim | dim * f32                              the embedding, dim <= TL_NC_DIM_MAX
 *
 * str is a varint length and that many bytes; f32 IEEE 754 little-endian.
 */
#ifndef TL_NEXTCAT_H
#define TL_NEXTCAT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define TL_NC_TOP_MAX 8
#define TL_NC_LIKE_MAX 3
#define TL_NC_DIM_MAX 64

typedef struct tl_nc_entry {
    const char *id;     /* not NUL-terminated when decoded: len bytes */
    uint32_t len;
    float p;            /* a probability, or for a "like" entry the affinity u . o (> 0) */
} tl_nc_entry;

typedef struct tl_nc_view {
    int64_t ts;
    float p_other;      /* of a category not listed */
    int n, n_like, dim;
    tl_nc_entry cat[TL_NC_TOP_MAX];
    tl_nc_entry like[TL_NC_LIKE_MAX];
    float emb[TL_NC_DIM_MAX];
} tl_nc_view;

void tl_nc_encode(const tl_nc_view *v, tl_buf *out);
/* 0, or -1 when buf is not exactly one view within the bounds above (probabilities and
 * similarities finite). The strings point into buf. */
int tl_nc_decode(tl_nc_view *v, const void *buf, size_t len);
/* The most bytes tl_nc_encode writes with category ids of at most max_string bytes. */
size_t tl_nc_bound(size_t max_string);

/* The view as JSON object members, each after a comma (lib/json.h's tl_json_put_key):
 * "categories" [{category_id, p}], "p_other", "embedding" [numbers], "like"
 * [{category_id, affinity}]. ts is not written. */
void tl_nc_put_json(tl_buf *b, const tl_nc_view *v);

/* How far b moved from a (a NULL: nothing published yet, all of it "other"): half the sum
 * of the absolute differences of the listed categories' probabilities (a category listed
 * in one only counts with 0 in the other) and of p_other. 0..1. */
double tl_nc_moved(const tl_nc_view *a, const tl_nc_view *b);

#endif
