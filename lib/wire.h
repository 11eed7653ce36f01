/*
 * wire.h -- the byte layouts tally writes and reads itself: LEB128 varints, zig-zag signed
 * varints (Avro's int and long), little-endian fixed-width numbers, length-prefixed bytes,
 * and a bounded reader over a buffer.
 *
 * Users: the user record (domain/user.c), the Markov chain and its shared records
 * (model/markov.c, model/markov_share.c), the Avro encoders and the roll-up decoder
 * (sink/avro_out.c, ingest/codec.c's encoder), the frames of the FTRL state, its deltas,
 * the metrics and the shared model's records (model/ftrl.c, model/metrics.c,
 * model/model.c). The Avro decoder of input records
 * (ingest/codec.c) keeps its own reader: it reports the byte offset of every failure in
 * the dead letter's message.
 *
 * Writing: tl_wire_put_* append to a tl_buf (growing it); tl_wire_w_* write through a
 * cursor into room the caller reserved (the state path reserves once per record), and
 * return the cursor after what they wrote. Numbers are little-endian whatever the host.
 *
 * Reading: a tl_wire_rd never reads outside [p, end). The first failure is kept in
 * r->fail (a short phrase: "truncated", "a varint longer than 10 bytes"), and every read
 * after it returns 0 / NULL without moving, so a decoder reads a whole record and checks
 * r->fail once. Everything here is static inline: these are on the hot paths.
 */
#ifndef TL_WIRE_H
#define TL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

#define TL_WIRE_VARINT_MAX 10   /* bytes of a 64-bit varint, at most */

/* ---- frames ---------------------------------------------------------------------
 * tally's own binary records (the model checkpoint's FTRL state and metrics, the shared
 * model's updates and FTRL deltas) open with four magic bytes and a little-endian u32
 * format, 1 or more. */
#define TL_WIRE_FRAME_LEN 8

/* Writes the frame at p; returns the cursor after it. */
static inline char *tl_wire_w_frame(char *p, const char magic[4], uint32_t format)
{
    memcpy(p, magic, 4);
    return tl_le_put_u32(p + 4, format);
}

/* The format of the frame at buf, or 0 when buf is shorter than a frame or opens with
 * another magic. */
static inline uint32_t tl_wire_frame_format(const void *buf, size_t len, const char magic[4])
{
    if (!buf || len < TL_WIRE_FRAME_LEN || memcmp(buf, magic, 4) != 0) return 0;
    return tl_le_get_u32((const unsigned char *)buf + 4);
}

static inline uint64_t tl_wire_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t tl_wire_unzigzag(uint64_t z) { return (int64_t)(z >> 1) ^ -(int64_t)(z & 1); }

/* The bytes tl_wire_w_varint and tl_wire_w_svarint write for v (1 to 10). */
static inline size_t tl_wire_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
static inline size_t tl_wire_svarint_len(int64_t v)
{
    return tl_wire_varint_len(tl_wire_zigzag(v));
}

/* ---- writing through a cursor -------------------------------------------------- */

