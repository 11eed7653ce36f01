#!/usr/bin/env python3
"""Oracles of the roll-up topic and of the shared Markov chain (docs/report.md, "The roll-up
topic"; docs/attribution.md, "One chain across instances"), for the integration tests that
run `tally run` with rollup.topic on a real broker:

- expected(): the roll-up rows summed here from the attribution records and Markov credit
  deltas read back; latest(): the roll-up topic's latest record per key; compare(): the
  problems between the two; groups_add_up(): channel-group rows against channel rows.
- markov_deltas(): the Markov credit deltas computed here from the input events alone:
  the journeys tally closes (a purchase closes a converting one, the lookback's expiry a
  non-converting one, as docs/attribution.md describes), per window of their close time,
  the windows the watermark (the least stream time of the input partitions) has passed,
  each solved by the definition of the removal effect (test_markov.exact, numpy).
- same_deltas(): the problems between expected Markov credit deltas (or another run's)
  and a run's.
"""
import heapq
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_util as ku  # noqa: E402

WINDOWS = {"hour": 3600000, "day": 86400000}
ROLLUP_ID = 9   # schemas/9-rollup.avsc
TOL = 1e-9


def expected(attrs, credits):
    """{(dim, window, window_start, id): row} summed from the records, as described above."""
    rows = defaultdict(lambda: {"purchases": 0, "touchpoints": 0,
                                "conv": defaultdict(float), "value": defaultdict(float)})
    for a in attrs:
        value = a["value"] or 0.0
        for wname, wlen in WINDOWS.items():
            start = a["ts"] - a["ts"] % wlen
            for dim, field in (("channel", "channel"), ("category", "category_id"),
                               ("campaign", "campaign")):
                touched = set()
                for i, tp in enumerate(a["touchpoints"]):
                    vid = tp.get(field) or "(none)"
                    r = rows[(dim, wname, start, vid)]
                    r["touchpoints"] += 1
                    for m, cr in a["credits"].items():
                        r["conv"][m] += cr[i]
                        r["value"][m] += cr[i] * value
                    touched.add(vid)
                for vid in touched:
                    rows[(dim, wname, start, vid)]["purchases"] += 1
    for c in credits:
        if c["method"] != "markov":
            continue
        for wname, wlen in WINDOWS.items():
            start = c["window_start"] - c["window_start"] % wlen
            r = rows[(c["dim"], wname, start, c["dim_id"] or "(none)")]
            r["conv"]["markov"] += c["credit"] - c["credit_before"]
    return rows


def latest(kafka, schemas, topic):
    """{key: record} of the roll-up topic: the last record of each key."""
    out = {}
    for _, _, key, value, _ in sorted(kafka.read_all(topic), key=lambda r: (r[0], r[1])):
        if value is None or value[0] != 0 or int.from_bytes(value[1:5], "big") != ROLLUP_ID:
            raise AssertionError("%s: a record that is not a framed roll-up: %r" % (topic, value[:8]))
        rec = ku.avro_decode(schemas[ROLLUP_ID], value[5:])
        want_key = "%s|%s|%d|%s" % (rec["dim"], rec["window"], rec["window_start"], rec["dim_id"])
        if key.decode() != want_key:
            raise AssertionError("%s: key %r for the record of %r" % (topic, key, want_key))
        out[(rec["dim"], rec["window"], rec["window_start"], rec["dim_id"])] = rec
    return out


def close(a, b):
    return abs(a - b) <= TOL * (1 + abs(a) + abs(b))


