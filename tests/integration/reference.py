#!/usr/bin/env python3
"""Reference implementation of tally's interest deltas and rule-based attribution.

Written from docs/interests.md and docs/attribution.md alone, independently of the C
code, so that the two can be compared record for record (see compare.py).

Input: a CSV file in one of two formats.

  taobao     no header; user_id,item_id,category_id,behavior,ts_seconds
             pv -> BROWSE, cart -> ADD_TO_CART, fav -> FAVORITE, buy -> PURCHASE;
             ts in ms = seconds * 1000; event_id = the 1-based data-row number.
  canonical  header event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value[,propensity][,campaign]
             (ts in ms; optional columns may be empty; an empty event_id becomes the
             1-based data-row number).

Events are processed in file order. Output: a list of dicts shaped like the JSON lines
that `tally replay --output F.jsonl` writes (see docs/schemas.md).

Usage:
  python3 reference.py --input F --format taobao|canonical --output out.jsonl \
      [--param key=value ...]

Parameter keys: either the short names below or tally's configuration keys:
  half_life_ms             features.half.life.ms              86400000
  alpha                    features.alpha                     0.5
  beta                     features.beta                      0.5
  heat.<TYPE>              features.heat.<type>               see DEFAULT_HEAT
  dims                     features.dims                      category
  epsilon                  features.epsilon                   1e-6
  lookback_ms              attribution.lookback.ms            604800000
  max_touchpoints          attribution.max.touchpoints        50
  reset_on_conversion      attribution.reset.on.conversion    true
  time_decay_half_life_ms  attribution.time.decay.half.life.ms 604800000
  touch_types              attribution.touch.types            every type but PURCHASE
"""

import argparse
import bisect
import csv
import json
import math
import sys
import time

EVENT_TYPES = ["IMPRESSION", "BROWSE", "CLICK", "FAVORITE", "ADD_TO_CART", "PURCHASE"]
TYPE_PHRASE = {
    "IMPRESSION": "an impression", "BROWSE": "a browse", "CLICK": "a click",
    "FAVORITE": "a favorite", "ADD_TO_CART": "an add-to-cart", "PURCHASE": "a purchase",
}
TAOBAO_BEHAVIOR = {"pv": "BROWSE", "cart": "ADD_TO_CART", "fav": "FAVORITE", "buy": "PURCHASE"}
DIMS = ["category", "item", "channel"]
METHODS = ["last_touch", "first_touch", "linear", "time_decay", "position_based"]

DAY_MS = 86_400_000
DEFAULT_HEAT = {"IMPRESSION": 0.1, "BROWSE": 1.0, "CLICK": 2.0, "FAVORITE": 3.0,
                "ADD_TO_CART": 4.0, "PURCHASE": 5.0}


def default_params():
    return {
        "half_life_ms": float(DAY_MS),
        "alpha": 0.5,
        "beta": 0.5,
        "heat": dict(DEFAULT_HEAT),
        "dims": ["category"],
        "epsilon": 1e-6,
        "lookback_ms": 7 * DAY_MS,
        "max_touchpoints": 50,
        "reset_on_conversion": True,
        "time_decay_half_life_ms": float(7 * DAY_MS),
        "touch_types": [t for t in EVENT_TYPES if t != "PURCHASE"],
    }


_ALIASES = {
    "features.half.life.ms": "half_life_ms",
    "features.alpha": "alpha",
    "features.beta": "beta",
    "features.dims": "dims",
    "features.epsilon": "epsilon",
    "attribution.lookback.ms": "lookback_ms",
    "attribution.max.touchpoints": "max_touchpoints",
    "attribution.reset.on.conversion": "reset_on_conversion",
    "attribution.time.decay.half.life.ms": "time_decay_half_life_ms",
    "attribution.touch.types": "touch_types",
}


def _parse_bool(v):
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "on"):
        return True
    if s in ("false", "0", "no", "off"):
        return False
    raise ValueError("not a boolean: %r" % (v,))


def _parse_type(s):
    t = s.strip().upper()
    if t not in EVENT_TYPES:
        raise ValueError("unknown event type %r" % (s,))
    return t


