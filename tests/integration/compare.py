#!/usr/bin/env python3
"""Compares two lists of tally output records (interest deltas and attributions).

Records are dicts shaped like the JSON lines of `tally replay` (with "type") or like the
Avro records decoded from the output topics (without "type": the kind is then told by the
fields). Interest deltas are matched by (event_id, dim, dim_id), attributions by
conversion_event_id. Every field is compared: floats to an absolute/relative tolerance,
ints and strings exactly, touchpoints and credit lists element by element. The
explanation only has to be a non-empty string on the actual side (exact=True compares it
too, for two outputs of tally itself).

  compare(expected, actual, tol=1e-9) -> list of problems (empty = equal)

CLI: python3 compare.py expected.jsonl actual.jsonl [--tol 1e-9] [--ignore-type credit_delta]
     exits 0 when equal, 1 with a report otherwise.
"""

import argparse
import json
import math
import sys

INTEREST_FIELDS = {
    "user_id": "str", "dim": "str", "dim_id": "str", "event_id": "str", "ts": "int",
    "f": "float", "h": "float", "weight_before": "float", "weight_after": "float",
    "decay_part": "float", "evidence_part": "float", "rank": "int", "explanation": "text",
}
ATTRIBUTION_FIELDS = {
    "conversion_event_id": "str", "user_id": "str", "item_id": "str",
    "category_id": "str?", "ts": "int", "value": "float?", "touchpoints": "touchpoints",
    "credits": "credits", "p_conversion": "float?", "p_baseline": "float?",
    "model_version": "int?", "explanation": "text", "model_status": "map?",
    "shapley_stderr": "floats?",
}
TOUCHPOINT_FIELDS = {
    "event_id": "str", "item_id": "str", "category_id": "str?", "channel": "str?",
    "type": "str", "ts": "int", "campaign": "str?",
}
MAX_MISMATCHES = 20


def kind_of(rec):
    t = rec.get("type")
    if t in ("interest_delta", "attribution"):
        return t
    if t is not None:
        return None   # another kind of record (credit_delta, dead_letter, ...)
    if "conversion_event_id" in rec:
        return "attribution"
    if "dim" in rec and "dim_id" in rec:
        return "interest_delta"
    return None


def key_of(rec):
    k = kind_of(rec)
    if k == "interest_delta":
        return (k, str(rec.get("event_id")), str(rec.get("dim")), str(rec.get("dim_id")))
    if k == "attribution":
        return (k, str(rec.get("conversion_event_id")))
    return None


def _sort_key(key):
    """Numeric ids in numeric order, others after them in text order."""
    return tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in key)


