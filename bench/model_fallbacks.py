#!/usr/bin/env python3
"""Model credits on real data: how many fall back to linear (docs/benchmarks.md,
"Attribution against the truth").

  python3 bench/model_fallbacks.py [-X key=value ...]

Replays the Taobao journeys of ../shared/data (in file order, and sorted by time as a
stream delivers them) and generated events (`tally gen`, with and without impressions)
with `tally replay` and the given settings. For each, prints the model's progressive AUC
(its summary line) and, over the attributions with two or more touchpoints whose model
had warmed up (model_status ok or fallback_linear), the share whose shapley and removal
credits fell back to linear, and the range of every model share.
"""
import json
import os
import re
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))

from bench_data import setting_args, JOURNEYS, journeys_by_time  # noqa: E402


def replay(path, fmt, out, extra):
    p = subprocess.run([TALLY, "replay", "--input", path, "--format", fmt, "--output", out,
                        "--quiet"] + extra, check=True, stderr=subprocess.PIPE, text=True)
    m = re.search(r"AUC ([0-9.]+|nan) over", p.stderr)
    return m.group(1) if m else "-"


def count(out):
    st = {m: {"ok": 0, "fallback_linear": 0} for m in ("shapley", "removal")}
    lo, hi = float("inf"), float("-inf")
    with open(out) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] != "attribution" or len(r["touchpoints"]) < 2:
                continue
            for m, s in (r.get("model_status") or {}).items():
                if m in st and s in st[m]:
                    st[m][s] += 1
                    for x in r["credits"][m]:
                        lo, hi = min(lo, x), max(hi, x)
    return st, lo, hi


def main():
    extra = setting_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="tally-fallbacks-") as d:
        inputs = []
        sorted_path = journeys_by_time(d)
        if sorted_path:
            inputs += [("Taobao journeys, file order", JOURNEYS, "taobao"),
                       ("Taobao journeys, time order", sorted_path, "taobao")]
        for name, flags in (("generated (tally gen)", []), ("generated with impressions", ["--impressions"])):
            path = os.path.join(d, "gen%d.csv" % len(flags))
            subprocess.run([TALLY, "gen", "--events", "100000", "--output", path] + flags, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            inputs.append((name, path, "canonical"))
        print("| input | AUC | shapley fallbacks | removal fallbacks | model shares |")
        print("|---|---|---|---|---|")
        for name, path, fmt in inputs:
            out = os.path.join(d, "out.jsonl")
            auc = replay(path, fmt, out, extra)
            st, lo, hi = count(out)
            cells = []
            for m in ("shapley", "removal"):
                n = st[m]["ok"] + st[m]["fallback_linear"]
                f = st[m]["fallback_linear"]
                cells.append("%d of %d (%.1f%%)" % (f, n, 100.0 * f / n) if n else "-")
            rng = "[%.4f, %.4f]" % (lo, hi) if lo <= hi else "-"
            print("| %s | %s | %s | %s | %s |" % (name, auc, cells[0], cells[1], rng))


if __name__ == "__main__":
    main()