def make_params(overrides=None):
    """Defaults updated by overrides: a dict {key: value} (values as text or typed),
    or a list of "key=value" strings."""
    p = default_params()
    if overrides is None:
        return p
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for kv in overrides:
            if "=" not in kv:
                raise ValueError("parameter %r is not key=value" % (kv,))
            k, v = kv.split("=", 1)
            items.append((k.strip(), v))
    for key, val in items:
        k = _ALIASES.get(key, key)
        if k.startswith("features.heat."):
            k = "heat." + k[len("features.heat."):]
        if k.startswith("heat."):
            p["heat"][_parse_type(k[5:])] = float(val)
        elif k == "heat" and isinstance(val, dict):
            for t, h in val.items():
                p["heat"][_parse_type(t)] = float(h)
        elif k in ("half_life_ms", "time_decay_half_life_ms", "alpha", "beta", "epsilon"):
            p[k] = float(val)
        elif k in ("lookback_ms", "max_touchpoints"):
            p[k] = int(val)
        elif k == "reset_on_conversion":
            p[k] = val if isinstance(val, bool) else _parse_bool(val)
        elif k in ("dims", "touch_types"):
            lst = [x.strip() for x in val.split(",") if x.strip()] if isinstance(val, str) else list(val)
            if k == "dims":
                lst = [d.lower() for d in lst]
                for d in lst:
                    if d not in DIMS:
                        raise ValueError("unknown dimension %r" % (d,))
            else:
                lst = [_parse_type(t) for t in lst]
            p[k] = lst
        else:
            raise ValueError("unknown parameter %r" % (key,))
    return p


# ---------------------------------------------------------------------------- input

def read_events(path, fmt):
    """Returns the events of a CSV file as dicts: event_id, user_id, item_id,
    category_id, type, ts (ms), channel, dwell_ms, value (None where absent)."""
    events = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        if fmt == "taobao":
            row_no = 0
            for line_no, row in enumerate(reader, 1):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                row_no += 1
                if len(row) != 5:
                    raise ValueError("%s:%d: expected 5 columns, got %d" % (path, line_no, len(row)))
                user, item, cat, beh, sec = row
                if beh not in TAOBAO_BEHAVIOR:
                    raise ValueError("%s:%d: unknown behavior %r" % (path, line_no, beh))
                events.append({
                    "event_id": str(row_no), "user_id": user, "item_id": item,
                    "category_id": cat if cat != "" else None,
                    "type": TAOBAO_BEHAVIOR[beh], "ts": int(sec) * 1000,
                    "channel": None, "dwell_ms": None, "value": None,
                })
        elif fmt == "canonical":
            header = next(reader, None)
            expected = ["event_id", "user_id", "item_id", "category_id", "type", "ts",
                        "channel", "dwell_ms", "value"]
            names = [h.strip() for h in header] if header else None
            optional = names[9:] if names else None   # [propensity][,campaign]
            if names is None or names[:9] != expected or optional not in (
                    [], ["propensity"], ["campaign"], ["propensity", "campaign"]):
                raise ValueError("%s: header must be %s[,propensity][,campaign]" % (
                    path, ",".join(expected)))
            row_no = 0
            for line_no, row in enumerate(reader, 2):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                row_no += 1
                if len(row) != len(names):
                    raise ValueError("%s:%d: expected %d columns, got %d" % (
                        path, line_no, len(names), len(row)))
                eid, user, item, cat, typ, ts, chan, dwell, value = row[:9]
                campaign = row[names.index("campaign")] if "campaign" in optional else ""
                events.append({
                    "event_id": eid if eid != "" else str(row_no),
                    "user_id": user, "item_id": item,
                    "category_id": cat if cat != "" else None,
                    "type": _parse_type(typ), "ts": int(ts),
                    "channel": chan if chan != "" else None,
                    "dwell_ms": int(dwell) if dwell != "" else None,
                    "value": float(value) if value != "" else None,
                    "campaign": campaign if campaign != "" else None,
                })
        else:
            raise ValueError("unknown format %r (taobao or canonical)" % (fmt,))
    return events


# ------------------------------------------------------------------------ interests

def decay(dt_ms, half_life_ms):
    """2^(-dt/H): the factor that carries a value dt ms forward (dt < 0 grows it)."""
    return math.pow(2.0, -dt_ms / half_life_ms)


def _fmt_num(x):
    return "%.2g" % x if abs(x) < 0.1 else "%.1f" % x


def _fmt_ago(ms):
    s = ms / 1000.0
    if s < 90:
        return "%d s ago" % round(s)
    if s < 90 * 60:
        return "%d min ago" % round(s / 60)
    if s < 36 * 3600:
        return "%d h ago" % round(s / 3600)
    return "%d days ago" % round(s / 86400)


def _interest_sentence(dim, dim_id, etype, wb, wa, dp, ep, dt_ms, new):
    direction = "rose" if wa >= wb else "fell"
    s = "interest in %s %s %s from %s to %s: +%s from %s" % (
        dim, dim_id, direction, _fmt_num(wb), _fmt_num(wa), _fmt_num(ep), TYPE_PHRASE[etype])
    if not new and dt_ms > 0:
        s += ", -%s decay since %s" % (_fmt_num(-dp), _fmt_ago(dt_ms))
    return s