def fmt_key(key):
    if key[0] == "interest_delta":
        return "interest_delta(event_id=%s, dim=%s, dim_id=%s)" % key[1:]
    return "attribution(conversion_event_id=%s)" % key[1]


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _close(a, b, tol):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _cmp_value(kind, e, a, tol, path, out, exact_text):
    """Appends (path, expected, actual, why) to out for each difference."""
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if base == "text":
        if not (isinstance(a, str) and a.strip()):
            out.append((path, "<non-empty sentence>", a, "explanation missing or empty"))
        elif exact_text and e != a:
            out.append((path, e, a, "different text"))
        return
    if e is None or a is None:
        if e is None and a is None:
            if not optional:
                out.append((path, e, a, "null where a value is required"))
            return
        out.append((path, e, a, "null on one side only"))
        return
    if base == "map":
        if not isinstance(a, dict) or not isinstance(e, dict) or e != a:
            out.append((path, e, a, "different"))
        return
    if base == "str":
        if not isinstance(a, str) or not isinstance(e, str) or e != a:
            out.append((path, e, a, "different"))
        return
    if base == "int":
        ok = _is_num(e) and _is_num(a) and float(e).is_integer() and float(a).is_integer() \
            and int(e) == int(a) and not isinstance(a, float) and not isinstance(e, float)
        if not ok:
            out.append((path, e, a, "different integer"))
        return
    if base == "float":
        if not (_is_num(e) and _is_num(a)) or not _close(float(e), float(a), tol):
            why = "not a number" if not (_is_num(e) and _is_num(a)) else \
                "differs by %.3g" % abs(float(e) - float(a))
            out.append((path, e, a, why))
        return
    if base == "floats":   # a list of numbers, null where unknown (an infinite error)
        if not isinstance(a, list) or not isinstance(e, list) or len(e) != len(a):
            out.append((path, e, a, "not lists of one length"))
            return
        for i, (xe, xa) in enumerate(zip(e, a)):
            if xe is None or xa is None:
                if xe is not xa:
                    out.append(("%s[%d]" % (path, i), xe, xa, "null on one side only"))
            else:
                _cmp_value("float", xe, xa, tol, "%s[%d]" % (path, i), out, exact_text)
        return
    if base == "touchpoints":
        if not isinstance(a, list) or not isinstance(e, list):
            out.append((path, e, a, "not a list"))
            return
        if len(e) != len(a):
            out.append((path + ".length", len(e), len(a), "different number of touchpoints"))
        for i, (te, ta) in enumerate(zip(e, a)):
            if not isinstance(ta, dict) or not isinstance(te, dict):
                out.append(("%s[%d]" % (path, i), te, ta, "not an object"))
                continue
            _cmp_fields(TOUCHPOINT_FIELDS, te, ta, tol, "%s[%d]" % (path, i), out, exact_text)
        return
    if base == "credits":
        if not isinstance(a, dict) or not isinstance(e, dict):
            out.append((path, e, a, "not an object"))
            return
        for m in sorted(set(e) | set(a)):
            if m not in a:
                out.append(("%s.%s" % (path, m), e[m], None, "method missing"))
                continue
            if m not in e:
                out.append(("%s.%s" % (path, m), None, a[m], "unexpected method"))
                continue
            le, la = e[m], a[m]
            if not isinstance(la, list) or not isinstance(le, list):
                out.append(("%s.%s" % (path, m), le, la, "not a list"))
                continue
            if len(le) != len(la):
                out.append(("%s.%s.length" % (path, m), len(le), len(la), "different length"))
            for i, (ce, ca) in enumerate(zip(le, la)):
                _cmp_value("float", ce, ca, tol, "%s.%s[%d]" % (path, m, i), out, exact_text)
        return
    raise AssertionError("unknown field kind " + kind)


def _cmp_fields(fields, e, a, tol, path, out, exact_text):
    for name, kind in fields.items():
        pe = name in e
        pa = name in a
        if not pa:
            out.append(("%s.%s" % (path, name), e.get(name, "<absent>"), "<absent>",
                        "field missing"))
            continue
        if not pe and kind != "text":
            out.append(("%s.%s" % (path, name), "<absent>", a[name], "field not expected"))
            continue
        _cmp_value(kind, e.get(name), a[name], tol, "%s.%s" % (path, name), out, exact_text)
    for name in sorted(set(a) - set(fields) - {"type"}):
        out.append(("%s.%s" % (path, name), e.get(name, "<absent>"), a[name], "unknown field"))
    if "type" in e and "type" in a and e["type"] != a["type"] and fields is not TOUCHPOINT_FIELDS:
        out.append(("%s.type" % path, e["type"], a["type"], "different record type"))


def _index(records, side, problems):
    idx = {}
    dups = {}
    for n, r in enumerate(records, 1):
        if not isinstance(r, dict):
            problems.append("%s record %d is not an object: %r" % (side, n, r))
            continue
        k = key_of(r)
        if k is None:
            problems.append("%s record %d is neither an interest delta nor an attribution: %s"
                            % (side, n, _short(r)))
            continue
        if k in idx:
            dups[k] = dups.get(k, 1) + 1
        else:
            idx[k] = r
    return idx, dups


def _short(x, limit=200):
    s = json.dumps(x, sort_keys=True) if not isinstance(x, str) else json.dumps(x)
    return s if len(s) <= limit else s[:limit] + "..."


MODEL_METHODS = ("shapley", "removal")
MODEL_FIELDS = ("p_conversion", "p_baseline", "model_version", "model_status", "shapley_stderr")
MODEL_SENTENCE = "; the model"


def rule_based(records):
    """Copies of records without what the online model adds to attributions (the shapley
    and removal credits, p_conversion, p_baseline, model_version and the model's part of
    the explanation), for comparing with the reference or across runs whose model saw
    examples in another order. Other records are returned as they are."""
    out = []
    for r in records:
        if isinstance(r, dict) and "conversion_event_id" in r:
            r = dict(r)
            if isinstance(r.get("credits"), dict):
                r["credits"] = {m: c for m, c in r["credits"].items() if m not in MODEL_METHODS}
            for f in MODEL_FIELDS:
                if f in r:
                    r[f] = None
            if isinstance(r.get("explanation"), str):
                r["explanation"] = r["explanation"].split(MODEL_SENTENCE, 1)[0]
        out.append(r)
    return out


