/*
 * nextcat.c -- a user's next-category view and its bytes (nextcat.h).
 */
#include "nextcat.h"
#include "lib/json.h"
#include "lib/util.h"
#include "lib/wire.h"

#include <float.h>
#include <math.h>
#include <string.h>

static void put_entries(tl_buf *out, const tl_nc_entry *e, int n)
{
    char one = (char)n;
    tl_buf_append(out, &one, 1);
    for (int i = 0; i < n; i++) {
        tl_wire_put_varint(out, e[i].len);
        tl_buf_append(out, e[i].id, e[i].len);
        tl_wire_put_f32(out, e[i].p);
    }
}

void tl_nc_encode(const tl_nc_view *v, tl_buf *out)
{
    char one = 1;
    tl_buf_append(out, &one, 1);
    tl_wire_put_svarint(out, v->ts);
    tl_wire_put_f32(out, v->p_other);
    put_entries(out, v->cat, v->n);
    put_entries(out, v->like, v->n_like);
    one = (char)v->dim;
    tl_buf_append(out, &one, 1);
    for (int i = 0; i < v->dim; i++) tl_wire_put_f32(out, v->emb[i]);
}

static int get_entries(tl_wire_rd *r, tl_nc_entry *e, int *n, int max, float lo, float hi)
{
    unsigned k = tl_wire_u8(r);
    if (r->fail || k > (unsigned)max) return -1;
    for (unsigned i = 0; i < k; i++) {
        size_t len;
        e[i].id = tl_wire_bytes(r, &len);
        e[i].len = (uint32_t)len;
        e[i].p = tl_wire_f32(r);
        if (r->fail || !(e[i].p >= lo && e[i].p <= hi)) return -1;
    }
    *n = (int)k;
    return 0;
}

int tl_nc_decode(tl_nc_view *v, const void *buf, size_t len)
{
    memset(v, 0, sizeof(*v));
    tl_wire_rd r = tl_wire_rd_of(buf, len);
    if (tl_wire_u8(&r) != 1) return -1;
    v->ts = tl_wire_svarint(&r);
    v->p_other = tl_wire_f32(&r);
    if (r.fail || !(v->p_other >= 0 && v->p_other <= 1) || !tl_stored_time_ok(v->ts)) return -1;
    if (get_entries(&r, v->cat, &v->n, TL_NC_TOP_MAX, 0, 1) != 0) return -1;
    if (get_entries(&r, v->like, &v->n_like, TL_NC_LIKE_MAX, FLT_MIN, FLT_MAX) != 0) return -1;
    unsigned dim = tl_wire_u8(&r);
    if (r.fail || dim > TL_NC_DIM_MAX) return -1;
    v->dim = (int)dim;
    for (unsigned i = 0; i < dim; i++) {
        v->emb[i] = tl_wire_f32(&r);
        if (!isfinite(v->emb[i])) return -1;
    }
    return r.fail || r.p != r.end ? -1 : 0;
}

size_t tl_nc_bound(size_t max_string)
{
    return 1 + 10 + 4 + 1 + TL_NC_TOP_MAX * (10 + max_string + 4) + 1 +
        TL_NC_LIKE_MAX * (10 + max_string + 4) + 1 + TL_NC_DIM_MAX * 4;
}

static int same(const tl_nc_entry *a, const tl_nc_entry *b)
{
    return a->len == b->len && !memcmp(a->id, b->id, a->len);
}

double tl_nc_moved(const tl_nc_view *a, const tl_nc_view *b)
{
    if (!a) {
        double s = 1 - b->p_other;
        for (int j = 0; j < b->n; j++) s += b->cat[j].p;
        return 0.5 * s;
    }
    double s = fabs((double)a->p_other - b->p_other);
    for (int i = 0; i < a->n; i++) {
        double q = 0;
        for (int j = 0; j < b->n; j++)
            if (same(&a->cat[i], &b->cat[j])) q = b->cat[j].p;
        s += fabs(a->cat[i].p - q);
    }
    for (int j = 0; j < b->n; j++) {
        int found = 0;
        for (int i = 0; i < a->n && !found; i++) found = same(&a->cat[i], &b->cat[j]);
        if (!found) s += b->cat[j].p;
    }
    return 0.5 * s;
}

static void json_entries(tl_buf *b, const char *key, const char *pkey, const tl_nc_entry *e, int n)
{
    tl_json_put_key(b, key);
    tl_buf_putc(b, '[');
    for (int i = 0; i < n; i++) {
        tl_buf_puts(b, i ? ",{\"category_id\":" : "{\"category_id\":");
        tl_json_put_strn(b, e[i].id, e[i].len);
        tl_json_member_double(b, pkey, e[i].p);
        tl_buf_putc(b, '}');
    }
    tl_buf_putc(b, ']');
}

void tl_nc_put_json(tl_buf *b, const tl_nc_view *v)
{
    json_entries(b, "categories", "p", v->cat, v->n);
    tl_json_member_double(b, "p_other", v->p_other);
    tl_json_put_key(b, "embedding");
    tl_buf_putc(b, '[');
    for (int i = 0; i < v->dim; i++) {
        if (i) tl_buf_putc(b, ',');
        tl_json_put_double(b, v->emb[i]);
    }
    tl_buf_putc(b, ']');
    json_entries(b, "like", "affinity", v->like, v->n_like);
}
