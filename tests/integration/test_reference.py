#!/usr/bin/env python3
"""Hand-computed checks of reference.py and compare.py.

The expected numbers below are worked out by hand from docs/interests.md and
docs/attribution.md, with half-lives chosen so that every decay factor is a power of 2.
Runs with plain python3 (prints "N passed, N failed") or under pytest.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import reference as ref  # noqa: E402

HOUR = 3_600_000
DAY = 86_400_000
HALF = 1_800_000  # 1800 s


def ev(eid, ts, type_="BROWSE", user="u", cat="c", item="i", channel=None, value=None):
    return {"event_id": str(eid), "user_id": user, "item_id": item, "category_id": cat,
            "type": type_, "ts": ts, "channel": channel, "dwell_ms": None, "value": value}


def deltas(records, dim="category"):
    return [r for r in records if r["type"] == "interest_delta" and r["dim"] == dim]


def attributions(records):
    return [r for r in records if r["type"] == "attribution"]


def close(a, b, tol=1e-12):
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def assert_close(a, b, what=""):
    assert close(a, b), "%s: expected %r, got %r" % (what, b, a)


def assert_list_close(a, b, what=""):
    assert len(a) == len(b), "%s: expected %r, got %r" % (what, b, a)
    for i, (x, y) in enumerate(zip(a, b)):
        assert close(x, y), "%s[%d]: expected %r, got %r (all: %r)" % (what, i, y, x, a)


# ------------------------------------------------------------------------ interests

def test_worked_example():
    """docs/interests.md: H = 1800 s, alpha 1, beta 0, adds at 0 and 1800 s."""
    p = {"half_life_ms": HALF, "alpha": 1, "beta": 0}
    out = deltas(ref.compute([ev(1, 0), ev(2, HALF), ev(3, 2 * HALF)], p))
    d1, d2, d3 = out
    assert d1["ts"] == 0 and d1["rank"] == 1
    assert_close(d1["f"], 1.0, "f after first")
    assert_close(d1["weight_before"], 0.0, "wb first")
    assert_close(d1["decay_part"], 0.0, "decay first")
    assert_close(d1["evidence_part"], 1.0, "evidence first")
    assert_close(d1["weight_after"], 1.0, "wa first")
    assert d2["ts"] == HALF
    assert_close(d2["weight_before"], 1.0, "wb second")
    assert_close(d2["decay_part"], -0.5, "decay second")
    assert_close(d2["evidence_part"], 1.0, "evidence second")
    assert_close(d2["f"], 1.5, "f second")
    assert_close(d2["weight_after"], 1.5, "wa second")
    # read at 3600 s: 0.75 (the third event sees the stored 1.5 decayed to 0.75)
    assert_close(ref.decay(2 * HALF - HALF, HALF) * d2["f"], 0.75, "read at 3600 s")
    assert_close(d3["weight_before"], 1.5, "wb third")
    assert_close(d3["weight_before"] + d3["decay_part"], 0.75, "decayed weight at 3600 s")
    assert_close(d3["weight_after"], 1.75, "wa third")
    assert d3["event_id"] == "3" and d3["user_id"] == "u" and d3["dim_id"] == "c"


def test_heat_and_default_weights():
    """alpha = beta = 0.5, heat ADD_TO_CART 4 then BROWSE 1, one half-life apart."""
    p = {"half_life_ms": HALF}
    d1, d2 = deltas(ref.compute([ev(1, 0, "ADD_TO_CART"), ev(2, HALF, "BROWSE")], p))
    assert_close(d1["f"], 1.0)
    assert_close(d1["h"], 4.0)
    assert_close(d1["weight_after"], 2.5)
    assert_close(d1["evidence_part"], 2.5)
    assert_close(d2["weight_before"], 2.5)
    assert_close(d2["decay_part"], -1.25)
    assert_close(d2["evidence_part"], 1.0)
    assert_close(d2["f"], 1.5)
    assert_close(d2["h"], 3.0)
    assert_close(d2["weight_after"], 2.25)
    assert_close(d2["weight_after"], 0.5 * d2["f"] + 0.5 * d2["h"])


def test_heat_override():
    p = ref.make_params(["features.heat.browse=7", "heat.PURCHASE=0", "alpha=0", "beta=1"])
    assert p["heat"]["BROWSE"] == 7.0 and p["heat"]["PURCHASE"] == 0.0
    d1, d2 = deltas(ref.compute([ev(1, 0, "BROWSE"), ev(2, 0, "PURCHASE")], p))
    assert_close(d1["weight_after"], 7.0)
    assert_close(d2["evidence_part"], 0.0)
    assert_close(d2["h"], 7.0)
    assert_close(d2["f"], 2.0)


def test_out_of_order_event():
    """A late event grows nothing in the past: as_of stays at the stored time, and the
    evidence is decayed from the event's own time forward."""
    p = {"half_life_ms": HALF, "alpha": 1, "beta": 0}
    d1, d2, d3 = deltas(ref.compute(
        [ev(1, HALF), ev(2, 0), ev(3, 0, cat="other")], p))
    assert d2["ts"] == HALF
    assert_close(d2["weight_before"], 1.0)
    assert_close(d2["decay_part"], 0.0)
    assert_close(d2["evidence_part"], 0.5)
    assert_close(d2["f"], 1.5)
    # a late event on a new entry: as_of is its own ts; the other entry (1.5 at HALF)
    # read at 0 is 3.0, strictly greater than 1
    assert d3["ts"] == 0
    assert_close(d3["weight_after"], 1.0)
    assert d3["rank"] == 2


