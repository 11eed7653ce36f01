#!/usr/bin/env python3
"""`tally replay` against the reference implementation, record for record.

Cases:
  taobao     the real Taobao journeys file (../shared/data/taobao/user_behavior_journeys.csv
             beside the repository), default parameters;
  canonical  a synthetic canonical CSV written here: channels, dwell times, purchase values,
             empty optional columns, empty event ids, equal and out-of-order timestamps,
             gaps past the lookback and past the epsilon horizon; dims category,item,channel;
  params     the same file with every parameter moved off its default;
  nothing valid  replay and produce of a file whose every row is bad, and of an empty
             file: exit 1 with a line naming the file;
  short span a file whose events all lie between two points of the control grid: replay
             warns before it starts and again at the end, the model logs it once, and every
             model status is no_negatives; with a finer grid, none of that;
  progress   replay on a pseudo-terminal shows a progress line (count, rate, share, time
             left), none with --quiet or when stderr is not a terminal.

Every record must match to 1e-9 (compare.py). Environment: TALLY_BIN (default
build/tally), TALLY_SOURCE_DIR (default: the repository holding this file).
Exit status: 0 all passed, 1 a failure, 77 (skipped) when the real data is absent and
the synthetic cases passed.
"""

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import kafka_util as ku  # noqa: E402
import reference as ref  # noqa: E402

TALLY_BIN = ku.TALLY_BIN
DATA = os.path.join(ku.SHARED_DATA, "taobao", "user_behavior_journeys.csv")
TOL = 1e-9
REPLAY_TIMEOUT_S = 300

HOUR = 3_600_000
DAY = 86_400_000


def run_replay(csv_path, fmt, out_path, xs=()):
    cmd = [TALLY_BIN, "replay", "--input", csv_path, "--format", fmt, "--output", out_path]
    for kv in xs:
        cmd += ["-X", kv]
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=REPLAY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not finish within %d s" % (" ".join(cmd), REPLAY_TIMEOUT_S))
    if res.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), res.returncode,
                                                      res.stdout[-2000:], res.stderr[-2000:]))
    return time.monotonic() - t0


def check_model_fields(records):
    """What every attribution must satisfy when the model is on: shapley and removal
    credits present and summing to 1, probabilities in (0, 1), a model version that never
    decreases in file order (a replay is one partition)."""
    problems = []
    last_version = -1
    for r in records:
        if r.get("type") != "attribution":
            continue
        k = r["conversion_event_id"]
        credits = r.get("credits", {})
        for m in cmp.MODEL_METHODS:
            c = credits.get(m)
            if not isinstance(c, list) or len(c) != len(r["touchpoints"]):
                problems.append("attribution %s: %s credits missing or of the wrong length" % (k, m))
            elif abs(sum(c) - 1.0) > 1e-9:
                problems.append("attribution %s: %s credits sum to %r" % (k, m, sum(c)))
        for f in ("p_conversion", "p_baseline"):
            v = r.get(f)
            if not isinstance(v, float) or not 0.0 < v < 1.0:
                problems.append("attribution %s: %s = %r" % (k, f, v))
        v = r.get("model_version")
        if not isinstance(v, int) or v < last_version:
            problems.append("attribution %s: model_version %r after %r" % (k, v, last_version))
        else:
            last_version = v
        if cmp.MODEL_SENTENCE not in r.get("explanation", ""):
            problems.append("attribution %s: the explanation says nothing of the model" % k)
        if len(problems) > 10:
            break
    return problems


