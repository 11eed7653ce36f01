#!/usr/bin/env python3
"""integration.truth: the ground-truth generator and its reference (truth.py) are right,
so that methods can be scored against them (bench/attribution_truth.py).

1. truth.shapley against hand-computed values (two players: the closed form; a null
   player gets 0), efficiency (the values sum to v(S) - v(empty)) and symmetry on random
   cases, and the sampled path against the exact one on 17 players.
2. `tally gen --truth`: the same seed gives the same bytes, another seed other bytes;
   --null writes every effect 0; the events parse (tally replay --strict reads every row).
3. The generator follows its own formula: in the null run a user buys at each decision
   moment with probability sigmoid(base_logit + intent_coef * z_u), so the number of
   purchases is a sum of Poisson(days * visit_rate * sigmoid(...)) counts; the observed
   total must lie within 4 standard deviations of that expectation; likewise each
   channel's impressions, Poisson with mean rate * days * exp(targeting * z_u -
   targeting^2 / 2) summed over users.
4. The order effect (`--order FIRST,THEN,EFFECT`): the Shapley values of a game with an
   order term against the two-player closed form, efficiency on random order games and
   the sampled path against the exact one; the generator records the order in
   TRUTH.json, is deterministic with it, and makes purchases after FIRST-then-THEN
   journeys more frequent; a FIRST channel without an effect of its own gets a true share.
5. The scoring of a replay: every purchase with touchpoints is matched to the truth's
   touchpoints (same event ids, same order), the true channel shares give 0 to the
   channels without effect, and every rule-based method and Markov is scored.
6. The purchase intent (`-X intent.enabled=true`) against what the generated users did:
   over the intent records whose week is inside the data, the mean p is within 0.05 of the
   share that bought within the week after, p ranks them (AUC at least 0.58), and its
   Brier score beats the share's own.

Environment: TALLY_BIN, TALLY_SOURCE_DIR. Exit 0 passed, 1 failed.
"""

import bisect
import csv
import filecmp
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fixtures as fx  # noqa: E402
import truth as tr  # noqa: E402

TALLY = os.environ.get("TALLY_BIN", os.path.join(HERE, "..", "..", "build", "tally"))
USERS = 1500


def check(cond, what, problems):
    if not cond:
        problems.append(what)


def sampled_vs_exact(terms, what, pr):
    """The sampled Shapley values of a 17-player game (one more than the exact path takes)
    against the exact ones; their largest relative difference."""
    xs = [0.05 + 0.02 * i for i in range(17)]
    sampled = tr.shapley(-3.0, xs, random.Random(5), terms)
    old, tr.EXACT_MAX = tr.EXACT_MAX, 17
    try:
        exact = tr.shapley(-3.0, xs, random.Random(5), terms)
    finally:
        tr.EXACT_MAX = old
    worst = max(abs(s - e) / e for s, e in zip(sampled, exact))
    check(worst < 0.05, "%ssampled Shapley off the exact one by %.1f%%" % (what, 100 * worst), pr)
    return worst


def test_shapley(pr):
    base, a, b = -2.0, 0.7, 0.3
    v = lambda s: tr.sigmoid(base + s)  # noqa: E731
    phi = tr.shapley(base, [a, b, 0.0], random.Random(1))
    want_a = 0.5 * (v(a) - v(0)) + 0.5 * (v(a + b) - v(b))
    want_b = 0.5 * (v(b) - v(0)) + 0.5 * (v(a + b) - v(a))
    check(abs(phi[0] - want_a) < 1e-12 and abs(phi[1] - want_b) < 1e-12 and phi[2] == 0.0,
          "shapley two players: %s, expected %.12f %.12f 0" % (phi, want_a, want_b), pr)
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randint(1, 9)
        xs = [rng.choice([0.0, rng.uniform(-1, 2)]) for _ in range(n)]
        base = rng.uniform(-5, 1)
        phi = tr.shapley(base, xs, rng)
        total = tr.sigmoid(base + sum(xs)) - tr.sigmoid(base)
        check(abs(sum(phi) - total) < 1e-12, "efficiency: %g vs %g" % (sum(phi), total), pr)
        xs2 = xs + [xs[0]]   # a twin of player 0 gets what player 0 gets
        phi2 = tr.shapley(base, xs2, rng)
        check(abs(phi2[0] - phi2[-1]) < 1e-12, "symmetry: %s" % phi2, pr)
    worst = sampled_vs_exact([], "", pr)
    return "two-player closed form, efficiency and symmetry on 50 cases, sampled vs exact " \
           "(17 players) within %.1f%%" % (100 * worst)