def test_rank():
    p = {"half_life_ms": HOUR, "alpha": 1, "beta": 0}
    events = [ev(1, 0, cat="A"), ev(2, 0, cat="A"),      # A = 2
              ev(3, 0, cat="B"),                          # B = 1 < A       -> rank 2
              ev(4, 0, cat="C"),                          # C = 1, A 2, B 1 -> rank 2 (tie not counted)
              ev(5, 0, cat="B"),                          # B = 2, A 2, C 1 -> rank 1
              ev(6, HOUR, cat="D"),                       # D 1; A 1, B 1, C .5 -> rank 1
              ev(7, HOUR, cat="A"),                       # A 2-1+1 = 2 -> rank 1
              ev(8, 2 * HOUR, cat="C"),                   # C 1.25; A 1, B .5, D .5 -> 1
              ev(9, 2 * HOUR, cat="E")]                   # E 1; A 1, B .5, C 1.25, D .5 -> 2
    out = deltas(ref.compute(events, p))
    assert [d["rank"] for d in out] == [1, 1, 2, 2, 1, 1, 1, 1, 2], [d["rank"] for d in out]
    assert_close(out[6]["weight_after"], 2.0)
    assert_close(out[7]["weight_after"], 1.25)
    assert_close(out[7]["decay_part"], -0.75)


def test_rank_per_dimension_and_dims_order():
    p = {"half_life_ms": HOUR, "alpha": 1, "beta": 0, "dims": "category,item,channel"}
    events = [ev(1, 0, cat="X", item="i1", channel="web"),
              ev(2, 0, cat="Y", item="i1"),
              ev(3, 0, cat="Y", item="i1", channel="app")]
    out = ref.compute(events, p)
    assert [(d["event_id"], d["dim"], d["dim_id"]) for d in out] == [
        ("1", "category", "X"), ("1", "item", "i1"), ("1", "channel", "web"),
        ("2", "category", "Y"), ("2", "item", "i1"),
        ("3", "category", "Y"), ("3", "item", "i1"), ("3", "channel", "app")]
    ranks = [d["rank"] for d in out]
    # event 2: Y(1) vs X(1) -> 1; event 3: app(1) vs web(1) -> 1
    assert ranks == [1, 1, 1, 1, 1, 1, 1, 1], ranks
    assert_close(out[6]["f"], 3.0)
    # category only by default: no item or channel deltas
    out = ref.compute(events, {"half_life_ms": HOUR})
    assert {d["dim"] for d in out} == {"category"} and len(out) == 3