class Interests:
    """interest[user][dim][dim_id] = [f, h, t]"""

    def __init__(self, p):
        self.p = p
        self.state = {}

    def weight(self, f, h):
        return self.p["alpha"] * f + self.p["beta"] * h

    def update(self, ev):
        p = self.p
        H = p["half_life_ms"]
        heat = p["heat"][ev["type"]]
        out = []
        user_state = self.state.setdefault(ev["user_id"], {})
        for dim in DIMS:
            if dim not in p["dims"]:
                continue
            if dim == "category":
                dim_id = ev["category_id"]
            elif dim == "item":
                dim_id = ev["item_id"]
            else:
                dim_id = ev["channel"]
            if dim_id is None:
                continue
            entries = user_state.setdefault(dim, {})
            e_ts = ev["ts"]
            old = entries.get(dim_id)
            if old is None:
                as_of = e_ts
                f0 = h0 = 0.0
                t0 = e_ts
                weight_before = 0.0
                decay_part = 0.0
                k_old = 1.0
            else:
                f0, h0, t0 = old
                as_of = max(e_ts, t0)
                weight_before = self.weight(f0, h0)
                k_old = decay(as_of - t0, H)
                decay_part = weight_before * k_old - weight_before
            k_ev = decay(as_of - e_ts, H)
            evidence_part = (p["alpha"] * 1.0 + p["beta"] * heat) * k_ev
            f = f0 * k_old + k_ev
            h = h0 * k_old + heat * k_ev
            weight_after = weight_before + decay_part + evidence_part

            rank = 1
            for other_id in list(entries.keys()):
                if other_id == dim_id:
                    continue
                of, oh, ot = entries[other_id]
                w = self.weight(of, oh) * decay(as_of - ot, H)
                if w < p["epsilon"]:
                    del entries[other_id]
                elif w > weight_after:
                    rank += 1
            entries[dim_id] = [f, h, as_of]

            out.append({
                "type": "interest_delta",
                "user_id": ev["user_id"],
                "dim": dim,
                "dim_id": dim_id,
                "event_id": ev["event_id"],
                "ts": as_of,
                "f": f,
                "h": h,
                "weight_before": weight_before,
                "weight_after": weight_after,
                "decay_part": decay_part,
                "evidence_part": evidence_part,
                "rank": rank,
                "explanation": _interest_sentence(dim, dim_id, ev["type"], weight_before,
                                                  weight_after, decay_part, evidence_part,
                                                  as_of - t0, old is None),
            })
        return out


# ---------------------------------------------------------------------- attribution

def rule_credits(tp_ts, conv_ts, time_decay_half_life_ms):
    """The five rule-based credit lists for touchpoints with times tp_ts (journey
    order) of a conversion at conv_ts."""
    n = len(tp_ts)
    assert n >= 1
    last = [0.0] * n
    last[n - 1] = 1.0
    first = [0.0] * n
    first[0] = 1.0
    linear = [1.0 / n] * n
    weights = [decay(conv_ts - t, time_decay_half_life_ms) for t in tp_ts]
    total = sum(weights)
    time_decay = [w / total for w in weights]
    if n == 1:
        position = [1.0]
    elif n == 2:
        position = [0.5, 0.5]
    else:
        position = [0.2 / (n - 2)] * n
        position[0] = 0.4
        position[n - 1] = 0.4
    return {"last_touch": last, "first_touch": first, "linear": linear,
            "time_decay": time_decay, "position_based": position}