def test_order_game(pr):
    """The game with an order term: touchpoint 1 (THEN) adds c when touchpoint 0 (FIRST)
    is in the coalition with it."""
    base, a, b, c = -3.0, 0.0, 0.4, 0.9
    v = lambda s: tr.sigmoid(base + s)  # noqa: E731
    phi = tr.shapley(base, [a, b], random.Random(1), [(1, [0], c)])
    want0 = 0.5 * (v(a) - v(0)) + 0.5 * (v(a + b + c) - v(b))
    want1 = 0.5 * (v(b) - v(0)) + 0.5 * (v(a + b + c) - v(a))
    check(abs(phi[0] - want0) < 1e-12 and abs(phi[1] - want1) < 1e-12,
          "order game, two players: %s, expected %.12f %.12f" % (phi, want0, want1), pr)
    check(phi[0] > 0, "a FIRST touchpoint without an effect of its own got %g" % phi[0], pr)
    rng = random.Random(11)
    for _ in range(50):
        n = rng.randint(2, 9)
        xs = [rng.choice([0.0, rng.uniform(-1, 2)]) for _ in range(n)]
        terms = []
        for j in range(1, n):
            if rng.random() < 0.4:
                terms.append((j, rng.sample(range(j), rng.randint(1, j)), rng.uniform(-1, 2)))
        base = rng.uniform(-5, 1)
        phi = tr.shapley(base, xs, rng, terms)
        total = tr.sigmoid(tr.logit(base, xs, terms, set(range(n)))) - tr.sigmoid(base)
        check(abs(sum(phi) - total) < 1e-12, "order game efficiency: %g vs %g" % (sum(phi), total), pr)
    worst = sampled_vs_exact([(5, [1, 2], 0.6), (16, [0], 0.3)], "order game: ", pr)
    return "two-player closed form, efficiency on 50 random order games, sampled vs exact " \
           "(17 players) within %.1f%%" % (100 * worst)


def ordered_share(t, ev, first, then):
    """The part of the purchases with touchpoints that have one of channel first before
    one of channel then."""
    with_tps = [[c for _, _, c in tps] for _, _, _, tps in tr.purchases(t, ev) if tps]
    hit = sum(1 for cs in with_tps if any(c == then and first in cs[:j] for j, c in enumerate(cs)))
    return hit / len(with_tps), len(with_tps)


def test_order(d, pr):
    ev0, t0 = gen(d, "o0", "--seed", "4", "--users", "700")
    ev1, t1 = gen(d, "o1", "--seed", "4", "--users", "700", "--order", "email,social,3")
    ev2, _ = gen(d, "o2", "--seed", "4", "--users", "700", "--order", "email,social,3")
    check(t0["order"] is None, "no --order, but TRUTH.json says %s" % t0["order"], pr)
    check(t1["order"] == {"first": "email", "then": "social", "effect": 3},
          "--order email,social,3 written as %s" % t1["order"], pr)
    check(filecmp.cmp(ev1, ev2, shallow=False), "--order: same seed, different bytes", pr)
    f0, n0 = ordered_share(t0, ev0, "email", "social")
    f1, n1 = ordered_share(t1, ev1, "email", "social")
    # The same users and exposures (the seed); with the order effect a decision moment
    # after an email-then-social pair has log-odds up to 3 higher, so purchases after
    # that order are several times as many, and the others about as many (they differ
    # only because purchases end journeys at other moments).
    check(f1 * n1 > 2 * f0 * n0 and (1 - f1) * n1 < 2 * (1 - f0) * n0,
          "purchases after email then social: %d with the order effect, %d without; after "
          "other journeys %d and %d" % (f1 * n1, f0 * n0, (1 - f1) * n1, (1 - f0) * n0), pr)
    out = os.path.join(d, "o1.jsonl")
    subprocess.run([TALLY, "replay", "--input", ev1, "--format", "canonical", "--output", out,
                    "-X", "log.level=warn"], check=True, stderr=subprocess.DEVNULL)
    res = tr.evaluate(t1, ev1, out)
    share = res["true_shares"]
    check(res["unmatched"] == 0, "%d attributions with other touchpoints than the truth's"
          % res["unmatched"], pr)
    check(share["email"] > 0.05 and share["retarget"] == 0,
          "true shares with the order effect: %s (email, without an effect of its own, causes "
          "purchases when social follows; retarget never does)" % share, pr)
    return "purchases after email then social: %d with the order effect, %d without; true " \
           "shares %s" % (f1 * n1, f0 * n0, ", ".join("%s %.3f" % kv for kv in share.items()))


