#!/usr/bin/env python3
"""integration.poison: no input record stops tally (docs/operations.md, "Bounds").

On a real broker, a running `tally run` (exactly_once) is fed a few thousand valid events
with every kind of bad record among them, and everything is checked by this test's own
read_committed reads and fastavro decoding, not by what tally says of itself:

1. Topics unique to the run: the input (4 partitions, the broker's default settings), the
   interest, attribution, credit and dead-letter topics. schema.dir is a copy of schemas/
   plus crafted writer schemas: 76 (a renamed enum and two nullable ids), 77 (a renamed
   enum, a nullable item_id and a field name used twice) and 78 (no item_id).
2. `tally run` starts (-X ingest.max.record.bytes=1045000, so that an oversized record
   still fits the input topic's default max.message.bytes; every other bound at its
   default: dlq.max.record.bytes=524288, ingest.max.string.bytes=512). Once /readyz is
   200, the valid events (each user's in time order, keyed by user_id, Confluent id 1,
   encoded by fastavro) are produced with the bad records (KINDS below: the classic decode
   and validation failures, over-long and non-UTF-8 strings, NUL bytes, key mismatches,
   records of about 1 MB, the crafted schemas) at seeded random places among them.
3. Once the group's committed offsets are the input's end offsets (tally must stay up all
   along): every bad record is on the dead-letter topic exactly once, found by its
   tally.source.partition/offset headers, with the expected tally.reason, a tally.error,
   its key and value as produced (cut to 4096 / 524288 bytes, with tally.truncated =
   "key=K,value=V", when larger); no valid event is there. Every valid event with a
   category_id gives exactly one interest delta (features.dims=category) and every
   purchase with touchpoints exactly one attribution over the touch events since the
   user's previous purchase; nothing else is on those topics. /metrics counts the dead
   letters per reason, the key mismatches and the events by type exactly as sent.
4. SIGTERM: exit 0. A restart in the same group with the same state directory
   (`run --until-end`) exits 0 and writes nothing: every output topic holds as many
   records as before.
5. Corrupt changelog records: two garbage values (b"\\x03\\x00\\xff\\xff", which a restore
   takes and a load refuses, and b"\\x09garbage", which a restore refuses) are produced to
   <group>-users-changelog under two existing users, in their partitions; the state
   directory is deleted, tally started again (it restores from the changelog) and one more
   valid event produced for each of them and for a third user. tally must stay up, count
   both in tally_state_quarantined_total, and output the three events' deltas: the two
   quarantined users start afresh (weight_before 0), the third continues from its restored
   state (weight_before > 0). SIGTERM: exit 0; nothing else was written.

A table of every kind (records sent, reason expected, dead letters found and their
reasons) is printed at the end. Environment: TALLY_TEST_BOOTSTRAP or
TALLY_TEST_BOOTSTRAP_FILE, TALLY_BIN, TALLY_SOURCE_DIR, TALLY_POISON_SEED (default
20261122). Exit status 0 passed, 1 failed, 77 skipped (no broker configured).
"""

import importlib.util
import json
import math
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kafka_util import (http_get, http_port, metric_total, scrape, RUN, SCHEMA_DIR, SKIP, Kafka, OutputTopics, Steps, Tally,  # noqa: E402
                        avro_encode, bootstrap, check_tools, decode_outputs, frame,
                        load_schemas, run_tally, stop_all, wait_until)
from kafka_util import ATTRIBUTION_ID  # noqa: E402

SEED = int(os.environ.get("TALLY_POISON_SEED", "20261122"))
IN_PARTITIONS = 4
N_USERS = 160
EVENTS_PER_USER = (8, 30)
BASE_TS = 1_700_000_000_000
TS_MIN, TS_MAX = 946_684_800_000, 4_102_444_800_000   # ingest.ts.min/max defaults
MAX_RECORD = 1_045_000       # -X ingest.max.record.bytes
DLQ_MAX = 524_288            # dlq.max.record.bytes (default)
DLQ_MAX_KEY = 4096           # TL_DLQ_MAX_KEY_BYTES
MAX_STRING = 512             # ingest.max.string.bytes (default)
TYPES = ["IMPRESSION", "BROWSE", "CLICK", "FAVORITE", "ADD_TO_CART", "PURCHASE"]
REASONS = ["not_framed", "unknown_schema", "incompatible_schema", "malformed",
           "missing_field", "bad_timestamp", "oversized", "bad_value", "bad_string",
           "key_mismatch"]
DECODE_REASONS = REASONS[:4]
PROCESS_TIMEOUT_S = 120



# ------------------------------------------------------------------ Avro by hand
# The bad records need bytes fastavro would refuse to write (invalid UTF-8, NaN where the
# check is, lengths that lie); encode_event() is checked against fastavro on valid events.

def zigzag_varint(n):
    u = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def a_str(s):
    b = s.encode() if isinstance(s, str) else s
    return zigzag_varint(len(b)) + b


def a_dbl(x):
    return struct.pack("<d", x)


def a_opt(v, enc):
    return zigzag_varint(0) if v is None else zigzag_varint(1) + enc(v)


