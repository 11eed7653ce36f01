/*
 * test_wire.c -- lib/wire.h: varints and zig-zag varints written, measured and read back
 * at the boundaries of their byte counts, against Avro's examples; the bounded reader's
 * failures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/wire.h"

/* Every power of two, one below and one above it, and the ends. */
static size_t values(uint64_t *v)
{
    size_t n = 0;
    v[n++] = 0;
    v[n++] = UINT64_MAX;
    for (int k = 0; k < 64; k++) {
        uint64_t p = (uint64_t)1 << k;
        v[n++] = p - 1;
        v[n++] = p;
        v[n++] = p + 1;
    }
    return n;
}

static void test_varint_round_trip(void **state)
{
    (void)state;
    uint64_t v[200];
    size_t n = values(v);
    for (size_t i = 0; i < n; i++) {
        char buf[16];
        size_t len = (size_t)(tl_wire_w_varint(buf, v[i]) - buf);
        assert_int_equal(len, tl_wire_varint_len(v[i]));
        /* 7 bits a byte: 1 byte up to 127, 10 for the top bit */
        size_t bits = 1;
        for (uint64_t x = v[i] >> 1; x; x >>= 1) bits++;
        assert_int_equal(len, (bits + 6) / 7);
        tl_wire_rd r = tl_wire_rd_of(buf, len);
        assert_true(tl_wire_varint(&r) == v[i]);
        assert_null(r.fail);
        assert_ptr_equal(r.p, r.end);

        int64_t s = (int64_t)v[i];
        len = (size_t)(tl_wire_w_svarint(buf, s) - buf);
        assert_int_equal(len, tl_wire_svarint_len(s));
        r = tl_wire_rd_of(buf, len);
        assert_true(tl_wire_svarint(&r) == s);
        assert_null(r.fail);
    }
}

/* The Avro specification's zig-zag examples: 0 -> 00, -1 -> 01, 1 -> 02, -2 -> 03,
 * 2 -> 04, -64 -> 7f, 64 -> 80 01. */
static void test_zigzag_avro_examples(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        const char *bytes;
        size_t len;
    } ex[] = {{0, "\x00", 1}, {-1, "\x01", 1},  {1, "\x02", 1},     {-2, "\x03", 1},
              {2, "\x04", 1}, {-64, "\x7f", 1}, {64, "\x80\x01", 2}};
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        char buf[16];
        size_t len = (size_t)(tl_wire_w_svarint(buf, ex[i].v) - buf);
        assert_int_equal(len, ex[i].len);
        assert_memory_equal(buf, ex[i].bytes, len);
        assert_int_equal(tl_wire_svarint_len(ex[i].v), ex[i].len);
    }
}

static void test_reader_failures(void **state)
{
    (void)state;
    /* a varint cut short */
    tl_wire_rd r = tl_wire_rd_of("\x80\x80", 2);
    assert_int_equal(tl_wire_varint(&r), 0);
    assert_string_equal(r.fail, "truncated");
    /* eleven continuation bytes: longer than any 64-bit value */
    r = tl_wire_rd_of("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    assert_int_equal(tl_wire_varint(&r), 0);
    assert_string_equal(r.fail, "a varint longer than 10 bytes");
    /* the first failure stays, and nothing more is read */
    r = tl_wire_rd_of("\x05", 1);
    assert_null(tl_wire_take(&r, 2));
    assert_string_equal(r.fail, "truncated");
    assert_int_equal(tl_wire_varint(&r), 0);
    assert_int_equal(r.end - r.p, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_round_trip),
        cmocka_unit_test(test_zigzag_avro_examples),
        cmocka_unit_test(test_reader_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