def gen(d, name, *args):
    ev, tj = os.path.join(d, name + ".csv"), os.path.join(d, name + ".json")
    subprocess.run([TALLY, "gen", "--truth", tj, "--output", ev, "--users", str(USERS)] + list(args),
                   check=True)
    with open(tj) as fh:
        return ev, json.load(fh)


def test_generator(d, pr):
    ev1, _ = gen(d, "a", "--seed", "5")
    ev2, _ = gen(d, "b", "--seed", "5")
    ev3, _ = gen(d, "c", "--seed", "6")
    check(filecmp.cmp(ev1, ev2, shallow=False), "same seed, different bytes", pr)
    check(not filecmp.cmp(ev1, ev3, shallow=False), "another seed, same bytes", pr)
    evn, tn = gen(d, "null", "--seed", "5", "--null")
    check(all(c["effect"] == 0 and c["targeting"] == 0 for c in tn["channels"]),
          "--null left an effect or a targeting", pr)
    out = os.path.join(d, "null.jsonl")
    r = subprocess.run([TALLY, "replay", "--input", evn, "--format", "canonical", "--strict",
                        "--output", out, "-X", "log.level=warn"], capture_output=True, text=True)
    check(r.returncode == 0, "replay --strict of the generated file: %s" % r.stderr[-500:], pr)

    # The null run's purchases against the formula.
    p = [tr.sigmoid(tn["base_logit"] + tn["intent_coef"] * z) for z in tn["intent"].values()]
    lam = [tn["days"] * tn["visit_rate"] * x for x in p]
    mean, sd = sum(lam), math.sqrt(sum(lam))
    with open(evn, newline="") as fh:
        rows = list(csv.DictReader(fh))
    bought = sum(1 for r in rows if r["type"] == "PURCHASE")
    check(abs(bought - mean) < 4 * sd, "null run: %d purchases, the formula expects %.0f +- %.0f"
          % (bought, mean, sd), pr)
    # Exposure rates: each channel's impressions per user and day near its rate.
    per = Counter(r["channel"] for r in rows if r["type"] == "IMPRESSION")
    for c in tn["channels"]:
        g = c["targeting"]
        want = sum(c["rate"] * tn["days"] * math.exp(g * z - g * g / 2) for z in tn["intent"].values())
        check(abs(per[c["name"]] - want) < 4 * math.sqrt(want),
              "%s: %d impressions, expected about %.0f" % (c["name"], per[c["name"]], want), pr)
    return "deterministic; null run: %d purchases, formula %.0f +- %.0f; impressions per channel " \
           "as their rates" % (bought, mean, sd)


def replay(ev, *settings):
    """`tally replay` of the generated events ev into ev's name with .jsonl; its path."""
    out = os.path.splitext(ev)[0] + ".jsonl"
    subprocess.run([TALLY, "replay", "--input", ev, "--format", "canonical", "--output", out,
                    "-X", "log.level=warn"] + [y for x in settings for y in ("-X", x)],
                   check=True, stderr=subprocess.DEVNULL)
    return out