def _duration(ms):
    """A duration in one unit, rounded half up: "40 s", "12 min", "2 h", "3 d"."""
    ms = abs(ms)
    for size, unit in ((86400000, "d"), (3600000, "h"), (60000, "min"), (1000, "s")):
        if ms >= size:
            return "%d %s" % ((ms + size // 2) // size, unit)
    return "%d ms" % ms


def _touchpoint_phrase(tp, conv_ts, article):
    phrase = TYPE_PHRASE[tp["type"]]   # "an impression"
    if not article:
        phrase = "the " + phrase.split(" ", 1)[1]
    return "%s of item %s%s %s before" % (phrase, tp["item_id"],
                                          " on " + tp["channel"] if tp.get("channel") else "",
                                          _duration(conv_ts - tp["ts"]))


def attribution_sentence(item_id, conv_ts, tps, credits):
    """The rule-based sentence of an attribution (docs/attribution.md, "Record")."""
    n = len(tps)
    if n == 1:
        return "purchase of item %s: all credit to %s" % (
            item_id, _touchpoint_phrase(tps[0], conv_ts, True))
    td = credits["time_decay"]
    top = max(td)
    # credits the sentence cannot tell apart: the same at the two decimals it shows
    tied = [i for i in range(n) if "%.2f" % td[i] == "%.2f" % top]
    if len(tied) == n:
        decay = "time decay gives each the same (%.2f)" % top
    elif len(tied) == 1:
        decay = "time decay gives the most (%.2f) to %s" % (
            top, _touchpoint_phrase(tps[tied[0]], conv_ts, False))
    else:
        decay = "time decay gives the most (%.2f each) to %d touchpoints, the latest %s" % (
            top, len(tied), _touchpoint_phrase(tps[tied[-1]], conv_ts, False))
    return "purchase of item %s after %d touchpoints over %s: last touch %s, first %s; %s" % (
        item_id, n, _duration(conv_ts - tps[0]["ts"]), _touchpoint_phrase(tps[-1], conv_ts, True),
        _touchpoint_phrase(tps[0], conv_ts, True), decay)


class Journeys:
    """journey[user] = list of touchpoint dicts, ordered by (ts, arrival order)."""

    def __init__(self, p):
        self.p = p
        self.state = {}

    def append(self, ev):
        p = self.p
        j = self.state.setdefault(ev["user_id"], [])
        tp = {"event_id": ev["event_id"], "item_id": ev["item_id"],
              "category_id": ev["category_id"], "channel": ev["channel"],
              "type": ev["type"], "ts": ev["ts"], "campaign": ev.get("campaign")}
        # after every entry with ts <= this one: equal ts keep arrival order
        pos = bisect.bisect_right([x["ts"] for x in j], tp["ts"])
        j.insert(pos, tp)
        if len(j) > p["max_touchpoints"]:
            del j[: len(j) - p["max_touchpoints"]]
        newest = j[-1]["ts"]
        j[:] = [x for x in j if newest - x["ts"] <= p["lookback_ms"]]

    def convert(self, ev):
        """Attribution record for purchase ev, or None when it has no touchpoints."""
        p = self.p
        j = self.state.get(ev["user_id"], [])
        lo = ev["ts"] - p["lookback_ms"]
        idx = [i for i, x in enumerate(j) if lo <= x["ts"] <= ev["ts"]]
        idx = idx[-p["max_touchpoints"]:] if p["max_touchpoints"] > 0 else []
        if not idx:
            return None
        tps = [dict(j[i]) for i in idx]
        if p["reset_on_conversion"]:
            drop = set(idx)
            j[:] = [x for i, x in enumerate(j) if i not in drop]
        credits = rule_credits([x["ts"] for x in tps], ev["ts"], p["time_decay_half_life_ms"])
        return {
            "type": "attribution",
            "conversion_event_id": ev["event_id"],
            "user_id": ev["user_id"],
            "item_id": ev["item_id"],
            "category_id": ev["category_id"],
            "ts": ev["ts"],
            "value": ev["value"],
            "touchpoints": tps,
            "credits": credits,
            "p_conversion": None,
            "p_baseline": None,
            "model_version": None,
            "model_status": None,
            "shapley_stderr": None,
            "explanation": attribution_sentence(ev["item_id"], ev["ts"], tps, credits),
        }


# ----------------------------------------------------------------------------- run

class Reference:
    def __init__(self, params=None):
        if isinstance(params, dict) and set(params) == set(default_params()):
            self.p = params          # already complete (from make_params)
        else:
            self.p = make_params(params)
        self.interests = Interests(self.p)
        self.journeys = Journeys(self.p)
        self.purchases_without_touchpoints = 0

    def process(self, ev):
        out = self.interests.update(ev)
        if ev["type"] == "PURCHASE":
            rec = self.journeys.convert(ev)
            if rec is None:
                self.purchases_without_touchpoints += 1
            else:
                out.append(rec)
        if ev["type"] in self.p["touch_types"]:
            self.journeys.append(ev)
        return out


def compute(events, params=None):
    """The output records for events (in the given order)."""
    ref = Reference(params)
    out = []
    for ev in events:
        out.extend(ref.process(ev))
    return out


def run_file(path, fmt, params=None):
    return compute(read_events(path, fmt), params)


def write_jsonl(records, path):
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, separators=(",", ":")))
            fh.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--format", required=True, choices=["taobao", "canonical"])
    ap.add_argument("--output", required=True, help="JSON lines file ('-' for stdout)")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    try:
        params = make_params(args.param)
        t0 = time.monotonic()
        events = read_events(args.input, args.format)
        ref = Reference(params)
        records = []
        for ev in events:
            records.extend(ref.process(ev))
        elapsed = time.monotonic() - t0
    except (ValueError, OSError) as e:
        print("reference.py: %s" % e, file=sys.stderr)
        return 2
    if args.output == "-":
        for r in records:
            sys.stdout.write(json.dumps(r, separators=(",", ":")) + "\n")
    else:
        write_jsonl(records, args.output)
    n_att = sum(1 for r in records if r["type"] == "attribution")
    print("reference.py: %d events -> %d interest deltas, %d attributions, "
          "%d purchases without touchpoints (%.2f s)" % (
              len(events), len(records) - n_att, n_att, ref.purchases_without_touchpoints,
              elapsed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