def test_missing_category_gives_no_category_delta():
    p = {"dims": "category,item"}
    out = ref.compute([ev(1, 0, cat=None)], p)
    assert [(d["dim"], d["dim_id"]) for d in out] == [("item", "i")]


def test_epsilon_drop():
    p = {"half_life_ms": HOUR, "alpha": 1, "beta": 0}
    # A = 1 at 0; B at 30 h reads A as 2^-30 < 1e-6 -> A is deleted; A at 30 h is new
    r = ref.Reference(p)
    r.process(ev(1, 0, cat="A"))
    r.process(ev(2, 30 * HOUR, cat="B"))
    assert "A" not in r.interests.state["u"]["category"]
    (a,) = r.process(ev(3, 30 * HOUR, cat="A"))
    assert a["weight_before"] == 0.0 and a["decay_part"] == 0.0
    assert a["f"] == 1.0 and a["ts"] == 30 * HOUR
    # without the event on B, A survives (its own entry is never dropped)
    out = deltas(ref.compute([ev(1, 0, cat="A"), ev(3, 30 * HOUR, cat="A")], p))
    assert_close(out[1]["weight_before"], 1.0)
    assert_close(out[1]["decay_part"], 2.0 ** -30 - 1.0)
    # 19 half-lives: 2^-19 = 1.9e-6 >= 1e-6 -> kept
    out = deltas(ref.compute([ev(1, 0, cat="A"), ev(2, 19 * HOUR, cat="B"),
                              ev(3, 19 * HOUR, cat="A")], p))
    assert_close(out[2]["weight_before"], 1.0)
    # epsilon is a parameter: 0.3 drops A (0.25) after two half-lives
    p2 = dict(p, epsilon=0.3)
    out = deltas(ref.compute([ev(1, 0, cat="A"), ev(2, 2 * HOUR, cat="B"),
                              ev(3, 2 * HOUR, cat="A")], p2))
    assert out[2]["weight_before"] == 0.0
    # ... but not when the read is above it (0.5 at one half-life)
    out = deltas(ref.compute([ev(1, 0, cat="A"), ev(2, HOUR, cat="B"),
                              ev(3, HOUR, cat="A")], p2))
    assert_close(out[2]["weight_before"], 1.0)
    # a dropped entry is not counted in rank, even when its weight would not matter
    out = deltas(ref.compute([ev(1, 0, cat="A"), ev(2, 0, cat="A"), ev(3, 2 * HOUR, cat="B")],
                             dict(p, epsilon=0.6)))
    assert out[2]["rank"] == 1   # A reads 0.5 < 0.6: dropped; B = 1


# ---------------------------------------------------------------------- attribution

P_TD = {"time_decay_half_life_ms": HOUR}


def one_attribution(events, params=P_TD):
    recs = attributions(ref.compute(events, params))
    assert len(recs) == 1, recs
    return recs[0]


def check_sums(rec):
    for m in ref.METHODS:
        assert_close(sum(rec["credits"][m]), 1.0, m + " sums to 1")
        assert len(rec["credits"][m]) == len(rec["touchpoints"])


def test_credits_one_touchpoint():
    rec = one_attribution([ev("t1", 0), ev("p", HOUR, "PURCHASE", value=9.5)])
    assert [t["event_id"] for t in rec["touchpoints"]] == ["t1"]
    for m in ref.METHODS:
        assert_list_close(rec["credits"][m], [1.0], m)
    assert rec["conversion_event_id"] == "p" and rec["ts"] == HOUR and rec["value"] == 9.5
    assert rec["item_id"] == "i" and rec["category_id"] == "c" and rec["user_id"] == "u"
    assert rec["p_conversion"] is None and rec["p_baseline"] is None
    assert rec["model_version"] is None
    assert set(rec["credits"]) == set(ref.METHODS)
    assert rec["touchpoints"][0] == {"event_id": "t1", "item_id": "i", "category_id": "c",
                                     "channel": None, "type": "BROWSE", "ts": 0,
                                     "campaign": None}