def check(csv_path, fmt, xs, tmp, name):
    """Runs tally replay and the reference with the same parameters; compares."""
    out = os.path.join(tmp, name + ".tally.jsonl")
    secs = run_replay(csv_path, fmt, out, xs)
    actual = cmp.read_jsonl(out)
    t0 = time.monotonic()
    expected = ref.run_file(csv_path, fmt, list(xs))
    ref_secs = time.monotonic() - t0
    ref.write_jsonl(expected, os.path.join(tmp, name + ".reference.jsonl"))
    problems = []
    dead = [r for r in actual if r.get("type") == "dead_letter"]
    if dead:
        problems.append("replay rejected %d rows of a valid file, e.g. %s" % (
            len(dead), cmp._short(dead[0])))
    # The reference implements the rule-based definitions; the online model's fields are
    # checked for their own invariants (check_model_fields) and by the model's unit tests.
    problems += cmp.compare(expected, [r for r in actual if r.get("type") != "dead_letter"],
                            TOL, ignore_types=("credit_delta",), rule_only=True)
    problems += check_model_fields(actual)
    if problems:
        raise AssertionError("%s: replay differs from the reference (files in %s):\n  %s" % (
            name, tmp, "\n  ".join(problems)))
    return "%s; tally replay %.2f s, reference %.2f s" % (cmp.summary(expected), secs, ref_secs)


# ------------------------------------------------------------------- synthetic data

CHANNELS = ["search", "email", "social", "ads", ""]
TYPES = (["IMPRESSION"] * 3 + ["BROWSE"] * 6 + ["CLICK"] * 3 + ["FAVORITE", "ADD_TO_CART"] * 1
         + ["PURCHASE"])


def synthetic_csv(path, seed=20171125):
    """~600 events of 7 users, interleaved in file order, each user's stream with equal
    timestamps, late events, long gaps; returns the number of rows."""
    rnd = random.Random(seed)
    base = 1_511_000_000_000
    streams = {}
    for u in range(7):
        user = "user-%d" % u
        t = base + rnd.randrange(0, 6 * HOUR)
        rows = []
        for k in range(rnd.randrange(40, 120)):
            r = rnd.random()
            if r < 0.15:
                pass                                   # same ts as the previous event
            elif r < 0.25:
                t -= rnd.randrange(1, 5 * HOUR)        # a late event (goes back in time)
            elif r < 0.27:
                t += rnd.choice([8 * DAY, 25 * DAY])   # past the lookback / epsilon horizon
            else:
                t += rnd.randrange(1, 3 * HOUR)
            typ = rnd.choice(TYPES)
            cat = "" if rnd.random() < 0.05 else "cat-%d" % rnd.randrange(6)
            item = "item-%d" % rnd.randrange(15)
            chan = rnd.choice(CHANNELS)
            dwell = "" if rnd.random() < 0.3 else str(rnd.randrange(0, 120_000))
            value = ""
            if typ == "PURCHASE" and rnd.random() < 0.8:
                value = "%.2f" % (rnd.randrange(100, 50_000) / 100.0)
            rows.append([user, item, cat, typ, str(t), chan, dwell, value])
        streams[user] = rows
    # interleave the users' streams, keeping each user's own order
    order = []
    for user, rows in streams.items():
        order += [user] * len(rows)
    rnd.shuffle(order)
    pos = {u: 0 for u in streams}
    n = 0
    with open(path, "w", newline="") as fh:
        fh.write("event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value\n")
        for user in order:
            row = streams[user][pos[user]]
            pos[user] += 1
            n += 1
            eid = "" if n % 11 == 0 else "ev-%04d" % n
            fh.write(",".join([eid] + row) + "\n")
    return n


PARAMS_VARIANT = [
    "features.dims=category,item,channel",
    "features.half.life.ms=7200000",
    "features.alpha=1",
    "features.beta=0.25",
    "features.epsilon=0.001",
    "features.heat.click=6",
    "features.heat.purchase=0",
    "attribution.lookback.ms=172800000",
    "attribution.max.touchpoints=5",
    "attribution.reset.on.conversion=false",
    "attribution.time.decay.half.life.ms=10800000",
    "attribution.touch.types=BROWSE,CLICK,ADD_TO_CART,PURCHASE",
]


# ----------------------------------------------------------------------------- main