def encode_event(ev, type_index=None):
    """BehaviorEvent (schema 1) in Avro binary, strings as str or raw bytes."""
    t = TYPES.index(ev["type"]) if type_index is None else type_index
    return (a_str(ev["event_id"]) + a_str(ev["user_id"]) + a_str(ev["item_id"])
            + a_opt(ev.get("category_id"), a_str) + zigzag_varint(t) + zigzag_varint(ev["ts"])
            + a_opt(ev.get("channel"), a_str) + a_opt(ev.get("dwell_ms"), zigzag_varint)
            + a_opt(ev.get("value"), a_dbl) + a_opt(ev.get("propensity"), a_dbl))


# ------------------------------------------------------------------ crafted schemas

def crafted_schemas():
    """{file name: schema} of the writer schemas added to the test's schema.dir."""
    kind = {"type": "enum", "name": "EventKind", "symbols": TYPES}
    opt = ["null", "string"]

    def rec(fields):
        return {"type": "record", "name": "BehaviorEvent", "namespace": "tally", "fields": fields}

    tail = [{"name": "ts", "type": "long"},
            {"name": "channel", "type": opt, "default": None},
            {"name": "dwell_ms", "type": ["null", "int"], "default": None},
            {"name": "value", "type": ["null", "double"], "default": None},
            {"name": "propensity", "type": ["null", "double"], "default": None}]
    return {
        # a renamed enum and two ["null","string"] fields the reader reads as string
        "76-renamed-enum.avsc": rec([
            {"name": "event_id", "type": opt, "default": None},
            {"name": "user_id", "type": "string"},
            {"name": "item_id", "type": opt, "default": None},
            {"name": "category_id", "type": opt, "default": None},
            {"name": "type", "type": kind}] + tail),
        # a renamed enum, a nullable item_id and a field name used twice
        "77-crafted.avsc": rec([
            {"name": "event_id", "type": "string"},
            {"name": "user_id", "type": "string"},
            {"name": "item_id", "type": opt, "default": None},
            {"name": "category_id", "type": opt, "default": None},
            {"name": "type", "type": kind},
            {"name": "user_id", "type": "string"}] + tail),
        # a required field (item_id, no default in the reader) absent
        "78-no-item.avsc": rec([
            {"name": "event_id", "type": "string"},
            {"name": "user_id", "type": "string"},
            {"name": "category_id", "type": opt, "default": None},
            {"name": "type", "type": {"type": "enum", "name": "EventType", "symbols": TYPES}}]
            + tail),
    }


def crafted_body(sid, ev):
    """A body in the crafted writer schema sid (written by hand: fastavro refuses 77)."""
    t = zigzag_varint(TYPES.index(ev["type"]))
    rest = (zigzag_varint(ev["ts"]) + a_opt(ev.get("channel"), a_str) + a_opt(None, a_str)
            + a_opt(None, a_dbl) + a_opt(None, a_dbl))
    if sid == 76:
        return (a_opt(ev["event_id"], a_str) + a_str(ev["user_id"]) + a_opt(ev["item_id"], a_str)
                + a_opt(ev.get("category_id"), a_str) + t + rest)
    if sid == 77:
        return (a_str(ev["event_id"]) + a_str(ev["user_id"]) + a_opt(ev["item_id"], a_str)
                + a_opt(ev.get("category_id"), a_str) + t + a_str(ev["user_id"]) + rest)
    return (a_str(ev["event_id"]) + a_str(ev["user_id"]) + a_opt(ev.get("category_id"), a_str)
            + t + rest)


# ------------------------------------------------------------------ the input

def valid_events(rng):
    """{user: [event]} per user in time order, and the users in creation order."""
    users = ["pu-%04d" % i for i in range(N_USERS)]
    by_user = {}
    n = 0
    for u in users:
        ts = BASE_TS + rng.randrange(86_400_000)
        evs = []
        for _ in range(rng.randint(*EVENTS_PER_USER)):
            ts += rng.randint(1_000, 600_000)
            t = rng.choices(TYPES, weights=[15, 40, 20, 5, 10, 10])[0]
            ev = {"event_id": "e-%06d" % n, "user_id": u, "item_id": "i-%d" % rng.randrange(500),
                  "category_id": "c-%d" % rng.randrange(40) if rng.random() < 0.9 else None,
                  "type": t, "ts": ts,
                  "channel": rng.choice(["search", "email", "social", "direct", None]),
                  "dwell_ms": rng.randrange(120_000) if rng.random() < 0.5 else None,
                  "value": round(rng.uniform(1, 500), 2) if t == "PURCHASE" else None,
                  "propensity": rng.choice([None, None, 1.0, rng.uniform(0.01, 1.0)])}
            n += 1
            evs.append(ev)
        by_user[u] = evs
    # valid at the bounds: a 512-byte event_id, multi-byte UTF-8 ids, dwell 0, value 0
    by_user[users[1]][0]["event_id"] = "e-max-" + "x" * (MAX_STRING - 6)
    by_user[users[2]][0].update(item_id="café-☕", category_id="类目-😀", channel="ça-va")
    by_user[users[3]][0].update(dwell_ms=0, value=0.0, propensity=1.0)
    return by_user, users


def expected_attributions(by_user):
    """{purchase event_id: [touchpoint event_ids]} (docs/attribution.md: the touch events
    since the previous purchase, all within the lookback here; reset on conversion)."""
    out = {}
    for evs in by_user.values():
        journey = []
        for ev in evs:
            if ev["type"] == "PURCHASE":
                if journey:
                    out[ev["event_id"]] = journey[-50:]
                journey = []
            else:
                journey.append(ev["event_id"])
    return out


