#!/usr/bin/env python3
"""The true credits of `tally gen --truth` data, and every method scored against them.

Written from the process described in ingest/gen_truth.h and docs/attribution.md
("Ground truth"), from the generator's parameters and the users' intents (TRUTH.json),
never from tally's model.

For a purchase at time t by user u, its touchpoints S are u's impressions since u's
previous purchase, at most window_ms before t, the last max_touchpoints of them. The true
probability that a decision moment at t with the exposures A (a subset of S) ends in a
purchase is

    v(A) = sigmoid(base_logit + intent_coef * z_u + sum_{e in A} effect_c(e) * 2^(-(t - t_e)/half_life)
                   + sum_{e in A of channel THEN, after some e' in A of channel FIRST}
                         order_effect * 2^(-(t - t_e)/half_life))

(the last sum only with an order effect, TRUTH.json's "order": FIRST, THEN, its effect).

Its true credits: the Shapley values phi_i of v over S (exact: an exposure of a channel
without effect is a null player, and the others are enumerated, up to 16 of them; past
that, 20,000 sampled permutations), which sum to v(S) - v(empty); and the removal effects
r_i = v(S) - v(S without i). The shares are phi_i / sum phi and r_i / sum r (a purchase
whose touchpoints have no effect at all has no true shares).

A channel's true share is the expected number of purchases it caused (its "incremental
conversions") over the total. A purchase with touchpoints S happened with probability
v(S), of which v(S) - v(empty) is owed to S; so of one observed purchase, the fraction
(v(S) - v(empty)) / v(S) was caused by its touchpoints, and touchpoint i's part of it is
phi_i / v(S) (summed over purchases, its expectation is the sum of phi_i over every
decision moment: the purchases the channel caused). A method's share of a channel is the
sum of the credits it gives the channel's touchpoints over the sum of all its credits,
where the model methods' credits of a purchase are weighted by the part of it the model
says the touchpoints are owed, 1 - p_baseline / p_conversion (its shares sum to 1 per
purchase; the rule-based methods credit every purchase in full); for Markov, its last
credit per channel (credit_delta records).

Scores per method: TV, the total-variation distance between its channel shares and the
true ones (1/2 sum |a - b|, 0 = equal, 1 = disjoint); TV without the confounded channels
(targeting != 0) renormalised; per-purchase error, the mean over purchases with true shares
of 1/2 sum_i |credit_i - share_i| (for the Shapley truth); and the confounded channels'
share against their true share.

Usage: truth.py --truth TRUTH.json --events EVENTS.csv --output OUT.jsonl [--json F]
(OUT.jsonl from `tally replay --input EVENTS.csv --format canonical --output OUT.jsonl`).
"""

import argparse
import csv
import json
import math
import random
import sys
from collections import defaultdict

RULES = ["last_touch", "first_touch", "linear", "time_decay", "position_based"]
MODEL = ["shapley", "removal"]
EXACT_MAX = 16


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def logit(base, xs, terms, members):
    """base + the xs of the players in members + the bonus of every order term (j, firsts,
    bonus) whose j and at least one of whose firsts are in members."""
    x = base + sum(xs[i] for i in members)
    return x + sum(b for j, firsts, b in terms if j in members and any(f in members for f in firsts))