def test_scoring(d, pr):
    ev, t = gen(d, "eff", "--seed", "9")
    out = replay(ev, "markov.enabled=true")
    res = tr.evaluate(t, ev, out)
    check(res["unmatched"] == 0, "%d attributions with other touchpoints than the truth's"
          % res["unmatched"], pr)
    zero = [c["name"] for c in t["channels"] if c["effect"] == 0]
    check(all(res["true_shares"][n] == 0 for n in zero), "a channel without effect has a true "
          "share: %s" % res["true_shares"], pr)
    eff = sorted((c for c in t["channels"] if c["effect"] > 0), key=lambda c: -c["effect"] * c["rate"])
    methods = {r["method"] for r in res["methods"]}
    check(set(tr.RULES) | {"markov"} <= methods, "methods scored: %s" % sorted(methods), pr)
    for r in res["methods"]:
        check(0 <= r["tv"] <= 1 and abs(sum(r["shares"].values()) - 1) < 1e-9,
              "%s: TV %g, shares %s" % (r["method"], r["tv"], r["shares"]), pr)
    return "%d purchases, %d attributions all matched; true shares %s (%s first)" % (
        res["purchases"], res["attributions"],
        ", ".join("%s %.3f" % kv for kv in res["true_shares"].items()), eff[0]["name"])


def intent_scores(events, out):
    """(p, bought within the window) of every intent record of out whose window ends
    before the last event of events."""
    buys, last = {}, 0
    with open(events, newline="") as fh:
        for r in csv.DictReader(fh):
            ts = int(r["ts"])
            last = max(last, ts)
            if r["type"] == "PURCHASE":
                buys.setdefault(r["user_id"], []).append(ts)
    scores = []
    with open(out) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] != "intent_delta" or r["ts"] + r["window_ms"] > last:
                continue
            end = r["ts"] + r["window_ms"]
            scores.append((r["p"], any(r["ts"] < b <= end for b in buys.get(r["user_id"], ()))))
    return scores


def test_intent(d, pr):
    ev, _ = gen(d, "intent", "--seed", "9")
    out = replay(ev, "intent.enabled=true")
    scores = intent_scores(ev, out)
    check(len(scores) >= 1000, "%d intent records scored" % len(scores), pr)
    if not scores:
        return ""
    n = len(scores)
    rate = sum(y for _, y in scores) / n
    mean = sum(p for p, _ in scores) / n
    brier = sum((p - y) ** 2 for p, y in scores) / n
    base = sum((rate - y) ** 2 for _, y in scores) / n
    pos = [p for p, y in scores if y]
    neg = sorted(p for p, y in scores if not y)
    # AUC: for each positive, the negatives below it (ties half), by bisection
    a = sum(bisect.bisect_left(neg, p) + (bisect.bisect_right(neg, p) - bisect.bisect_left(neg, p)) / 2
            for p in pos) / (len(pos) * len(neg)) if pos and neg else float("nan")
    check(abs(mean - rate) <= 0.05, "mean p %.3f, %.3f bought" % (mean, rate), pr)
    check(a >= 0.58, "AUC %.3f" % a, pr)
    check(brier < base, "Brier %.4f, the share's own %.4f" % (brier, base), pr)
    return "%d records: mean p %.3f, %.3f bought; AUC %.3f; Brier %.4f against %.4f" % (
        n, mean, rate, a, brier, base)


def main():
    problems_all = 0
    with tempfile.TemporaryDirectory(prefix="tally-truth-") as d:
        steps = (("shapley reference", test_shapley),
                 ("shapley reference, order game", test_order_game),
                 ("generator", lambda pr: test_generator(d, pr)),
                 ("order effect", lambda pr: test_order(d, pr)),
                 ("scoring a replay", lambda pr: test_scoring(d, pr)),
                 ("purchase intent against outcomes", lambda pr: test_intent(d, pr)))
        for name, f in steps:
            pr = []
            try:
                info = f(pr)
            except Exception as e:   # a failed step is reported, the others still run
                info = ""
                pr.append("%s: %s" % (type(e).__name__, e))
            problems_all += fx.step_verdict(name, info, pr)
    return fx.steps_summary(len(steps), problems_all)


if __name__ == "__main__":
    sys.exit(main())
