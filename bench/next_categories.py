#!/usr/bin/env python3
"""Next categories against where users went, beside simple rules (docs/benchmarks.md,
"Next categories").

  python3 bench/next_categories.py [-X key=value ...]

Replays the Taobao data of ../shared/data sorted by time (the journeys: 114 users over nine
days; the slice: 66,454 users over 2.2 hours) with `tally replay -X categories.enabled=true`
and a threshold of 0.0001, so that a user's last next_categories record is tally's current
view of the user. Then walks the input in the same order: at each event of a user seen
before, the user's last record (published after an earlier event) is scored against the
event's category: first listed (hit@1), among the first 5 (hit@5), and the listed p of the
first against how often it was right. Beside it, rules computed here from the input alone:

  last        the user's last category (hit@1 only)
  recent      the user's last 5 distinct categories, most recent first
  interest    the user's 5 categories with the most interest weight (tally's default decay:
              heat by behaviour, a half-life of a day, w = f/2 + h/2), computed here
  popular     the 5 categories with the most events so far, across users
  follows     the user's last category, then the 4 categories that most often came next
              after it so far, across users

"like": for each record's categories like the user's, whether the user went to one of
them later in the data, against the same for the 3 most popular categories so far that the
user had not been to and the record does not list (a rule with no embedding).
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))
SLICE = os.path.join(ROOT, "..", "shared", "data", "taobao", "user_behavior_slice.csv")

from bench_data import setting_args, journeys_by_time  # noqa: E402

HEAT = {"pv": 1.0, "fav": 3.0, "cart": 4.0, "buy": 5.0}
HALF_LIFE = 86400.0   # seconds


def by_time(src, d, name):
    if not os.path.exists(src):
        print("skipped %s: %s is absent" % (name, src), file=sys.stderr)
        return None
    with open(src, newline="") as fh:
        rows = list(csv.reader(fh))
    path = os.path.join(d, name + ".csv")
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(sorted(rows, key=lambda r: int(r[4])))
    return path


def replay(path, d, extra):
    out = os.path.join(d, "out.jsonl")
    cmd = [TALLY, "replay", "--input", path, "--format", "taobao", "--output", out, "--quiet",
           "-X", "categories.enabled=true", "-X", "categories.threshold=0.0001"] + extra
    run = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(run.stderr)
    recs = {}
    with open(out) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] == "next_categories":
                recs[int(r["event_id"])] = r
    return recs, [l for l in run.stderr.splitlines() if "next categories" in l]


class Rules:
    """The rules' state, from the events so far."""

    def __init__(self):
        self.last, self.recent = {}, defaultdict(list)
        self.weights = defaultdict(dict)   # user -> category -> (f, h, t)
        self.pop, self.follows = Counter(), defaultdict(Counter)

    def interest(self, u, t):
        w = []
        for c, (f, h, t0) in self.weights[u].items():
            w.append(((0.5 * f + 0.5 * h) * 2 ** (-(t - t0) / HALF_LIFE), c))
        return [c for _, c in sorted(w, key=lambda x: (-x[0], x[1]))[:5]]

    def lists(self, u, t):
        last = self.last[u]
        fol = [last] + [c for c, _ in self.follows[last].most_common(5) if c != last][:4]
        return {"last": [last], "recent": self.recent[u][:5], "interest": self.interest(u, t),
                "popular": [c for c, _ in self.pop.most_common(5)], "follows": fol}

    def add(self, u, c, b, t):
        if u in self.last and self.last[u] != c:
            self.follows[self.last[u]][c] += 1
        self.last[u] = c
        r = self.recent[u]
        if c in r:
            r.remove(c)
        r.insert(0, c)
        f, h, t0 = self.weights[u].get(c, (0.0, 0.0, t))
        k = 2 ** (-(t - t0) / HALF_LIFE)
        self.weights[u][c] = (f * k + 1.0, h * k + HEAT.get(b, 1.0), t)
        self.pop[c] += 1


def score(path, recs):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    later = defaultdict(list)   # user -> (row, category)
    for i, (u, _, c, _, _) in enumerate(rows, 1):
        later[u].append((i, c))
    rules, view = Rules(), {}
    hit = defaultdict(lambda: [0, 0])
    n, top_p = 0, 0.0
    like_n, like_hit, pop_n, pop_hit = 0, 0, 0, 0
    for i, (u, _, c, b, ts) in enumerate(rows, 1):
        t = int(ts)
        if u in rules.last:
            n += 1
            for name, lst in rules.lists(u, t).items():
                hit[name][0] += lst[:1] == [c]
                hit[name][1] += c in lst[:5]
            cats = [x["category_id"] for x in view[u]["categories"]] if u in view else []
            hit["tally"][0] += cats[:1] == [c]
            hit["tally"][1] += c in cats[:5]
            top_p += view[u]["categories"][0]["p"] if cats else 0.0
        rules.add(u, c, b, t)
        r = recs.get(i)
        if r is None:
            continue
        view[u] = r
        after = {cc for j, cc in later[u] if j > i}
        for x in r["like"]:
            like_n += 1
            like_hit += x["category_id"] in after
        seen = set(rules.weights[u]) | {x["category_id"] for x in r["categories"]}
        for cc in [cc for cc, _ in rules.pop.most_common(len(seen) + 3) if cc not in seen][:3]:
            pop_n += 1
            pop_hit += cc in after
    return n, hit, top_p / max(n, 1), (like_n, like_hit, pop_n, pop_hit)


def main():
    extra = setting_args(__doc__)
    with tempfile.TemporaryDirectory() as d:
        inputs = [("Taobao journeys", journeys_by_time(d)), ("Taobao slice", by_time(SLICE, d, "slice"))]
        for name, path in inputs:
            if not path:
                continue
            recs, summary = replay(path, d, extra)
            n, hit, top_p, (ln, lh, pn, ph) = score(path, recs)
            print("%s: %d next events scored, %d records" % (name, n, len(recs)))
            for line in summary:
                print("  tally says: " + line.strip())
            print("  %-9s %7s %7s" % ("", "hit@1", "hit@5"))
            for k in ["tally", "last", "recent", "interest", "popular", "follows"]:
                h1, h5 = hit[k]
                print("  %-9s %7.4f %7s" % (k, h1 / n, "%.4f" % (h5 / n) if k != "last" else "-"))
            print("  tally's first listed p, mean: %.4f (right %.4f of the time)"
                  % (top_p, hit["tally"][0] / n))
            print("  like: %d listed, %.4f visited later; the 3 most popular unvisited: %d, %.4f"
                  % (ln, lh / max(ln, 1), pn, ph / max(pn, 1)))


if __name__ == "__main__":
    main()