def check_nothing_valid(tmp):
    """A file with no valid row (every row bad, or none at all) is a mistake: exit 1 with a
    line naming the file, for replay and for produce (which fails before any broker)."""
    bad = os.path.join(tmp, "all-bad.csv")
    with open(bad, "w") as fh:
        fh.write("not,a,taobao\nrow\n")
    empty = os.path.join(tmp, "empty.csv")
    open(empty, "w").close()
    said = []
    for path, rows in ((bad, 2), (empty, 0)):
        for cmd in (["replay", "--output", os.path.join(tmp, "nothing.jsonl")],
                    ["produce", "--topic", "t", "-X", "kafka.bootstrap.servers=127.0.0.1:1"]):
            r = subprocess.run([TALLY_BIN, cmd[0], "--input", path, "--format", "taobao"] + cmd[1:],
                               capture_output=True, text=True, timeout=60)
            want = "no valid event in %s (%d rows, %d bad)" % (path, rows, rows)
            if r.returncode != 1 or want not in r.stderr:
                raise AssertionError("%s of %s: exit %d, expected 1 and %r:\n%s" % (
                    cmd[0], os.path.basename(path), r.returncode, want, r.stderr[-800:]))
            said.append("%s %s" % (cmd[0], os.path.basename(path)))
    return "exit 1 naming the file: " + ", ".join(said)


def check_short_span(tmp):
    """2 h of events between two points of the 6-hour control grid: no control moment can
    exist. Replay says so before it starts (from a pass over the file), the model logs it
    once at the first credit, the summary warns again, and the records say no_negatives.
    With a 10-minute grid the same file gives control moments and no warning."""
    path = os.path.join(tmp, "short.csv")
    t0 = 1511568000000 + HOUR   # 2017-11-25 01:00 UTC: the 6-hour grid points are 00:00 and 06:00
    rows = ["event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value"]
    for u in range(40):
        for k in range(4):
            ts = t0 + (u * 97 + k * 1700) * 1000
            rows.append("e%d_%d,u%d,i%d,c%d,IMPRESSION,%d,%s,," % (
                u, k, u, k, k % 3, ts, ("search", "social", "email")[k % 3]))
        if u % 4 == 0:
            rows.append("p%d,u%d,i9,c1,PURCHASE,%d,,,10" % (u, u, t0 + 2 * HOUR - u * 1000))
    with open(path, "w") as fh:
        fh.write("\n".join(rows) + "\n")
    stamps = [int(row.split(",")[5]) for row in rows[1:]]
    start = "warning: %s spans" % path
    seen = {}
    for name, xs in (("6 h grid", []), ("10 min grid", ["model.control.interval.ms=600000"])):
        out = os.path.join(tmp, "short.jsonl")
        cmd = [TALLY_BIN, "replay", "--input", path, "--format", "canonical", "--output", out]
        for kv in xs:
            cmd += ["-X", kv]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("%s: exit %d:\n%s" % (name, r.returncode, r.stderr[-800:]))
        statuses = set()
        with open(out) as fh:
            for line in fh:
                if '"attribution"' in line:
                    statuses.update(json.loads(line)["model_status"].values())
        seen[name] = (r.stderr, statuses)
    err, statuses = seen["6 h grid"]
    summary = err.find("replay: ")
    first = err.find(start)
    if first < 0 or summary < 0 or first > summary:
        raise AssertionError("no warning before the replay started:\n%s" % err[-1500:])
    want = ("spans %.1f h of event time, and no multiple of model.control.interval.ms (6.0 h) "
            "lies inside it" % ((max(stamps) - min(stamps)) / HOUR))
    if want not in err[first:first + 300]:
        raise AssertionError("the start warning does not say %r:\n%s" % (want, err[first:first + 400]))
    if err.count("credited before the model learned from any control moment") != 1:
        raise AssertionError("the model's warning is not logged exactly once:\n%s" % err[-1500:])
    if err.find("warning: the model learned from no control moment", summary) < 0:
        raise AssertionError("no warning at the end:\n%s" % err[summary:])
    if statuses != {"no_negatives"}:
        raise AssertionError("model statuses %s, expected only no_negatives" % statuses)
    err10, statuses10 = seen["10 min grid"]
    if start in err10 or "no control moment" in err10 or "no_negatives" in statuses10 - {"warming_up"}:
        raise AssertionError("with a 10-minute grid: statuses %s\n%s" % (statuses10, err10[-1500:]))
    return "warned before, once by the model and at the end; statuses %s; with a 10-minute " \
           "grid none of it (statuses %s)" % (sorted(statuses), sorted(statuses10))