def shapley(base, xs, rng, terms=()):
    """Shapley values of v(A) = sigmoid(logit(base, xs, terms, A)); terms are the order
    terms (j, [players before j of the first channel], bonus)."""
    n = len(xs)
    phi = [0.0] * n
    terms = [t for t in terms if t[2] != 0.0]
    involved = {j for j, _, _ in terms} | {f for _, fs, _ in terms for f in fs}
    live = [i for i in range(n) if xs[i] != 0.0 or i in involved]
    k = len(live)
    if k == 0:
        return phi
    if k <= EXACT_MAX:
        fact = [math.factorial(j) for j in range(k + 1)]
        w = [fact[s] * fact[k - 1 - s] / fact[k] for s in range(k)]
        sums = [0.0] * (1 << k)   # the logit's part above base, for each subset of live
        size = [0] * (1 << k)
        for mask in range(1, 1 << k):
            low = mask & -mask
            j = low.bit_length() - 1
            sums[mask] = sums[mask ^ low] + xs[live[j]]
            size[mask] = size[mask ^ low] + 1
        bit_of = {p: 1 << b for b, p in enumerate(live)}
        for j, firsts, b in terms:
            jm, fm = bit_of[j], sum(bit_of[f] for f in firsts)
            for mask in range(1 << k):
                if mask & jm and mask & fm:
                    sums[mask] += b
        v = [sigmoid(base + s) for s in sums]
        for j in range(k):
            bit = 1 << j
            acc = 0.0
            for mask in range(1 << k):
                if not mask & bit:
                    acc += w[size[mask]] * (v[mask | bit] - v[mask])
            phi[live[j]] = acc
        return phi
    perms = 20000
    of_player = defaultdict(list)   # the order terms a player takes part in
    for t, (j, firsts, _) in enumerate(terms):
        for p in [j] + firsts:
            of_player[p].append(t)
    for _ in range(perms):
        order = live[:]
        rng.shuffle(order)
        members, on = set(), set()   # the coalition so far, its order terms that count
        s = 0.0
        prev = sigmoid(base)
        for i in order:
            members.add(i)
            s += xs[i]
            for t in of_player.get(i, ()):
                j, firsts, b = terms[t]
                if t not in on and j in members and any(f in members for f in firsts):
                    on.add(t)
                    s += b
            cur = sigmoid(base + s)
            phi[i] += cur - prev
            prev = cur
    return [p / perms for p in phi]


def order_terms(truth, channels, fades):
    """The order terms of a purchase whose touchpoints (oldest first) are of channels, each
    faded by fades: for every touchpoint j of the order's THEN channel with touchpoints of
    its FIRST channel before it, (j, those, order effect * fades[j])."""
    o = truth.get("order")
    if not o or o["effect"] == 0:
        return []
    terms = []
    for j, c in enumerate(channels):
        firsts = [i for i in range(j) if channels[i] == o["first"]]
        if c == o["then"] and firsts:
            terms.append((j, firsts, o["effect"] * fades[j]))
    return terms


def purchases(truth, events_path):
    """Every purchase as (event_id, user, ts, touchpoints), in file order; a touchpoint is
    (event_id, ts, channel), oldest first: the user's impressions since its previous
    purchase, at most window_ms old, the last max_touchpoints of them."""
    W, N = truth["window_ms"], truth["max_touchpoints"]
    active = defaultdict(list)   # user -> [(event_id, ts, channel)]
    with open(events_path, newline="") as fh:
        for row in csv.DictReader(fh):
            u, ts = row["user_id"], int(row["ts"])
            if row["type"] == "IMPRESSION":
                a = active[u]
                a.append((row["event_id"], ts, row["channel"]))
                if len(a) > N:
                    del a[0]
            elif row["type"] == "PURCHASE":
                yield row["event_id"], u, ts, [e for e in active[u] if ts - e[1] <= W]
                active[u] = []


def true_credits(truth, events_path):
    """{purchase event_id: {"tps": [event_id...], "channels": [...], "phi": [...],
    "removal": [...], "v": v(S), "v0": v(empty)}} in file order."""
    ch = {c["name"]: c for c in truth["channels"]}
    H = truth["half_life_ms"]
    out = {}
    rng = random.Random(1)
    for event_id, u, ts, tps in purchases(truth, events_path):
        base = truth["base_logit"] + truth["intent_coef"] * truth["intent"][u]
        fades = [2.0 ** (-(ts - t) / H) for _, t, _ in tps]
        chans = [e[2] for e in tps]
        xs = [ch[c]["effect"] * f for c, f in zip(chans, fades)]
        terms = order_terms(truth, chans, fades)
        every = set(range(len(tps)))
        vs = sigmoid(logit(base, xs, terms, every))
        out[event_id] = {
            "tps": [e[0] for e in tps], "channels": chans,
            "phi": shapley(base, xs, rng, terms),
            "removal": [vs - sigmoid(logit(base, xs, terms, every - {i})) for i in every],
            "v": vs, "v0": sigmoid(base)}
    return out


def shares(values):
    s = sum(values)
    return [x / s for x in values] if s > 1e-15 else None


def normalise(d):
    s = sum(d.values())
    return {k: v / s for k, v in d.items()} if s > 0 else {k: 0.0 for k in d}