def test_credits_two_touchpoints_tied_ts():
    rec = one_attribution([ev("t1", HOUR), ev("t2", HOUR, "CLICK"),
                           ev("p", 2 * HOUR, "PURCHASE")])
    assert [t["event_id"] for t in rec["touchpoints"]] == ["t1", "t2"]
    c = rec["credits"]
    assert_list_close(c["last_touch"], [0.0, 1.0], "last")     # t2 arrived later
    assert_list_close(c["first_touch"], [1.0, 0.0], "first")
    assert_list_close(c["linear"], [0.5, 0.5], "linear")
    assert_list_close(c["time_decay"], [0.5, 0.5], "time_decay")
    assert_list_close(c["position_based"], [0.5, 0.5], "position")
    check_sums(rec)


def test_credits_three_touchpoints_out_of_order_and_tie():
    # arrival x(2h), y(1h, late), z(2h): journey order y, x, z
    rec = one_attribution([ev("x", 2 * HOUR), ev("y", HOUR), ev("z", 2 * HOUR),
                           ev("p", 3 * HOUR, "PURCHASE")])
    assert [t["event_id"] for t in rec["touchpoints"]] == ["y", "x", "z"]
    c = rec["credits"]
    assert_list_close(c["last_touch"], [0.0, 0.0, 1.0], "last")
    assert_list_close(c["first_touch"], [1.0, 0.0, 0.0], "first")
    assert_list_close(c["linear"], [1 / 3, 1 / 3, 1 / 3], "linear")
    # weights 1/4, 1/2, 1/2 -> / 1.25
    assert_list_close(c["time_decay"], [0.2, 0.4, 0.4], "time_decay")
    assert_list_close(c["position_based"], [0.4, 0.2, 0.4], "position")
    check_sums(rec)


def test_credits_four_touchpoints():
    # a touch at the purchase's own ts counts (ts <= P.ts)
    rec = one_attribution([ev("a", 0), ev("b", HOUR), ev("c", 2 * HOUR), ev("d", 2 * HOUR),
                           ev("p", 2 * HOUR, "PURCHASE")])
    assert [t["event_id"] for t in rec["touchpoints"]] == ["a", "b", "c", "d"]
    c = rec["credits"]
    assert_list_close(c["last_touch"], [0, 0, 0, 1.0], "last")
    assert_list_close(c["first_touch"], [1.0, 0, 0, 0], "first")
    assert_list_close(c["linear"], [0.25] * 4, "linear")
    # weights 1/4, 1/2, 1, 1 -> / 2.75
    assert_list_close(c["time_decay"], [1 / 11, 2 / 11, 4 / 11, 4 / 11], "time_decay")
    assert_list_close(c["position_based"], [0.4, 0.1, 0.1, 0.4], "position")
    check_sums(rec)


def test_credits_five_touchpoints_position():
    rec = one_attribution([ev(i, i * HOUR) for i in range(5)] +
                          [ev("p", 5 * HOUR, "PURCHASE")])
    assert_list_close(rec["credits"]["position_based"],
                      [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4], "position")
    assert_list_close(rec["credits"]["time_decay"],
                      [w / 31 for w in (1, 2, 4, 8, 16)], "time_decay")


def test_default_time_decay_half_life():
    # Ha = 7 days by default: touches 7 days and 0 days before -> 1/3, 2/3
    rec = one_attribution([ev("a", 0), ev("b", 7 * DAY), ev("p", 7 * DAY, "PURCHASE")], {})
    assert_list_close(rec["credits"]["time_decay"], [1 / 3, 2 / 3], "time_decay")