def compare(want, got, methods=None, what=""):
    """Problems between the oracle's rows and the topic's (channel, category and campaign
    rows); methods: only these columns (None: all)."""
    pr = []
    # (a row with spend and nothing credited sums no record)
    have = {k: v for k, v in got.items() if k[0] in ("channel", "category", "campaign") and
            (v["purchases"] or v["methods"] or v.get("spend") is None)}
    for k in sorted(set(want) - set(have), key=str)[:5]:
        pr.append("%sno roll-up for %s" % (what, k))
    for k in sorted(set(have) - set(want), key=str)[:5]:
        pr.append("%sa roll-up nothing sums to: %s" % (what, k))
    for k in sorted(set(want) & set(have), key=str):
        w, g = want[k], have[k]
        if (w["purchases"], w["touchpoints"]) != (g["purchases"], g["touchpoints"]):
            pr.append("%s%s: purchases/touchpoints %s, expected %s" % (
                what, k, (g["purchases"], g["touchpoints"]), (w["purchases"], w["touchpoints"])))
        gm = {m["method"]: m for m in g["methods"]}
        for m in (methods or set(w["conv"]) | set(gm)):
            if m not in w["conv"] and m not in gm:
                continue
            if m not in gm or m not in w["conv"]:
                pr.append("%s%s: method %s only on one side" % (what, k, m))
                continue
            if not close(gm[m]["conversions"], w["conv"][m]) or not close(gm[m]["value"], w["value"][m]):
                pr.append("%s%s %s: conversions/value %.17g/%.17g, expected %.17g/%.17g" % (
                    what, k, m, gm[m]["conversions"], gm[m]["value"], w["conv"][m], w["value"][m]))
        if len(pr) > 10:
            break
    return pr[:10]


def groups_add_up(got):
    """The channel_group rows of each window sum to its channel rows (rule-based columns)."""
    pr = []
    sums = defaultdict(lambda: [0, 0.0])
    for (dim, w, start, _), rec in got.items():
        if dim not in ("channel", "channel_group"):
            continue
        s = sums[(dim, w, start)]
        s[0] += rec["touchpoints"]
        s[1] += sum(m["conversions"] for m in rec["methods"] if m["method"] == "linear")
    for (dim, w, start), (tp, lin) in sums.items():
        if dim != "channel":
            continue
        g = sums.get(("channel_group", w, start), [0, 0.0])
        if g[0] != tp or not close(g[1], lin):
            pr.append("window %s %d: channel groups %s, channels %s" % (w, start, g, (tp, lin)))
    if not any(k[0] == "channel_group" for k in got):
        pr.append("no channel_group rows")
    return pr[:5]


def published(kafka, schemas, outs, problems):
    attrs = ku.decode_outputs(kafka.read_all(outs.attribution), ku.ATTRIBUTION_ID,
                              schemas[ku.ATTRIBUTION_ID], outs.attribution, problems)
    credits = []
    for _, _, _, value, _ in kafka.read_all(outs.credit):
        credits.append(ku.avro_decode(schemas[ku.CREDIT_ID], value[5:]))
    return attrs, credits



TOUCH = {"IMPRESSION", "BROWSE", "CLICK", "FAVORITE", "ADD_TO_CART"}


def journeys(events, lookback_ms, max_tps, reset=True):
    """The journeys one input partition's events (in offset order) close, as tally's
    attribution stage closes them for the Markov chain: [(close time, channels, converted)].
    A user's timer is its last touchpoint's time + lookback; it fires, in stream time (the
    largest event time seen), before the event that passes it, and closes a non-converting
    journey of the touchpoints after the last one labelled. A purchase closes a converting
    journey of the touchpoints within the lookback before it (the last max_tps of them); with
    reset (attribution.reset.on.conversion) they leave the journey."""
    users = {}
    heap = []
    stream = None
    out = []

    def rearm(uid, u):
        at = u["tps"][-1][0] + lookback_ms if u["tps"] else 0
        if at != u["timer"]:
            u["timer"] = at
            if at:
                heapq.heappush(heap, (at, uid))

    for ev in events:
        ts = ev["ts"]
        stream = ts if stream is None else max(stream, ts)
        while heap and heap[0][0] <= stream:
            at, uid = heapq.heappop(heap)
            u = users[uid]
            if u["timer"] != at:
                continue
            fresh = [tp for tp in u["tps"] if tp[0] > u["labelled"]]
            if fresh:
                out.append((at, [c for _, c in fresh], 0))
                u["labelled"] = u["tps"][-1][0]
            u["timer"] = 0
        uid = ev["user_id"]
        u = users.setdefault(uid, {"tps": [], "labelled": float("-inf"), "timer": 0})
        if ev["type"] == "PURCHASE":
            end = 0
            while end < len(u["tps"]) and u["tps"][end][0] <= ts:
                end += 1
            begin = end
            while begin > 0 and u["tps"][begin - 1][0] >= ts - lookback_ms:
                begin -= 1
            begin = max(begin, end - max_tps)
            if end > begin:
                out.append((ts, [c for _, c in u["tps"][begin:end]], 1))
                u["labelled"] = max(u["labelled"], u["tps"][end - 1][0])
                if reset:
                    del u["tps"][begin:end]
                    rearm(uid, u)
        if ev["type"] in TOUCH:
            k = len(u["tps"])
            while k > 0 and u["tps"][k - 1][0] > ts:
                k -= 1
            u["tps"].insert(k, (ts, ev.get("channel")))
            if len(u["tps"]) > max_tps:
                del u["tps"][:len(u["tps"]) - max_tps]
            newest = u["tps"][-1][0]
            u["tps"][:] = [tp for tp in u["tps"] if tp[0] >= newest - lookback_ms]
            rearm(uid, u)
    return out, stream