def tv(a, b, keys):
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys)


def evaluate(truth, events_path, output_path):
    tc = true_credits(truth, events_path)
    names = [c["name"] for c in truth["channels"]]
    confounded = [c["name"] for c in truth["channels"] if c["targeting"] != 0]
    clean = [n for n in names if n not in confounded]
    true_mass = defaultdict(float)
    for p in tc.values():
        for c, f in zip(p["channels"], p["phi"]):
            true_mass[c] += f / p["v"]
    true_share = normalise({n: true_mass[n] for n in names})

    mass = {m: defaultdict(float) for m in RULES + MODEL}
    err = {m: [0.0, 0] for m in RULES + MODEL}
    markov = {}
    status = defaultdict(int)
    n_att = unmatched = 0
    with open(output_path) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] == "credit_delta" and r["method"] == "markov" and r["dim"] == "channel":
                markov[r["dim_id"]] = r["credit"]
                continue
            if r["type"] != "attribution":
                continue
            n_att += 1
            ms = r.get("model_status") or {}
            status["shapley " + ms["shapley"] if "shapley" in ms else "no model"] += 1
            chans = [t.get("channel") for t in r["touchpoints"]]
            t = tc.get(r["conversion_event_id"])
            ids = [x["event_id"] for x in r["touchpoints"]]
            if t is None or t["tps"] != ids:
                unmatched += 1
                t = None
            ts = shares(t["phi"]) if t else None
            owed = 1.0
            if r.get("p_conversion") and r.get("p_baseline") is not None:
                owed = max(0.0, 1.0 - r["p_baseline"] / r["p_conversion"])
            for m, cr in r["credits"].items():
                if m not in mass:
                    continue
                for c, x in zip(chans, cr):
                    mass[m][c] += x * (owed if m in MODEL else 1.0)
                if ts is not None:
                    err[m][0] += 0.5 * sum(abs(a - b) for a, b in zip(cr, ts))
                    err[m][1] += 1
    rows = []
    methods = [m for m in RULES + MODEL if mass[m]] + (["markov"] if markov else [])
    for m in methods:
        share = normalise({n: (markov.get(n, 0.0) if m == "markov" else mass[m][n]) for n in names})
        clean_share = normalise({n: share[n] for n in clean})
        clean_true = normalise({n: true_share[n] for n in clean})
        e = err.get(m, [0, 0])
        rows.append({
            "method": m, "tv": tv(share, true_share, names),
            "tv_unconfounded": tv(clean_share, clean_true, clean),
            "per_purchase_error": e[0] / e[1] if e[1] else None,
            "confounded_share": sum(share[n] for n in confounded),
            "shares": share})
    return {"purchases": len(tc), "attributions": n_att, "unmatched": unmatched,
            "with_true_shares": sum(1 for p in tc.values() if shares(p["phi"])),
            "true_shares": true_share, "confounded": confounded,
            "confounded_true_share": sum(true_share[n] for n in confounded),
            "model_status": dict(status), "methods": rows}


def table(res):
    names = list(res["true_shares"])
    lines = ["| method | TV to the truth | TV, unconfounded channels | per-purchase error | "
             + " | ".join(names) + " |",
             "|---|---|---|---|" + "---|" * len(names),
             "| **truth** | 0 | 0 | 0 | " + " | ".join("%.3f" % res["true_shares"][n] for n in names) + " |"]
    for r in res["methods"]:
        ppe = "%.3f" % r["per_purchase_error"] if r["per_purchase_error"] is not None else "-"
        lines.append("| %s | %.3f | %.3f | %s | %s |" % (
            r["method"], r["tv"], r["tv_unconfounded"], ppe,
            " | ".join("%.3f" % r["shares"][n] for n in names)))
    return "\n".join(lines)


def save_json(path, obj):
    if path:
        with open(path, "w") as fh:
            json.dump(obj, fh, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--truth", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    with open(a.truth) as fh:
        truth = json.load(fh)
    res = evaluate(truth, a.events, a.output)
    print("%d purchases (%d with true shares), %d attributions, %d with other touchpoints than "
          "the truth's; model status %s" % (res["purchases"], res["with_true_shares"],
                                            res["attributions"], res["unmatched"], res["model_status"]))
    print(table(res))
    save_json(a.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