def compare(expected, actual, tol=1e-9, exact_explanation=False, max_mismatches=MAX_MISMATCHES,
            ignore_types=(), rule_only=False):
    """Returns a list of problems (strings); empty when the two lists hold the same
    records (in any order) up to tol. Records whose "type" is in ignore_types (e.g.
    "credit_delta") are left out on both sides; any other record that is neither an
    interest delta nor an attribution is a problem. rule_only compares without what the
    online model adds (see rule_based)."""
    if rule_only:
        expected, actual = rule_based(expected), rule_based(actual)
    if ignore_types:
        expected = [r for r in expected if not (isinstance(r, dict) and r.get("type") in ignore_types)]
        actual = [r for r in actual if not (isinstance(r, dict) and r.get("type") in ignore_types)]
    problems = []
    e_idx, e_dups = _index(expected, "expected", problems)
    a_idx, a_dups = _index(actual, "actual", problems)

    for side, dups in (("expected", e_dups), ("actual", a_dups)):
        keys = sorted(dups, key=_sort_key)
        if keys:
            problems.append("%d key(s) duplicated on the %s side, e.g. %s" % (
                len(keys), side, ", ".join("%s x%d" % (fmt_key(k), dups[k]) for k in keys[:5])))

    missing = sorted((k for k in e_idx if k not in a_idx), key=_sort_key)
    extra = sorted((k for k in a_idx if k not in e_idx), key=_sort_key)
    if missing:
        problems.append("%d expected record(s) missing from actual, e.g. %s" % (
            len(missing), "; ".join(fmt_key(k) for k in missing[:5])))
    if extra:
        problems.append("%d unexpected record(s) in actual, e.g. %s" % (
            len(extra), "; ".join(fmt_key(k) for k in extra[:5])))

    mismatched_records = 0
    mismatches = []
    for k in sorted((k for k in e_idx if k in a_idx), key=_sort_key):
        fields = INTEREST_FIELDS if k[0] == "interest_delta" else ATTRIBUTION_FIELDS
        out = []
        _cmp_fields(fields, e_idx[k], a_idx[k], tol, "", out, exact_explanation)
        if out:
            mismatched_records += 1
            for path, ev, av, why in out:
                mismatches.append((k, path, ev, av, why))
    if mismatches:
        problems.append("%d record(s) differ in %d field(s); first %d:" % (
            mismatched_records, len(mismatches), min(len(mismatches), max_mismatches)))
        for k, path, ev, av, why in mismatches[:max_mismatches]:
            problems.append("  %s%s: expected %s, actual %s (%s)" % (
                fmt_key(k), path, _short(ev), _short(av), why))
    return problems


def read_jsonl(path):
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError("%s:%d: not JSON: %s" % (path, n, e))
    return records


def summary(records):
    n_i = sum(1 for r in records if kind_of(r) == "interest_delta")
    n_a = sum(1 for r in records if kind_of(r) == "attribution")
    return "%d interest deltas, %d attributions" % (n_i, n_a)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare two JSON-lines files of tally records.")
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--tol", type=float, default=1e-9)
    ap.add_argument("--exact-explanation", action="store_true",
                    help="require identical explanation sentences")
    ap.add_argument("--max-mismatches", type=int, default=MAX_MISMATCHES)
    ap.add_argument("--ignore-type", action="append", default=[], metavar="TYPE",
                    help="leave out records of this \"type\" (e.g. credit_delta); repeatable")
    ap.add_argument("--rule-only", action="store_true",
                    help="compare without the online model's fields (shapley, removal, p_*, "
                         "model_version)")
    args = ap.parse_args(argv)
    try:
        exp = read_jsonl(args.expected)
        act = read_jsonl(args.actual)
    except (OSError, ValueError) as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return 2
    problems = compare(exp, act, args.tol, args.exact_explanation, args.max_mismatches,
                       tuple(args.ignore_type), args.rule_only)
    if problems:
        print("DIFFERENT: %s (expected: %s; actual: %s)" % (
            args.expected, summary(exp), summary(act)))
        for p in problems:
            print(p)
        return 1
    print("EQUAL: %s records match to %g (%s)" % (len(exp), args.tol, summary(exp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