static inline char *tl_wire_w_varint(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

static inline char *tl_wire_w_svarint(char *p, int64_t v)
{
    return tl_wire_w_varint(p, tl_wire_zigzag(v));
}

static inline char *tl_wire_w_bytes(char *p, const void *s, size_t n)
{
    if (n) memcpy(p, s, n);
    return p + n;
}

static inline char *tl_wire_w_f64(char *p, double d) { return tl_le_put_f64(p, d); }

static inline char *tl_wire_w_f32(char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    return tl_le_put_u32(p, v);
}

/* ---- appending to a buffer ----------------------------------------------------- */

static inline void tl_wire_put_varint(tl_buf *b, uint64_t v)
{
    tl_buf_reserve(b, TL_WIRE_VARINT_MAX);
    b->len = (size_t)(tl_wire_w_varint(b->data + b->len, v) - b->data);
}

static inline void tl_wire_put_svarint(tl_buf *b, int64_t v)
{
    tl_wire_put_varint(b, tl_wire_zigzag(v));
}

static inline void tl_wire_put_u32(tl_buf *b, uint32_t v)
{
    char t[4];
    tl_le_put_u32(t, v);
    tl_buf_append(b, t, 4);
}

static inline void tl_wire_put_u64(tl_buf *b, uint64_t v)
{
    char t[8];
    tl_le_put_u64(t, v);
    tl_buf_append(b, t, 8);
}

static inline void tl_wire_put_f64(tl_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    tl_wire_put_u64(b, v);
}

static inline void tl_wire_put_f32(tl_buf *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    tl_wire_put_u32(b, v);
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct tl_wire_rd {
    const unsigned char *p, *end;
    const char *fail;   /* the first failure; NULL while all is well */
} tl_wire_rd;

static inline tl_wire_rd tl_wire_rd_of(const void *data, size_t len)
{
    const unsigned char *p = data;   /* (an empty buffer may have no data: NULL, 0) */
    return (tl_wire_rd){p, p ? p + len : p, NULL};
}

static inline void tl_wire_fail(tl_wire_rd *r, const char *why)
{
    if (!r->fail) r->fail = why;
}

/* n bytes from the reader (NULL, "truncated", when fewer are left). */
static inline const unsigned char *tl_wire_take(tl_wire_rd *r, size_t n)
{
    if (r->fail) return NULL;
    if ((size_t)(r->end - r->p) < n) {
        r->fail = "truncated";
        return NULL;
    }
    const unsigned char *q = r->p;
    r->p += n;
    return q;
}

static inline uint64_t tl_wire_varint(tl_wire_rd *r)
{
    if (r->fail) return 0;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->fail = "truncated";
            return 0;
        }
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    r->fail = "a varint longer than 10 bytes";
    return 0;
}

static inline int64_t tl_wire_svarint(tl_wire_rd *r) { return tl_wire_unzigzag(tl_wire_varint(r)); }

static inline unsigned tl_wire_u8(tl_wire_rd *r)
{
    const unsigned char *q = tl_wire_take(r, 1);
    return q ? *q : 0;
}

static inline uint32_t tl_wire_u32(tl_wire_rd *r)
{
    const unsigned char *q = tl_wire_take(r, 4);
    return q ? tl_le_get_u32(q) : 0;
}

/* Length-prefixed records in a buffer (u32 length | the bytes, a length below 2^32): the
 * records a journal keeps to apply again (model/model.c, model/categories.c).
 * tl_wire_record returns the next one, its length in *len, or NULL at the end (or when
 * the rest is not a whole record). */
static inline void tl_wire_put_record(tl_buf *b, const void *data, uint32_t len)
{
    tl_wire_put_u32(b, len);
    tl_buf_append(b, data, len);
}

static inline const unsigned char *tl_wire_record(tl_wire_rd *r, size_t *len)
{
    if (r->p == r->end) return NULL;
    *len = tl_wire_u32(r);
    return tl_wire_take(r, *len);
}

static inline uint64_t tl_wire_u64(tl_wire_rd *r)
{
    const unsigned char *q = tl_wire_take(r, 8);
    return q ? tl_le_get_u64(q) : 0;
}

static inline double tl_wire_f64(tl_wire_rd *r)
{
    uint64_t v = tl_wire_u64(r);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static inline float tl_wire_f32(tl_wire_rd *r)
{
    uint32_t v = tl_wire_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* A length (varint) and that many bytes: a pointer into the buffer, NULL on failure
 * ("a length past the end"). */
static inline const char *tl_wire_bytes(tl_wire_rd *r, size_t *len)
{
    uint64_t n = tl_wire_varint(r);
    *len = 0;
    if (r->fail) return NULL;
    if (n > (uint64_t)(r->end - r->p)) {
        r->fail = "a length past the end";
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += n;
    *len = (size_t)n;
    return s;
}

#endif
