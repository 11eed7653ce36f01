#!/usr/bin/env python3
"""Purchase intent against what happened (docs/benchmarks.md, "Purchase intent").

  python3 bench/intent_calibration.py [-X key=value ...] [--svg FILE]

Replays inputs with `tally replay` (the model on, intent published) and checks every
intent_delta record against the input itself: did the user buy within the record's window
after its ts? Records whose window runs past the input's last event are left out (their
outcome is not known). Prints, per input, the records scored, their mean p against the rate
of purchases that followed, the Brier score against that of the rate itself, the AUC of p,
and the same by tenth of p (calibration: mean p against the observed rate).

Inputs: the Taobao journeys of ../shared/data sorted by time (with a one-day window: the
slice spans nine days), generated events (`tally gen`) and the ground truth's (`tally gen
--truth`). The score assumes nothing more is seen of the user; users who come back and
touch more buy more often than that, so the observed rate can run above the mean p.
With --svg FILE, also draws the tenths as a reliability diagram (mean p across, the share
that bought up; the diagonal is a calibrated score), one line per input.
"""
import bisect
import csv
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))

from bench_data import setting_args, auc, journeys_by_time  # noqa: E402
DAY = 86400000


def purchases_of(path, fmt):
    """user -> sorted purchase times (ms), and the last event time, read from the input."""
    buys, last = defaultdict(list), 0
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        if fmt == "canonical":
            head = next(rows)
            iu, it, its = head.index("user_id"), head.index("type"), head.index("ts")
            for r in rows:
                ts = int(r[its])
                last = max(last, ts)
                if r[it] == "PURCHASE":
                    buys[r[iu]].append(ts)
        else:   # taobao: user, item, category, behaviour, seconds
            for r in rows:
                ts = int(r[4]) * 1000
                last = max(last, ts)
                if r[3] == "buy":
                    buys[r[0]].append(ts)
    for v in buys.values():
        v.sort()
    return buys, last


def score(path, fmt, out, extra):
    subprocess.run([TALLY, "replay", "--input", path, "--format", fmt, "--output", out,
                    "--quiet", "-X", "intent.enabled=true"] + extra, check=True,
                   stderr=subprocess.DEVNULL)
    buys, last = purchases_of(path, fmt)
    ps, ys = [], []
    with open(out) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] != "intent_delta" or r["ts"] + r["window_ms"] > last:
                continue
            b = buys.get(r["user_id"], [])
            k = bisect.bisect_right(b, r["ts"])   # the first purchase after ts
            ps.append(r["p"])
            ys.append(1 if k < len(b) and b[k] <= r["ts"] + r["window_ms"] else 0)
    return ps, ys


def report(name, ps, ys):
    n = len(ps)
    if not n:
        print("| %s | 0 | - | - | - | - | - |" % name)
        return []
    rate = sum(ys) / n
    brier = sum((p - y) ** 2 for p, y in zip(ps, ys)) / n
    base = sum((rate - y) ** 2 for y in ys) / n
    print("| %s | %d | %.3f | %.3f | %.4f | %.4f | %.3f |" % (
        name, n, sum(ps) / n, rate, brier, base, auc(ps, ys)))
    order = sorted(range(n), key=lambda i: ps[i])
    tenths = []
    for t in range(10):
        idx = order[t * n // 10:(t + 1) * n // 10]
        if idx:
            tenths.append((sum(ps[i] for i in idx) / len(idx), sum(ys[i] for i in idx) / len(idx)))
    return tenths


COLOURS = ("#1b6ca8", "#d1495b", "#66a182", "#8d6a9f")


def reliability_svg(path, tables):
    """tables: [(name, [(mean p, share bought)])]. A plain SVG, no library."""
    w, h, m = 560, 420, 60
    x = lambda v: m + v * (w - 2 * m)            # noqa: E731
    y = lambda v: h - m - v * (h - 2 * m)        # noqa: E731
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#999" stroke-dasharray="4 3"/>'
           % (x(0), y(0), x(1), y(1))]
    for t in range(0, 11, 2):
        v = t / 10
        out.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#eee"/>' % (x(v), y(0), x(v), y(1)))
        out.append('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#eee"/>' % (x(0), y(v), x(1), y(v)))
        out.append('<text x="%g" y="%g" text-anchor="middle">%.1f</text>' % (x(v), y(0) + 18, v))
        out.append('<text x="%g" y="%g" text-anchor="end">%.1f</text>' % (x(0) - 6, y(v) + 4, v))
    out.append('<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#333"/>'
               % (x(0), y(1), x(1) - x(0), y(0) - y(1)))
    out.append('<text x="%g" y="%g" text-anchor="middle">mean intent p, by tenth</text>'
               % ((x(0) + x(1)) / 2, h - 18))
    out.append('<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">'
               'share that bought within the window</text>' % ((y(0) + y(1)) / 2))
    for k, (name, tenths) in enumerate(tables):
        c = COLOURS[k % len(COLOURS)]
        pts = " ".join("%g,%g" % (x(p), y(b)) for p, b in tenths)
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>' % (pts, c))
        out += ['<circle cx="%g" cy="%g" r="3" fill="%s"/>' % (x(p), y(b), c) for p, b in tenths]
        out.append('<text x="%g" y="%g" fill="%s">%s</text>' % (x(0) + 10, y(1) + 18 + 16 * k, c,
                                                               name.replace("&", "&amp;")))
    out.append("</svg>\n")
    with open(path, "w") as fh:
        fh.write("\n".join(out))


def main():
    svg = None
    if "--svg" in sys.argv:
        i = sys.argv.index("--svg")
        svg = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    extra = setting_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="tally-intent-") as d:
        inputs = []
        sorted_path = journeys_by_time(d)
        if sorted_path:
            inputs.append(("Taobao journeys, time order, 1-day window", sorted_path, "taobao",
                           ["-X", "intent.window.ms=%d" % DAY]))
        gen = os.path.join(d, "gen.csv")
        subprocess.run([TALLY, "gen", "--events", "200000", "--users", "5000", "--output", gen],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        inputs.append(("generated (tally gen), 1-day window", gen, "canonical",
                       ["-X", "intent.window.ms=%d" % DAY]))
        truth = os.path.join(d, "truth.csv")
        subprocess.run([TALLY, "gen", "--truth", os.path.join(d, "truth.json"), "--users", "5000",
                        "--output", truth], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        inputs.append(("ground truth (tally gen --truth), 7-day window", truth, "canonical", []))
        print("| input | records scored | mean p | purchased within the window | Brier | "
              "Brier of the rate | AUC |")
        print("|---|---|---|---|---|---|---|")
        tables = []
        for name, path, fmt, args in inputs:
            ps, ys = score(path, fmt, os.path.join(d, "out.jsonl"), args + extra)
            tables.append((name, report(name, ps, ys)))
        for name, tenths in tables:
            print("\n%s, by tenth of p: mean p / observed rate" % name)
            print(" ".join("%.3f/%.3f" % t for t in tenths))
        if svg:
            reliability_svg(svg, tables)


if __name__ == "__main__":
    main()