def test_touch_after_purchase_ts_is_not_a_touchpoint():
    # "late" is the purchase here: the touch with ts after P.ts stays in the journey
    out = attributions(ref.compute([ev("t", 2 * HOUR), ev("p1", HOUR, "PURCHASE"),
                                    ev("p2", 3 * HOUR, "PURCHASE")], P_TD))
    assert [r["conversion_event_id"] for r in out] == ["p2"]
    assert [t["event_id"] for t in out[0]["touchpoints"]] == ["t"]


def test_lookback_exclusion():
    L = 7 * DAY
    # exactly L before: included; one ms more: excluded
    r = one_attribution([ev("a", 0), ev("p", L, "PURCHASE")], {})
    assert [t["event_id"] for t in r["touchpoints"]] == ["a"]
    out = attributions(ref.compute([ev("a", 0), ev("p", L + 1, "PURCHASE")], {}))
    assert out == []
    r = one_attribution([ev("a", 0), ev("b", DAY), ev("p", L + 1, "PURCHASE")], {})
    assert [t["event_id"] for t in r["touchpoints"]] == ["b"]
    # lookback is a parameter
    r = one_attribution([ev("a", 0), ev("b", HOUR), ev("p", 2 * HOUR, "PURCHASE")],
                        {"attribution.lookback.ms": str(HOUR)})
    assert [t["event_id"] for t in r["touchpoints"]] == ["b"]


def test_journey_pruned_against_newest_ts():
    L = 7 * DAY
    # t2 (L+1) prunes t0 (0); the late t1 (1 day) is kept; P at L would have taken t0
    # by its own window, but t0 is gone; t2 is after P and stays for the next purchase
    r = ref.Reference({})
    for e in (ev("t0", 0), ev("t2", L + 1), ev("t1", DAY)):
        r.process(e)
    assert [t["event_id"] for t in r.journeys.state["u"]] == ["t1", "t2"]
    (d, a) = r.process(ev("p", L, "PURCHASE"))
    assert [t["event_id"] for t in a["touchpoints"]] == ["t1"]
    (d, a) = r.process(ev("p2", L + 2, "PURCHASE"))
    assert [t["event_id"] for t in a["touchpoints"]] == ["t2"]


def test_max_touchpoints():
    p = {"attribution.max.touchpoints": "3", "time_decay_half_life_ms": HOUR}
    rec = one_attribution([ev(i, i * HOUR) for i in range(1, 6)] +
                          [ev("p", 6 * HOUR, "PURCHASE")], p)
    assert [t["event_id"] for t in rec["touchpoints"]] == ["3", "4", "5"]
    # a late touch older than the kept ones is dropped at once
    rec = one_attribution([ev(i, i * HOUR) for i in range(1, 4)] +
                          [ev("late", 0), ev("p", 6 * HOUR, "PURCHASE")], p)
    assert [t["event_id"] for t in rec["touchpoints"]] == ["1", "2", "3"]


def test_reset_on_conversion():
    r = ref.Reference(P_TD)
    out = []
    for e in (ev("t1", 0), ev("p1", HOUR, "PURCHASE"), ev("p2", 2 * HOUR, "PURCHASE")):
        out += r.process(e)
    assert [a["conversion_event_id"] for a in attributions(out)] == ["p1"]
    assert r.purchases_without_touchpoints == 1
    out = attributions(ref.compute([ev("t1", 0), ev("p1", HOUR, "PURCHASE"),
                                    ev("t2", 2 * HOUR), ev("p2", 3 * HOUR, "PURCHASE")], P_TD))
    assert [[t["event_id"] for t in a["touchpoints"]] for a in out] == [["t1"], ["t2"]]
    # reset off: the second purchase is credited to both
    p = dict(P_TD, reset_on_conversion="false")
    out = attributions(ref.compute([ev("t1", 0), ev("p1", HOUR, "PURCHASE"),
                                    ev("t2", 2 * HOUR), ev("p2", 3 * HOUR, "PURCHASE")], p))
    assert [[t["event_id"] for t in a["touchpoints"]] for a in out] == [["t1"], ["t1", "t2"]]
    assert_list_close(out[1]["credits"]["time_decay"], [1 / 5, 4 / 5], "time_decay")