def input_events(kafka, schemas, topic):
    """{partition: the input topic's events in offset order}, read back and decoded here."""
    out = defaultdict(list)
    for p, _, _, value, _ in sorted(kafka.read_all(topic), key=lambda r: (r[0], r[1])):
        out[p].append(ku.avro_decode(schemas[ku.EVENT_ID], value[5:]))
    return dict(out)


def markov_deltas(partitions, lookback_ms, max_tps, window_ms, np):
    """The Markov credit deltas of the shared chain over the input partitions ({partition:
    events in offset order}): [{window_start, dim_id, credit, credit_before,
    removal_effect, conversions}] of every window closed by the watermark."""
    import test_markov
    by_window = defaultdict(list)
    stream = []
    for events in partitions.values():
        js, st = journeys(events, lookback_ms, max_tps)
        stream.append(st)
        for at, chans, conv in js:
            chans = [c for c in chans[-64:] if c]
            if chans:
                by_window[at - at % window_ms].append((chans, conv))
    wm = min(stream)
    rows, prev, out = [], {}, []
    for start in sorted(by_window):
        if start + window_ms > wm:
            break
        for chans, conv in by_window[start]:
            rows.append((chans, float(conv), 0.0, float(1 - conv)))
        names, _, re, conversions, _, _, _, _ = test_markov.exact(rows, np)
        total = sum(re.values())
        for name in names:
            credit = conversions * re[name] / total if total > 0 else 0.0
            before = prev.get(name, 0.0)
            if abs(credit - before) <= 1e-12 * (1 + abs(credit)):
                continue
            out.append({"window_start": start, "dim_id": name, "credit": credit,
                        "credit_before": before, "removal_effect": re[name],
                        "conversions": conversions})
            prev[name] = credit
    return out


def same_deltas(want, got, what):
    """Problems between expected Markov credit deltas and the topic's (method markov)."""
    ix_w = {(d["window_start"], d["dim_id"]): d for d in want}
    ix_g = {(c["window_start"], c["dim_id"]): c for c in got if c["method"] == "markov"}
    pr = []
    if not ix_w:
        pr.append("%s: no Markov credit delta expected: nothing checked" % what)
    for k in sorted(set(ix_w) ^ set(ix_g), key=str)[:5]:
        pr.append("%s: credit delta %s %s" % (what, k, "missing" if k in ix_w else "not expected"))
    for k in sorted(set(ix_w) & set(ix_g), key=str):
        for f in ("credit", "credit_before", "removal_effect", "conversions"):
            if not close(ix_w[k][f], ix_g[k][f]):
                pr.append("%s: credit delta %s: %s %.17g, expected %.17g" % (
                    what, k, f, ix_g[k][f], ix_w[k][f]))
                break
        if len(pr) > 10:
            break
    return pr