class Kind:
    def __init__(self, name, reason, records, error=None):
        self.name = name
        self.reason = reason
        self.records = records     # [(key, value)]
        self.error = error         # a substring of tally.error, when the text matters
        self.where = [None] * len(records)   # [(partition, offset)] once produced


def bad_kinds(schemas, by_user, users, rng):
    s1 = schemas[1]
    u = users[5]
    base = dict(by_user[u][0])
    base.update(category_id="c-7", channel="search", dwell_ms=1234, value=9.5, propensity=0.5)
    n = [0]

    def ev(**kw):
        n[0] += 1
        e = dict(base, event_id="bad-%04d" % n[0])
        e.update(kw)
        return e

    def rec(**kw):
        """(key = user_id, framed id 1 body of an event with the fields given)"""
        e = ev(**kw)
        uid = e["user_id"]
        return (uid if isinstance(uid, bytes) else uid.encode(), frame(1, encode_event(e)))

    key = u.encode()
    past = max(schemas) + 1        # an id no schema file of tally's has
    good = avro_encode(s1, ev())   # a valid event: the bytes that go wrong in other ways
    body = encode_event(dict(base, event_id="bad-trunc"))

    def body_with(event_id_len=None, type_index=None, union_cat=None, union_chan=None, ts=None,
                  dwell=None):
        """base's body with one part replaced by raw bytes."""
        e = dict(base, event_id="bad-raw")
        parts = [a_str(e["event_id"]), a_str(e["user_id"]), a_str(e["item_id"]),
                 a_opt(e["category_id"], a_str), zigzag_varint(TYPES.index(e["type"])),
                 zigzag_varint(e["ts"]), a_opt(e["channel"], a_str),
                 a_opt(e["dwell_ms"], zigzag_varint), a_opt(e["value"], a_dbl),
                 a_opt(e["propensity"], a_dbl)]
        if event_id_len is not None:
            parts[0] = zigzag_varint(event_id_len) + b"bad-raw"
        if type_index is not None:
            parts[4] = type_index
        if union_cat is not None:
            parts[3] = union_cat
        if union_chan is not None:
            parts[6] = union_chan
        if ts is not None:
            parts[5] = ts
        if dwell is not None:
            parts[7] = dwell
        return frame(1, b"".join(parts))

    def rnd(k):
        b = bytearray(rng.randbytes(k))
        b[0] = b[0] or 0x42   # never the magic byte
        return bytes(b)

    big_user = users[7]
    kinds = [
        # -- classic: framing
        Kind("random bytes (20-200 B)", "not_framed", [(key, rnd(rng.randint(20, 200))) for _ in range(5)],
             "magic byte"),
        Kind("empty value", "not_framed", [(key, b"")], "shorter than"),
        Kind("null value (tombstone)", "not_framed", [(key, None)], "shorter than"),
        Kind("wrong magic byte 0x01", "not_framed", [(key, b"\x01" + frame(1, good)[1:])], "magic byte"),
        Kind("1-4 byte records", "not_framed",
             [(key, b"\x00"), (key, b"\x00\x00"), (key, b"\x00\x00\x00"), (key, b"\x00\x00\x00\x01")],
             "shorter than"),
        Kind("a CSV line", "not_framed", [(key, b"pv,1511848894,pu-0005,i-1,c-7")]),
        Kind("a JSON object", "not_framed",
             [(key, json.dumps(dict(base, event_id="bad-json")).encode())]),
        Kind("unframed 1,040,000 B", "not_framed", [(b"pu-huge", rnd(1_040_000))], "cut"),
        Kind("10,000 B key, unframed value", "not_framed", [(b"k" * 10_000, b"not framed")], "cut"),
        # -- classic: schema ids (past: the first id after tally's own schema files)
        Kind("unknown schema ids 0, %d, 9999, 2^31-1, 2^32-1" % past, "unknown_schema",
             [(key, frame(i, good)) for i in (0, past, 9999, 2**31 - 1, 2**32 - 1)]),
        Kind("unknown schema id 424242, 50 times", "unknown_schema",
             [(key, frame(424242, good)) for _ in range(50)]),
        Kind("output schema id 2 on the input", "incompatible_schema", [(key, frame(2, good))]),
        # -- classic: Avro body
        Kind("truncated body (cuts 0, 1, 7, 1/2, -1)", "malformed",
             [(key, frame(1, body[:c])) for c in (0, 1, 7, len(body) // 2, len(body) - 1)]),
        Kind("trailing bytes", "malformed",
             [(key, frame(1, body + b"\x00")), (key, frame(1, body + b"trailing garbage"))],
             "trailing"),
        Kind("enum index 6, -1, 1000", "malformed",
             [(key, body_with(type_index=zigzag_varint(i))) for i in (6, -1, 1000)], "enum"),
        Kind("union branch index 2, -1", "malformed",
             [(key, body_with(union_cat=zigzag_varint(2) + a_str("c-1"))),
              (key, body_with(union_chan=zigzag_varint(-1) + a_str("x")))], "union"),
        Kind("negative string length", "malformed",
             [(key, body_with(event_id_len=-5)), (key, body_with(event_id_len=-(2**62)))],
             "negative"),
        Kind("string length 2^31", "malformed", [(key, body_with(event_id_len=2**31))]),
        Kind("string length 2^62", "malformed", [(key, body_with(event_id_len=2**62))]),
        Kind("varint longer than 10 bytes", "malformed", [(key, body_with(ts=b"\xff" * 10 + b"\x01"))]),
        Kind("int dwell_ms of 2^40", "malformed",
             [(key, body_with(dwell=zigzag_varint(1) + zigzag_varint(2**40)))]),
        Kind("a double cut short", "malformed", [(key, frame(1, body[:-5]))]),
        Kind("all 0xff body", "malformed", [(key, frame(1, b"\xff" * 64))]),
        # -- classic: validation
        Kind("empty event_id", "missing_field", [rec(event_id="")], "event_id"),
        Kind("empty user_id", "missing_field", [(key, frame(1, encode_event(ev(user_id=""))))], "user_id"),
        Kind("empty item_id", "missing_field", [rec(item_id="")], "item_id"),
        Kind("ts below ingest.ts.min", "bad_timestamp", [rec(ts=TS_MIN - 1), rec(ts=0), rec(ts=-(2**63))]),
        Kind("ts above ingest.ts.max", "bad_timestamp", [rec(ts=TS_MAX + 1), rec(ts=2**63 - 1)]),
        Kind("negative dwell_ms", "bad_value", [rec(dwell_ms=-1), rec(dwell_ms=-(2**31))], "dwell"),
        Kind("value NaN, +inf, -inf", "bad_value",
             [rec(value=math.nan), rec(value=math.inf), rec(value=-math.inf)], "value"),
        Kind("propensity 0, 1.5, -0.1, NaN, inf", "bad_value",
             [rec(propensity=p) for p in (0.0, 1.5, -0.1, math.nan, math.inf)], "propensity"),
        Kind("over ingest.max.record.bytes (1,046,000 B)", "oversized",
             [(key, frame(1, good + b"\x00" * (1_046_000 - 5 - len(good))))], "exceeds"),
        # -- new: strings
        Kind("category_id of 900 KB", "bad_string", [rec(category_id="c" * 900_000)],
             "more than ingest.max.string.bytes"),
        Kind("25 KB item_id, 60 events of one user", "bad_string",
             [rec(user_id=big_user, item_id="i" * 25_000 + str(k)) for k in range(60)],
             "more than ingest.max.string.bytes"),
        Kind("event_id of 513 bytes", "bad_string", [rec(event_id="b" * (MAX_STRING + 1))],
             "more than ingest.max.string.bytes"),
        Kind("invalid UTF-8 in item_id", "bad_string", [rec(item_id=b"item-\xff\xfe")], "UTF-8"),
        Kind("invalid UTF-8 in channel", "bad_string", [rec(channel=b"\xc3\x28")], "UTF-8"),
        Kind("overlong, surrogate, cut UTF-8", "bad_string",
             [rec(category_id=b"\xc0\xaf"), rec(event_id=b"bad-\xed\xa0\x80"),
              rec(item_id=b"abc\xe2\x82")], "UTF-8"),
        Kind("NUL byte inside user_id", "bad_string", [rec(user_id=b"pu-00\x0005")], "NUL"),
        Kind("key is not the user_id", "key_mismatch", [(b"pu-0006", frame(1, encode_event(ev())))],
             "not its user_id"),
        Kind("no key", "key_mismatch", [(None, frame(1, encode_event(ev())))], "not its user_id"),
        # -- new: crafted writer schemas in schema.dir
        Kind("schema 76: renamed enum, 2 nullable ids", "incompatible_schema",
             [(key, frame(76, crafted_body(76, ev()))) for _ in range(3)]),
        Kind("schema 77: renamed enum, nullable item_id, dup field", "incompatible_schema",
             [(key, frame(77, crafted_body(77, ev()))) for _ in range(3)]),
        Kind("schema 78: required item_id absent", "incompatible_schema",
             [(key, frame(78, crafted_body(78, ev()))) for _ in range(2)]),
    ]
    return kinds


# ------------------------------------------------------------------ kafka helpers

def metrics(port):
    return scrape(port)[0]


total = metric_total


# ------------------------------------------------------------------ checks

def check_dlq(rows, kinds, valid_where, in_topic, problems, observed):
    """rows: the dead-letter topic. observed[kind name] = (dead letters found, {reasons},
    {tally.truncated headers})."""
    by_src = {}
    for row in rows:
        h = row[4]
        try:
            src = (int(h.get("tally.source.partition", b"").decode()),
                   int(h.get("tally.source.offset", b"").decode()))
        except ValueError:
            problems.append("dead letter %d@%d: no source partition/offset headers (%r)" % (
                row[0], row[1], sorted(h)))
            continue
        by_src.setdefault(src, []).append(row)
    sent = {}
    for k in kinds:
        for (key, value), w in zip(k.records, k.where):
            sent[w] = (k, key, value)
    for src, rs in sorted(by_src.items()):
        if src not in sent:
            what = "valid event %s" % valid_where[src] if src in valid_where else "no bad record"
            if src in valid_where:
                observed["valid events"] = observed.get("valid events", 0) + len(rs)
            problems.append("dead letter for input %d@%d (%s, reason %r): %s was sent there" % (
                src[0], src[1], len(rs), rs[0][4].get("tally.reason"), what))
    nprob = 0
    for k in kinds:
        found, reasons, cuts = 0, set(), set()
        for (key, value), w in zip(k.records, k.where):
            rs = by_src.get(w, [])
            found += len(rs)
            for r in rs:
                reasons.add((r[4].get("tally.reason") or b"").decode("utf-8", "replace"))
                if r[4].get("tally.truncated") is not None:
                    cuts.add(r[4]["tally.truncated"].decode("utf-8", "replace"))
            errs = []
            if len(rs) != 1:
                errs.append("on the dead-letter topic %d times, expected once" % len(rs))
            for _, _, dkey, dval, h in rs:
                def header(name):
                    v = h.get(name)
                    return None if v is None else v.decode("utf-8", "replace")
                for name, want in (("tally.reason", k.reason), ("tally.source.topic", in_topic)):
                    if header(name) != want:
                        errs.append("header %s = %r, expected %r" % (name, header(name), want))
                err = header("tally.error") or ""
                if not err.strip():
                    errs.append("tally.error missing or empty")
                elif k.error and k.error not in err:
                    errs.append("tally.error %r does not say %r" % (err[:200], k.error))
                key_b, val_b = key or b"", value or b""
                cut = len(key_b) > DLQ_MAX_KEY or len(val_b) > DLQ_MAX
                if (dkey or b"") != key_b[:DLQ_MAX_KEY]:
                    errs.append("key %r..., expected %r..." % ((dkey or b"")[:40], key_b[:40]))
                if (dval or b"") != val_b[:DLQ_MAX]:
                    errs.append("value of %d bytes %r..., expected the first %d of the %d sent "
                                "%r..." % (len(dval or b""), (dval or b"")[:24],
                                           min(len(val_b), DLQ_MAX), len(val_b), val_b[:24]))
                want_cut = "key=%d,value=%d" % (len(key_b), len(val_b)) if cut else None
                if header("tally.truncated") != want_cut:
                    errs.append("tally.truncated %r, expected %r" % (header("tally.truncated"),
                                                                      want_cut))
                if cut and "cut" not in err:
                    errs.append("tally.error does not say the dead letter was cut: %r" % err[:200])
            if errs:
                nprob += 1
                if nprob <= 25:
                    problems.append("%s, input %d@%d: %s" % (k.name, w[0], w[1], "; ".join(errs)))
        observed[k.name] = (found, reasons, cuts)
    if nprob > 25:
        problems.append("%d more bad records with problems" % (nprob - 25))


def check_outputs(deltas, atts, valid, attributed, problems):
    """valid: {event_id: event}; attributed: {purchase event_id: [touchpoint event_ids]}.
    Every valid event with a category_id: one category delta; every purchase with
    touchpoints: one attribution; nothing else."""
    seen = {}
    for d in deltas:
        seen.setdefault(d["event_id"], []).append(d)
    bad = []
    for eid, ev in valid.items():
        got = seen.get(eid, [])
        want = 1 if ev.get("category_id") is not None else 0
        if len(got) != want:
            bad.append("event %s (user %s, category %r): %d interest deltas, expected %d" % (
                eid[:40], ev["user_id"], ev.get("category_id"), len(got), want))
        for d in got:
            if (d["user_id"], d["dim"], d["dim_id"]) != (ev["user_id"], "category", ev["category_id"]):
                bad.append("event %s: delta for %r, expected %r" % (
                    eid[:40], (d["user_id"], d["dim"], d["dim_id"]),
                    (ev["user_id"], "category", ev["category_id"])))
    for eid in seen:
        if eid not in valid:
            bad.append("interest delta(s) for event_id %r, which is no valid event sent" % eid[:60])
    aseen = {}
    for a in atts:
        aseen.setdefault(a["conversion_event_id"], []).append(a)
    for eid, ev in valid.items():
        if ev["type"] != "PURCHASE":
            continue
        got = aseen.get(eid, [])
        want = 1 if eid in attributed else 0
        if len(got) != want:
            bad.append("purchase %s: %d attributions, expected %d" % (eid, len(got), want))
        for a in got:
            tps = [t["event_id"] for t in a["touchpoints"]]
            if tps != attributed.get(eid):
                bad.append("purchase %s: touchpoints %s, expected %s" % (eid, tps, attributed.get(eid)))
    for eid in aseen:
        if eid not in valid or valid[eid]["type"] != "PURCHASE":
            bad.append("attribution for %r, which is no purchase sent" % eid)
    problems.extend(bad[:20])
    if len(bad) > 20:
        problems.append("%d more output problems" % (len(bad) - 20))


# ------------------------------------------------------------------ main

def main():
    b = bootstrap()
    if not b:
        print("SKIP: no Kafka broker (set TALLY_TEST_BOOTSTRAP or TALLY_TEST_BOOTSTRAP_FILE)")
        return SKIP
    why = check_tools()
    if why:
        print("FAIL: %s\n0 passed, 1 failed" % why)
        return 1
    if importlib.util.find_spec("prometheus_client") is None:   # the /metrics parser
        print("FAIL: No module named 'prometheus_client' (pip install -r "
              "tests/integration/requirements.txt)\n0 passed, 1 failed")
        return 1

    t_start = time.monotonic()
    rng = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="tally-poison-")
    state = os.path.join(tmp, "state")
    schema_dir = os.path.join(tmp, "schemas")
    os.makedirs(schema_dir)
    for name in os.listdir(SCHEMA_DIR):
        if name.endswith(".avsc"):
            shutil.copy(os.path.join(SCHEMA_DIR, name), schema_dir)
    for name, schema in crafted_schemas().items():
        with open(os.path.join(schema_dir, name), "w") as fh:
            json.dump(schema, fh, indent=1)

    in_topic = "poison-events-" + RUN
    out = OutputTopics("poison-" + RUN)
    group = "poison-" + RUN
    changelog = group + "-users-changelog"
    kafka = Kafka(b)
    schemas = load_schemas()
    step = Steps(catch_all=True)
    print("broker %s, run %s, seed %d, files in %s" % (b, RUN, SEED, tmp))

    by_user, users = valid_events(rng)
    for evs in by_user.values():
        for ev in evs:   # the hand encoder is fastavro's, on every valid event
            assert encode_event(ev) == avro_encode(schemas[1], ev), ev["event_id"]
    kinds = bad_kinds(schemas, by_user, users, rng)
    valid = {ev["event_id"]: ev for evs in by_user.values() for ev in evs}
    attributed = expected_attributions(by_user)
    expect_reason = {r: 0 for r in REASONS}
    for k in kinds:
        expect_reason[k.reason] += len(k.records)
    n_bad = sum(expect_reason.values())

    # The valid events in time order over all users (so each user's in its order), the bad
    # records at random places among them.
    stream = sorted((ev for evs in by_user.values() for ev in evs), key=lambda e: e["ts"])
    items = [("valid", ev) for ev in stream]
    for k in kinds:
        for i in range(len(k.records)):
            items.insert(rng.randrange(len(items) + 1), ("bad", (k, i)))

    def run_args(*extra):
        return (["run", "-X", "kafka.bootstrap.servers=" + b, "-X", "input.topics=" + in_topic,
                 "-X", "kafka.group.id=" + group, "-X", "instance.id=poison-" + RUN,
                 "-X", "state.dir=" + state, "-X", "schema.dir=" + schema_dir,
                 "-X", "http.listen=127.0.0.1:0",
                 "-X", "ingest.max.record.bytes=%d" % MAX_RECORD] + out.args() + list(extra))

    st = {"observed": {}, "counts": None, "quarantined": None, "t1": None}
    valid_where = {}

    def create(pr):
        kafka.create_topics({in_topic: IN_PARTITIONS})
        out.create(kafka)
        return "%s (%d partitions, default settings), outputs %s-*" % (in_topic, IN_PARTITIONS,
                                                                     "poison-" + RUN)

    ok = step("create topics", create)

    def refused(pr):
        """A start whose records could not fit where they go is refused (exit 2, one line
        naming the record, the keys that bound it and the limit), before it consumes."""
        small = "poison-small-attribution-" + RUN
        kafka.create_topics({small: 1}, {"max.message.bytes": "50000"})
        cases = [  # (name, extra arguments, what the error line must say)
            ("long journeys of long strings",
             ["-X", "attribution.max.touchpoints=1000", "-X", "ingest.max.string.bytes=4096"],
             r"an attribution on %s can reach \d+ bytes \(ingest\.max\.string\.bytes=4096, "
             r"attribution\.max\.touchpoints=1000\), more than the producer's "
             r"message\.max\.bytes \(1000000\)" % re.escape(out.attribution)),
            ("an attribution topic of 50 KB",
             ["-X", "output.attribution.topic=" + small],
             r"an attribution on %s can reach 1\d{5} bytes .*more than the topic's "
             r"max\.message\.bytes \(50000\)" % re.escape(small)),
        ]
        said = []
        for name, extra, pattern in cases:
            t = Tally(run_args(*extra), os.path.join(tmp, "refused.log"), "tally run (" + name + ")")
            rc = t.wait(60)
            if rc != 2:
                pr.append("%s: exit %s, expected 2:\n%s" % (name, rc, t.log()[-2000:]))
            elif not re.search(pattern, t.log()):
                pr.append("%s: no line /%s/ in:\n%s" % (name, pattern, t.log()[-2000:]))
            said.append("%s: exit %s" % (name, rc))
        if kafka.committed(group, in_topic) != {p: -1 for p in range(IN_PARTITIONS)}:
            pr.append("a refused start committed offsets: %s" % kafka.committed(group, in_topic))
        return "; ".join(said)

    ok = ok and step("start refused when a record could not fit", refused)

    def ends_committed(tallies):
        ends = kafka.end_offsets(in_topic)
        wait_until(lambda: kafka.committed(group, in_topic) == ends, PROCESS_TIMEOUT_S,
                   "group %s's committed offsets at the input's end offsets %s" % (group, ends),
                   running=tallies)
        return ends

    def run1(pr):
        t = Tally(run_args(), os.path.join(tmp, "run1.log"), "tally run")
        st["t1"] = t
        port = st["port1"] = http_port(t)
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, 120, "/readyz 200", running=[t])
        recs = [(x["user_id"].encode(), frame(1, avro_encode(schemas[1], x))) if what == "valid"
                else x[0].records[x[1]] for what, x in items]
        t0 = time.monotonic()
        where = kafka.produce(in_topic, recs)
        produced_s = time.monotonic() - t0
        for (what, x), w in zip(items, where):
            if what == "valid":
                valid_where[w] = x["event_id"]
                x["_where"] = w
            else:
                x[0].where[x[1]] = w
        st["produced"] = True
        ends = ends_committed([t])
        if not t.running():
            pr.append(t.exited_message())
        return ("%d valid events and %d bad records (%d kinds) produced in %.1f s; all committed "
                "(%d records on the input), tally still running" % (
                    len(valid), n_bad, len(kinds), produced_s, sum(ends.values())))

    ok = ok and step("run: valid events and poison produced into a running tally", run1)

    def dlq(pr):
        rows = kafka.read_all(out.dlq)
        check_dlq(rows, kinds, valid_where, in_topic, pr, st["observed"])
        st["valid_dead"] = st["observed"].pop("valid events", 0)
        if len(rows) != n_bad:
            pr.append("dead-letter topic holds %d records, %d bad records were sent" % (len(rows), n_bad))
        return "%d dead letters: each bad record once, with its reason, key and value" % len(rows)

    if st.get("produced"):   # also when tally stopped: what it dead-lettered goes in the table
        step("dead-letter topic", dlq)

    def outputs(pr):
        deltas = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, pr)
        atts = decode_outputs(kafka.read_all(out.attribution), ATTRIBUTION_ID, schemas[ATTRIBUTION_ID], out.attribution, pr)
        check_outputs(deltas, atts, valid, attributed, pr)
        return "%d interest deltas (one per valid event with a category), %d attributions (one " \
               "per purchase with touchpoints); none of a bad record" % (len(deltas), len(atts))

    if ok:
        step("outputs: each valid event exactly once", outputs)

    def metrics1(pr):
        t = st["t1"]
        port = st["port1"]
        want_types = {ty: sum(1 for e in valid.values() if e["type"] == ty) for ty in TYPES}
        last = {}

        def agree():
            m = metrics(port)
            last["m"] = m
            return (all(total(m, "tally_dead_letters_total", reason=r) == n
                        for r, n in expect_reason.items())
                    and all(total(m, "tally_events_total", type=ty) == n
                            for ty, n in want_types.items()))
        try:
            wait_until(agree, 30, "/metrics: dead letters and events as sent", running=[t])
        except AssertionError as e:
            m = last.get("m", {})
            pr.append(str(e))
            for r, n in expect_reason.items():
                got = total(m, "tally_dead_letters_total", reason=r)
                if got != n:
                    pr.append("tally_dead_letters_total{reason=%s} = %s, sent %d" % (r, got, n))
            for ty, n in want_types.items():
                got = total(m, "tally_events_total", type=ty)
                if got != n:
                    pr.append("tally_events_total{type=%s} = %s, sent %d" % (ty, got, n))
            return None
        m = last["m"]
        for r in REASONS:
            want = expect_reason[r] if r in DECODE_REASONS else 0
            got = total(m, "tally_decode_errors_total", reason=r)
            if got != want:
                pr.append("tally_decode_errors_total{reason=%s} = %s, expected %d" % (r, got, want))
        km = total(m, "tally_key_mismatches_total")
        if km != expect_reason["key_mismatch"]:
            pr.append("tally_key_mismatches_total = %s, expected %d" % (km, expect_reason["key_mismatch"]))
        if total(m, "tally_outputs_total", output="dead_letter") != n_bad:
            pr.append("tally_outputs_total{output=dead_letter} = %s, expected %d" % (
                total(m, "tally_outputs_total", output="dead_letter"), n_bad))
        st["metrics1"] = m
        return "tally_dead_letters_total by reason = sent: %s" % ", ".join(
            "%s %d" % (r, n) for r, n in expect_reason.items())

    if ok:
        step("/metrics", metrics1)

    def stop1(pr):
        t = st["t1"]
        if not t.running():
            raise AssertionError(t.exited_message())
        secs = time.monotonic() - t.t0
        t.stop(60)
        return "still running after %.1f s; SIGTERM: exit 0" % secs

    ok = ok and step("tally never exited; SIGTERM exits 0", stop1)

    def counts():
        return {name: len(kafka.read_all(name)) for name in out.all()}

    def restart(pr):
        before = counts()
        st["counts"] = before
        committed = kafka.committed(group, in_topic)
        secs = run_tally(run_args("--until-end"), 120, os.path.join(tmp, "run2.log"),
                         "tally run --until-end (restart)")
        after = counts()
        for name in out.all():
            if after[name] != before[name]:
                pr.append("%s: %d records before the restart, %d after" % (name, before[name], after[name]))
        if kafka.committed(group, in_topic) != committed:
            pr.append("committed offsets moved: %s -> %s" % (committed, kafka.committed(group, in_topic)))
        return "exit 0 after %.1f s; output topics unchanged (%s)" % (
            secs, ", ".join("%s %d" % (n.rsplit("-", 1)[-1], c) for n, c in before.items()))

    ok = ok and step("restart (--until-end) processes nothing twice", restart)

    new_events = []

    def corrupt_changelog(pr):
        # Users with a category event: A and B get a garbage changelog record, C none.
        cands = [u for u in users[10:] if any(e["category_id"] for e in by_user[u])]
        ua, ub, uc = cands[0], cands[1], cands[2]
        part = {u: by_user[u][0]["_where"][0] for u in (ua, ub, uc)}
        garbage = [(ua, b"\x03\x00\xff\xff"), (ub, b"\x09garbage")]
        for u, v in garbage:
            kafka.produce(changelog, [(u.encode(), v)], partition=part[u])
        shutil.rmtree(state)
        t = Tally(run_args(), os.path.join(tmp, "run3.log"), "tally run (restored)")
        port = http_port(t)
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, 120, "/readyz 200 (restored)",
                   running=[t])
        for u in (ua, ub, uc):
            lastev = [e for e in by_user[u] if e["category_id"]][-1]
            ev = dict(by_user[u][-1])
            ev.pop("_where", None)
            ev.update(event_id="e-after-%s" % u, type="BROWSE", category_id=lastev["category_id"],
                      ts=by_user[u][-1]["ts"] + 60_000, value=None)
            new_events.append(ev)
        where = kafka.produce(in_topic, [(e["user_id"].encode(), frame(1, avro_encode(schemas[1], e)))
                                      for e in new_events])
        st["run3"] = t
        for e, w in zip(new_events, where):
            if w[0] != part[e["user_id"]]:
                pr.append("user %s's new event went to partition %d, its events to %d" % (
                    e["user_id"], w[0], part[e["user_id"]]))
        ends_committed([t])
        last = {}

        def counted():
            m = metrics(port)
            last["m"] = m
            return total(m, "tally_state_quarantined_total") == 2
        try:
            wait_until(counted, 30, "tally_state_quarantined_total = 2", running=[t])
        except AssertionError as e:
            pr.append("%s (last: %s)" % (e, total(last.get("m", {}), "tally_state_quarantined_total")))
        m = last["m"]
        st["quarantined"] = total(m, "tally_state_quarantined_total")
        if total(m, "tally_restore_records_total") <= 0:
            pr.append("tally_restore_records_total = %s: nothing restored" % total(m, "tally_restore_records_total"))
        if total(m, "tally_dead_letters_total") != 0:
            pr.append("%s dead letters from valid events" % total(m, "tally_dead_letters_total"))
        lines = [ln for ln in t.log().splitlines() if "component=state quarantined record" in ln]
        for u in (ua, ub):
            if not any(re.search(r" user_id=%s " % re.escape(u), ln) for ln in lines):
                pr.append("no line 'quarantined record ... user_id=%s ...' in %s; its quarantine "
                          "lines: %s" % (u, t.log_path, [ln[25:] for ln in lines]))
        deltas = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, pr)
        got = {}
        for d in deltas:
            got.setdefault(d["event_id"], []).append(d)
        for e in new_events:
            ds = got.get(e["event_id"], [])
            if len(ds) != 1:
                pr.append("new event of %s: %d interest deltas, expected 1" % (e["user_id"], len(ds)))
                continue
            wb = ds[0]["weight_before"]
            fresh = e["user_id"] in (ua, ub)
            if fresh and wb != 0.0:
                pr.append("user %s (quarantined) continued from weight %r: an older record came back"
                          % (e["user_id"], wb))
            if not fresh and not wb > 0.0:
                pr.append("user %s (restored) has weight_before %r: its state was not restored" % (
                    e["user_id"], wb))
        if not t.running():
            pr.append(t.exited_message())
        t.stop(60)
        return ("garbage under %s (b'\\x03\\x00\\xff\\xff') and %s (b'\\x09garbage'); state dir "
                "deleted; restored, kept running, tally_state_quarantined_total %s; both started "
                "afresh, %s continued; SIGTERM exit 0" % (ua, ub, st["quarantined"], uc))

    if ok:
        step("corrupt changelog records are quarantined", corrupt_changelog)

    def final(pr):
        after = counts()
        before = st["counts"]
        if after[out.dlq] != before[out.dlq]:
            pr.append("dead-letter topic: %d records, %d before" % (after[out.dlq], before[out.dlq]))
        allv = dict(valid)
        allv.update({e["event_id"]: e for e in new_events})
        deltas = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, pr)
        atts = decode_outputs(kafka.read_all(out.attribution), ATTRIBUTION_ID, schemas[ATTRIBUTION_ID], out.attribution, pr)
        check_outputs(deltas, atts, allv, attributed, pr)
        return "%d interest deltas, %d attributions: every valid event's once" % (len(deltas), len(atts))

    if st.get("run3"):   # also when the quarantine checks failed: what was written is checked
        step("all outputs after the three runs", final)

    # ---------------------------------------------------------------- the table
    obs = st["observed"]
    rows = [("kind", "sent", "reason expected", "dead letters", "reason observed",
             "tally.truncated")]
    for k in kinds:
        found, reasons, cuts = obs.get(k.name, (None, set(), set()))
        rows.append((k.name, str(len(k.records)), k.reason,
                     "-" if found is None else str(found), ",".join(sorted(reasons)) or "-",
                     ",".join(sorted(cuts)) or "-"))
    rows.append(("corrupt changelog record", "2", "quarantined", "-",
                 "tally_state_quarantined_total=%s" % (
                     "-" if st["quarantined"] is None else "%g" % st["quarantined"]), "-"))
    rows.append(("valid events", str(len(valid)), "(none)", str(st.get("valid_dead", "-")),
                 "-", "-"))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    print("%d kinds, %d bad records; %s" % (len(kinds), n_bad, ", ".join(
        "%s %d" % (r, n) for r, n in expect_reason.items())))

    stop_all()
    passed, failed = step.counts()
    print("%d passed, %d failed in %.1f s" % (passed, failed, time.monotonic() - t_start))
    if failed == 0:
        kafka.delete_topics([in_topic, changelog] + out.all())
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("files kept in %s" % tmp)
    kafka.close()
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