def test_purchase_as_touch_type():
    p = dict(P_TD, touch_types="BROWSE,PURCHASE")
    out = attributions(ref.compute([ev("t1", 0), ev("c1", 0, "CLICK"),
                                    ev("p1", HOUR, "PURCHASE"),
                                    ev("p2", 2 * HOUR, "PURCHASE")], p))
    # c1 is not a touch type; p1 is attributed first, then becomes p2's touchpoint
    assert [[t["event_id"] for t in a["touchpoints"]] for a in out] == [["t1"], ["p1"]]
    assert out[1]["touchpoints"][0]["type"] == "PURCHASE"


def test_purchase_without_touchpoints_and_users_apart():
    r = ref.Reference(P_TD)
    out = []
    for e in (ev("t1", 0, user="a"), ev("p", HOUR, "PURCHASE", user="b")):
        out += r.process(e)
    assert attributions(out) == [] and r.purchases_without_touchpoints == 1


# --------------------------------------------------------------------------- input

def _write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as fh:
        fh.write(text)
    return path


def test_read_taobao_and_canonical():
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "t.csv", "7,100,5,pv,1511848894\n7,101,5,cart,1511848895\n"
                                    "8,102,6,fav,1511848896\n7,100,5,buy,1511848900\n")
        evs = ref.read_events(path, "taobao")
        assert [e["event_id"] for e in evs] == ["1", "2", "3", "4"]
        assert [e["type"] for e in evs] == ["BROWSE", "ADD_TO_CART", "FAVORITE", "PURCHASE"]
        assert evs[0]["ts"] == 1511848894000 and evs[0]["category_id"] == "5"
        assert evs[0]["user_id"] == "7" and evs[0]["item_id"] == "100"
        assert evs[0]["channel"] is None and evs[0]["value"] is None
        path = _write(tmp, "c.csv",
                      "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value\n"
                      "e1,u1,i1,c1,BROWSE,1000,web,1500,\n"
                      ",u1,i2,,click,2000,,,\n"
                      "e3,u1,i1,c1,PURCHASE,3000,app,,12.5\n")
        evs = ref.read_events(path, "canonical")
        assert [e["event_id"] for e in evs] == ["e1", "2", "e3"]
        assert evs[0]["channel"] == "web" and evs[0]["dwell_ms"] == 1500
        assert evs[1]["category_id"] is None and evs[1]["channel"] is None
        assert evs[1]["type"] == "CLICK" and evs[1]["ts"] == 2000
        assert evs[2]["value"] == 12.5


def test_cli_round_trip():
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "t.csv", "7,100,5,pv,1511848894\n7,101,5,cart,1511848895\n"
                                    "7,100,5,buy,1511848900\n")
        out = os.path.join(tmp, "out.jsonl")
        subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), "--input", path,
                        "--format", "taobao", "--output", out,
                        "--param", "features.half.life.ms=1000"], check=True,
                       stderr=subprocess.DEVNULL)
        recs = cmp.read_jsonl(out)
        assert [r["type"] for r in recs] == ["interest_delta"] * 3 + ["attribution"]
        assert_close(recs[1]["decay_part"], 0.5 - 1.0)
        res = subprocess.run([sys.executable, os.path.join(HERE, "compare.py"), out, out],
                             stdout=subprocess.PIPE, universal_newlines=True)
        assert res.returncode == 0, res.stdout
        recs[0]["f"] += 1e-6
        bad = os.path.join(tmp, "bad.jsonl")
        ref.write_jsonl(recs, bad)
        res = subprocess.run([sys.executable, os.path.join(HERE, "compare.py"), out, bad],
                             stdout=subprocess.PIPE, universal_newlines=True)
        assert res.returncode == 1 and ".f:" in res.stdout, res.stdout