def check_progress(tmp):
    """On a terminal (a pseudo-terminal here) replay rewrites one progress line: count,
    rate, share of the file and time left; the line is cleared before the summary. With
    --quiet, or when stderr is not a terminal, there is none."""
    import pty
    events = os.path.join(tmp, "progress.csv")
    # Seconds long at the rates measured here, so the line (refreshed every 0.5 s) shows
    subprocess.run([TALLY_BIN, "gen", "--events", "1200000", "--output", events], check=True)
    args = [TALLY_BIN, "replay", "--input", events, "--format", "canonical",
            "--output", os.path.join(tmp, "progress.jsonl"), "-X", "model.enabled=false"]
    seen = {}
    for name, extra in (("terminal", []), ("terminal --quiet", ["--quiet"])):
        master, slave = pty.openpty()
        p = subprocess.Popen(args + extra, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        if p.wait(120) != 0:
            raise AssertionError("replay on a terminal (%s) failed:\n%s" % (name, out[-800:]))
        seen[name] = out.decode(errors="replace")
    lines = re.findall(r"\r\x1b\[Kreplay: ([0-9,]+) events \(([0-9,]+)/s\), (\d+)% of [0-9.]+ MB, about "
                       r"\d+ (?:ms|s|min|h|d) left", seen["terminal"])
    if not lines:
        raise AssertionError("no progress line on the terminal:\n%r" % seen["terminal"][-600:])
    counts = [int(c.replace(",", "")) for c, _, _ in lines]
    if counts != sorted(counts) or not 0 < counts[-1] <= 1200000:
        raise AssertionError("progress counts %s" % counts)
    if "replay: 1200000 events from" not in seen["terminal"].split("\r\x1b[K")[-1]:
        raise AssertionError("the summary does not follow a cleared line:\n%r" % seen["terminal"][-400:])
    if "\r" in seen["terminal --quiet"].replace("\r\n", "\n"):
        raise AssertionError("--quiet printed a progress line")
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or "\r" in r.stderr or "% of" in r.stderr:
        raise AssertionError("a progress line where stderr is not a terminal: %r" % r.stderr[-300:])
    return "%d progress lines on a terminal (last at %s events, %s%%), none with --quiet or " \
           "without a terminal" % (len(lines), lines[-1][0], lines[-1][2])


def main():
    _, rc = ku.preflight(broker=False, tools=ku.check_binary)
    if rc is not None:
        return rc
    tmp = tempfile.mkdtemp(prefix="tally-replay-test-")
    synth = os.path.join(tmp, "synthetic.csv")
    rows = synthetic_csv(synth)
    cases = [
        ("canonical", lambda: check(synth, "canonical", ["features.dims=category,item,channel"],
                                    tmp, "canonical")),
        ("params", lambda: check(synth, "canonical", PARAMS_VARIANT, tmp, "params")),
        ("nothing valid", lambda: check_nothing_valid(tmp)),
        ("short span", lambda: check_short_span(tmp)),
        ("progress", lambda: check_progress(tmp)),
    ]
    have_data = os.path.isfile(DATA)
    if have_data:
        cases.insert(0, ("taobao", lambda: check(DATA, "taobao", [], tmp, "taobao")))
    step = ku.Steps()
    print("synthetic canonical CSV: %d rows" % rows)
    for name, fn in cases:
        step(name, lambda pr, fn=fn: fn())
    rc = step.finish(tmp)
    if rc == 0 and not have_data:
        print("SKIP: ../shared/data/taobao not found (real data lives beside the repository)")
        return ku.SKIP
    return rc


if __name__ == "__main__":
    sys.exit(main())