# ------------------------------------------------------------------------- compare

def _sample():
    return ref.compute([ev("t1", 0, channel="web"), ev("t2", HOUR, "CLICK"),
                        ev("p", 2 * HOUR, "PURCHASE", value=3.0)],
                       {"dims": "category,item,channel"})


def test_compare_equal_and_without_type():
    exp = _sample()
    act = json.loads(json.dumps(exp))
    assert cmp.compare(exp, act) == []
    # records decoded from Kafka carry no "type"; order does not matter
    kafka = [{k: v for k, v in r.items() if k != "type"} for r in reversed(act)]
    assert cmp.compare(exp, kafka) == []
    # within tolerance
    act[0]["f"] += 1e-11
    assert cmp.compare(exp, act) == []
    # the actual explanation may be any non-empty sentence
    act[0]["explanation"] = "something else"
    assert cmp.compare(exp, act) == []
    assert cmp.compare(exp, act, exact_explanation=True) != []


def test_compare_detects_changed_float():
    exp = _sample()
    for field in ("f", "h", "weight_after", "decay_part"):
        act = json.loads(json.dumps(exp))
        act[1][field] += 1e-8 * max(1.0, abs(act[1][field]))
        problems = cmp.compare(exp, act)
        assert problems and any("." + field + ":" in p for p in problems), problems
    act = json.loads(json.dumps(exp))
    a = [r for r in act if r["type"] == "attribution"][0]
    a["credits"]["time_decay"][0] += 1e-8
    problems = cmp.compare(exp, act)
    assert any("credits.time_decay[0]" in p for p in problems), problems


def test_compare_detects_missing_extra_duplicate():
    exp = _sample()
    act = json.loads(json.dumps(exp))
    del act[2]
    problems = cmp.compare(exp, act)
    assert any("missing" in p for p in problems), problems
    act = json.loads(json.dumps(exp)) + [json.loads(json.dumps(exp[0]))]
    problems = cmp.compare(exp, act)
    assert any("duplicated" in p for p in problems), problems
    act = json.loads(json.dumps(exp))
    act.append(dict(act[0], event_id="zzz"))
    problems = cmp.compare(exp, act)
    assert any("unexpected record" in p for p in problems), problems


def test_compare_unknown_and_ignored_types():
    exp = _sample()
    act = json.loads(json.dumps(exp))
    act.append({"type": "credit_delta", "window_start": 0, "window_end": 1, "dim": "channel",
                "dim_id": "web", "method": "linear", "credit": 1.0, "credit_before": 0.0,
                "conversions": 1.0, "removal_effect": None})
    problems = cmp.compare(exp, act)
    assert any("neither" in p for p in problems), problems
    assert cmp.compare(exp, act, ignore_types=("credit_delta",)) == []


def test_compare_detects_field_differences():
    exp = _sample()

    def changed(fn):
        act = json.loads(json.dumps(exp))
        fn(act)
        return cmp.compare(exp, act)

    att = next(i for i, r in enumerate(exp) if r["type"] == "attribution")
    assert changed(lambda a: a[0].__setitem__("rank", 2))
    assert changed(lambda a: a[0].__setitem__("ts", a[0]["ts"] + 1))
    assert changed(lambda a: a[0].__setitem__("user_id", "v"))
    assert changed(lambda a: a[0].__setitem__("explanation", ""))
    assert changed(lambda a: a[0].pop("explanation"))
    assert changed(lambda a: a[0].pop("h"))
    assert changed(lambda a: a[0].__setitem__("extra_field", 1))
    assert changed(lambda a: a[att].__setitem__("value", None))
    assert changed(lambda a: a[att].__setitem__("p_conversion", 0.5))
    assert changed(lambda a: a[att]["touchpoints"][0].__setitem__("channel", None))
    assert changed(lambda a: a[att]["touchpoints"][0].__setitem__("type", "CLICK"))
    assert changed(lambda a: a[att]["touchpoints"].pop())
    assert changed(lambda a: a[att]["credits"].pop("linear"))
    assert changed(lambda a: a[att]["credits"].__setitem__("shapley", [0.5, 0.5]))
    assert changed(lambda a: a[att]["credits"]["linear"].pop())
    # a number printed without a fraction is still the same double
    assert not changed(lambda a: a[att].__setitem__("value", 3))


# ---------------------------------------------------------------------------- docs

def test_docs_schemas_examples():
    """The interest_delta and attribution examples of docs/schemas.md are what the
    reference computes on the CSV shown there."""
    import re
    path = os.path.join(HERE, "..", "..", "docs", "schemas.md")
    if not os.path.isfile(path):
        return
    text = open(path, encoding="utf-8").read()
    csv_text = re.search(r"```csv\n(.*?)```", text, re.S).group(1)
    examples = [json.loads(m) for m in re.findall(r"```json\n(.*?)```", text, re.S)]
    examples = [e for e in examples if e.get("type") in ("interest_delta", "attribution")]
    assert len(examples) == 2, examples
    with tempfile.TemporaryDirectory() as tmp:
        records = ref.run_file(_write(tmp, "ex.csv", csv_text), "canonical",
                               ["features.dims=category,item,channel"])
    keys = {cmp.key_of(e) for e in examples}
    chosen = [r for r in records if cmp.key_of(r) in keys]
    problems = cmp.compare(chosen, examples, tol=0.0, exact_explanation=True)
    assert not problems, problems


# ----------------------------------------------------------------------------- main

def test_attribution_schema_versions():
    """Attributions written with schema ids 3 (before model_status), 5 (before
    shapley_stderr) and 6 (before the touchpoints' campaign) read with id 11's schema, the
    later fields taking their default (null), as the Avro specification resolves it."""
    import io
    import fastavro
    d = os.path.join(HERE, "..", "..", "schemas")
    schemas = {}
    for i in (3, 5, 6, 11):
        with open(os.path.join(d, "%d-attribution.avsc" % i)) as fh:
            schemas[i] = fastavro.parse_schema(json.load(fh))
    rec = {"conversion_event_id": "p", "user_id": "u", "item_id": "i", "category_id": None,
           "ts": 1, "value": None, "touchpoints": [], "credits": {}, "p_conversion": None,
           "p_baseline": None, "model_version": None, "explanation": "x"}
    tp = {"event_id": "t", "item_id": "i", "category_id": None, "channel": "web",
          "type": "CLICK", "ts": 0}
    for i, written in ((3, rec), (5, dict(rec, model_status={"shapley": "ok"})),
                       (6, dict(rec, touchpoints=[tp], shapley_stderr=[0.5]))):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schemas[i], written)
        buf.seek(0)
        got = fastavro.schemaless_reader(buf, schemas[i], schemas[11], return_record_name=False)
        got["ts"] = rec["ts"]   # a timestamp-millis, read back as a datetime
        for t in got["touchpoints"]:
            t["ts"] = tp["ts"]
        want = dict(rec, model_status=written.get("model_status"),
                    shapley_stderr=written.get("shapley_stderr"),
                    touchpoints=[dict(t, campaign=None) for t in written["touchpoints"]])
        assert got == want, (i, got)
    text3 = open(os.path.join(d, "3-attribution.avsc")).read()
    text5 = open(os.path.join(d, "5-attribution.avsc")).read()
    text6 = open(os.path.join(d, "6-attribution.avsc")).read()
    assert "model_status" not in text3 and "shapley_stderr" not in text5
    assert "campaign" not in text6


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception as e:  # report every failure, then exit non-zero
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        else:
            passed += 1
            print("ok   %s" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
