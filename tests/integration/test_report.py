#!/usr/bin/env python3
"""`tally report` against sums computed here from the same records, and its HTML page in a
real headless browser.

Data: `tally gen --truth` (600 users, 14 days) replayed with the model and the Markov chain
on. Cases:
  sums        --format json by channel, channel_group and category, windows all, day and
              hour: every row (purchases, touchpoints, conversions and value per method,
              Markov from the credit deltas and its bootstrap interval, the shapley
              conversions' sampling error) equals
              the sums this file makes from the replay output, to 1e-9; each method's
              conversions add up to the attributions;
  range       --from/--to keep the purchases (and Markov windows) inside [from, to) only;
  formats     CSV has the JSON's numbers; the table has a line per row and marks rows
              with fewer purchases than --min-purchases;
  consume     the same records as `tally consume` prints them (under "value", unions in
              Avro's JSON form) give the same JSON; bad lines are skipped, counted and named;
  spend       a spend CSV joined: cost per conversion and ROAS per method equal the ones
              made here (a channel nothing was credited to included), a bad row skipped;
  groups      the default channel groups map the generator's channels, a rule set given
              with -X is applied in order, and a malformed one is a configuration error;
  campaigns   --by campaign on `tally gen --impressions --campaigns 3`: every row equals
              the sums made here, no Markov column, markov or spend asked for refused;
  html        the page has no reference outside itself; Debian's chromium renders it, and
              in the screenshot every method's bar for every channel has the width the
              numbers give (to 2 px).

Environment: TALLY_BIN (default build/tally), TALLY_SOURCE_DIR.
"""

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from fnmatch import fnmatchcase

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kafka_util import Steps  # noqa: E402  (no broker needed: only the step runner)

SOURCE_DIR = os.environ.get("TALLY_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
TALLY_BIN = os.environ.get("TALLY_BIN") or os.path.join(SOURCE_DIR, "build", "tally")
METHODS = ["last_touch", "first_touch", "linear", "time_decay", "position_based", "shapley",
           "removal"]
COLOUR = dict(zip(METHODS + ["markov"], ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                         "#edc948", "#b07aa1", "#9c755f"]))
DEFAULT_GROUPS = {"search": "Paid Search", "social": "Social", "display": "Display",
                  "email": "Email", "retarget": "Retargeting"}
DAY, HOUR = 86_400_000, 3_600_000


def tally(*args, ok=True):
    r = subprocess.run([TALLY_BIN] + list(args), capture_output=True, text=True, timeout=300)
    if ok and r.returncode != 0:
        raise AssertionError("tally %s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr[-1500:]))
    return r


def load(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def rules_of(spec):
    out = []
    for part in spec.split(";"):
        if part.strip():
            g, pats = part.split("=", 1)
            out.append((g.strip(), [p.strip().lower() for p in pats.split(",")]))
    return out


def group_of(rules, channel):
    if not channel:
        return "(none)"
    for g, pats in rules:
        if any(fnmatchcase(channel.lower(), p) for p in pats):
            return g
    return "Other"


def expected(records, by, window, rules=(), lo=None, hi=None):
    """{(id, window_start): row} summed here from the replay's records."""
    def win(ts):
        return None if window == "all" else ts - ts % (DAY if window == "day" else HOUR)

    def ident(tp):
        if by in ("category", "campaign"):
            return tp.get("category_id" if by == "category" else "campaign") or "(none)"
        ch = tp.get("channel")
        return group_of(rules, ch) if by == "channel_group" else (ch or "(none)")

    rows = defaultdict(lambda: {"purchases": 0, "touchpoints": 0, "conversions": defaultdict(float),
                                "value": defaultdict(float), "shapley_var": 0.0})
    inside = lambda t: (lo is None or t >= lo) and (hi is None or t < hi)  # noqa: E731
    for r in records:
        if r["type"] == "attribution" and inside(r["ts"]):
            seen = set()
            se = defaultdict(float)   # per row: the sum of its touchpoints' Shapley errors
            for i, tp in enumerate(r["touchpoints"]):
                if r.get("shapley_stderr"):
                    x = r["shapley_stderr"][i]
                    se[(ident(tp), win(r["ts"]))] += math.inf if x is None else x
                k = (ident(tp), win(r["ts"]))
                row = rows[k]
                row["touchpoints"] += 1
                if k not in seen:
                    seen.add(k)
                    row["purchases"] += 1
                for m in METHODS:
                    if m in r["credits"]:
                        c = r["credits"][m][i]
                        row["conversions"][m] += c
                        row["value"][m] += c * (r.get("value") or 0)
            for k, x in se.items():
                rows[k]["shapley_var"] += x * x
        elif (r["type"] == "credit_delta" and r["method"] == "markov" and by != "campaign" and
              r["dim"] == ("category" if by == "category" else "channel") and
              inside(r["window_start"])):
            ch = r["dim_id"]
            k = (group_of(rules, ch) if by == "channel_group" else ch, win(r["window_start"]))
            rows[k]["conversions"]["markov"] += r["credit"] - r["credit_before"]
            # the interval of the latest window's credit: the row's Markov number only when
            # the row sums every window from the first, of one channel (not a group)
            if (window == "all" and lo is None and by != "channel_group" and
                    r.get("credit_lo") is not None and
                    r["window_end"] >= rows[k].get("interval_at", -math.inf)):
                rows[k]["interval_at"] = r["window_end"]
                rows[k]["markov_interval"] = {"lo": r["credit_lo"], "hi": r["credit_hi"],
                                              "level": r["interval_level"]}
    return rows


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compare(got, want, what):
    have = {(r["id"], r["window_start"]): r for r in got["rows"]}
    if set(have) != set(want):
        raise AssertionError("%s: rows %s, expected %s" % (what, sorted(map(str, have))[:8],
                                                            sorted(map(str, want))[:8]))
    for k, w in want.items():
        g = have[k]
        if g["purchases"] != w["purchases"] or g["touchpoints"] != w["touchpoints"]:
            raise AssertionError("%s %s: purchases/touchpoints %d/%d, expected %d/%d" % (
                what, k, g["purchases"], g["touchpoints"], w["purchases"], w["touchpoints"]))
        for m in got["methods"]:
            if not close(g["conversions"][m], w["conversions"][m]):
                raise AssertionError("%s %s %s: conversions %r, expected %r" % (
                    what, k, m, g["conversions"][m], w["conversions"][m]))
            if m != "markov" and not close(g["value"][m], w["value"][m]):
                raise AssertionError("%s %s %s: value %r, expected %r" % (
                    what, k, m, g["value"][m], w["value"][m]))
        if "markov" in got["methods"] and g.get("markov_interval") != w.get("markov_interval"):
            raise AssertionError("%s %s: markov_interval %r, expected %r" % (
                what, k, g.get("markov_interval"), w.get("markov_interval")))
        if "shapley" in got["methods"]:
            want_se = math.sqrt(w["shapley_var"])
            if not close(g["shapley_stderr"], want_se):
                raise AssertionError("%s %s: shapley_stderr %r, expected %r" % (
                    what, k, g["shapley_stderr"], want_se))
    return len(want)


def report_json(out, *extra, input_path=None):
    r = tally("report", "--input", input_path or out, "--format", "json", *extra)
    return json.loads(r.stdout), r.stderr


def case_sums(out, records):
    n = 0
    n_att = sum(1 for r in records if r["type"] == "attribution")
    rules = rules_of(";".join("%s=%s" % (g, c) for c, g in DEFAULT_GROUPS.items()))
    for by in ("channel", "channel_group", "category"):
        for window in ("all", "day", "hour"):
            got, _ = report_json(out, "--by", by, "--window", window)
            n += compare(got, expected(records, by, window, rules), "%s/%s" % (by, window))
            for m in METHODS:
                total = sum(r["conversions"][m] for r in got["rows"])
                if not close(total, n_att):
                    raise AssertionError("%s/%s: %s conversions sum to %r, not the %d "
                                         "attributions" % (by, window, m, total, n_att))
            if by == "category" and "markov" in got["methods"]:   # this data's chain: channels
                raise AssertionError("a chain over channels in a category roll-up")
    sampled = sum(1 for r in records if r.get("shapley_stderr"))
    if not sampled:
        raise AssertionError("no attribution with sampled Shapley credits: the error goes unchecked")
    got, _ = report_json(out, "--by", "channel")
    with_iv = [r for r in got["rows"] if r.get("markov_interval")]
    if len(with_iv) != len(got["rows"]) or not all(
            r["markov_interval"]["lo"] <= r["conversions"]["markov"] <= r["markov_interval"]["hi"]
            for r in with_iv):
        raise AssertionError("Markov intervals missing, or not around the Markov conversions")
    return "%d rows equal the sums made here (3 dimensions x 3 windows), the shapley error " \
           "from %d sampled purchases and the Markov bootstrap intervals included; each " \
           "method's conversions sum to the %d attributions" % (n, sampled, n_att)


def case_range(out, records):
    ts = sorted(r["ts"] for r in records if r["type"] == "attribution")
    lo, hi = ts[len(ts) // 4], ts[len(ts) // 2]
    got, err = report_json(out, "--from", str(lo), "--to", str(hi), "--window", "day")
    n = compare(got, expected(records, "channel", "day", (), lo, hi), "range")
    day = 1511568000000 + 3 * DAY   # 2017-11-28 00:00 UTC
    got, _ = report_json(out, "--from", "2017-11-28", "--to", "2017-11-29T00:00")
    compare(got, expected(records, "channel", "all", (), day, day + DAY), "dates")
    bad = tally("report", "--input", out, "--from", "2017-13-01", ok=False)
    if bad.returncode != 2 or "--from/--to" not in bad.stderr:
        raise AssertionError("a bad --from: exit %d\n%s" % (bad.returncode, bad.stderr))
    return "%d rows inside [%d, %d), and one calendar day, equal the sums made here; a bad " \
           "date is a usage error" % (n, lo, hi)


def case_formats(out, records):
    got, _ = report_json(out, "--window", "day", "--min-purchases", "100")
    rows = list(csv.DictReader(io.StringIO(tally("report", "--input", out, "--format", "csv",
                                                 "--window", "day", "--min-purchases", "100").stdout)))
    if len(rows) != len(got["rows"]):
        raise AssertionError("CSV has %d rows, JSON %d" % (len(rows), len(got["rows"])))
    for c, j in zip(rows, got["rows"]):
        if c["channel"] != j["id"] or int(c["purchases"]) != j["purchases"] or \
                (c["low_data"] == "true") != j["low_data"] or j["low_data"] != (j["purchases"] < 100):
            raise AssertionError("CSV row %r against JSON %r" % (c, j))
        for m in got["methods"]:
            if not close(float(c[m + "_conversions"]), j["conversions"][m]):
                raise AssertionError("CSV %s %s: %s against %r" % (c["channel"], m,
                                                                    c[m + "_conversions"], j["conversions"][m]))
    table = tally("report", "--input", out, "--window", "day", "--min-purchases", "100").stdout
    lines = [ln for ln in table.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", ln)]
    if len(lines) != len(got["rows"]):
        raise AssertionError("the table has %d rows, JSON %d:\n%s" % (len(lines), len(got["rows"]), table))
    low = sum(1 for r in got["rows"] if r["low_data"])
    if low and "* fewer than 100 purchases" not in table:
        raise AssertionError("low-data rows not explained in the table")
    if sum(1 for ln in lines if re.search(r"\d\* ", ln)) != low:
        raise AssertionError("the table marks another number of rows than the %d low ones" % low)
    return "CSV equals JSON (%d rows); the table has every row, %d marked as too few" % (len(rows), low)


def avro_json(rec):
    """A record as `tally consume` prints it: no "type" (the topic says it), optional fields
    as Avro JSON unions."""
    rec = {k: v for k, v in rec.items() if k != "type"}
    for k in ("value", "category_id", "credit_lo", "credit_hi", "interval_level"):
        if rec.get(k) is not None:
            rec[k] = {"string" if k == "category_id" else "double": rec[k]}
    if "touchpoints" in rec:
        rec["touchpoints"] = [dict(t, channel={"string": t["channel"]}) if t.get("channel") else t
                              for t in rec["touchpoints"]]
    return rec


def case_consume(out, records, tmp):
    path = os.path.join(tmp, "consumed.jsonl")
    with open(path, "w") as fh:
        for i, r in enumerate(records):
            if r["type"] not in ("attribution", "credit_delta"):
                continue
            fh.write(json.dumps({"partition": 0, "offset": i, "key": r.get("user_id"),
                                 "schema_id": 1, "value": avro_json(r)}) + "\n")
        fh.write("not json\n")
        fh.write(json.dumps({"value": {"conversion_event_id": "bad", "ts": 1, "touchpoints": [
            {"channel": "x"}], "credits": {"linear": [0.5, 0.5]}}}) + "\n")
    want, _ = report_json(out)
    got, err = report_json(out, input_path=path)
    if got != want or "markov" not in got["methods"]:
        raise AssertionError("consumed records give another answer (methods %s)" % got["methods"])
    m = re.search(r"report: (\d+) attributions, (\d+) Markov credit deltas and (\d+) roll-up "
                  r"totals from (\d+) lines \((\d+) outside the range, (\d+) skipped\)", err)
    if not m or m.group(6) != "2" or err.count("skipped:") != 2 or "credits of another length" not in err:
        raise AssertionError("bad lines not counted and named:\n%s" % err)
    return "the same JSON, Markov included, from consume-shaped lines (no type, Avro unions); " \
           "2 bad lines skipped, counted and named"


def case_groups(out, records):
    got, _ = report_json(out, "--by", "channel_group")
    ids = {r["id"] for r in got["rows"]}
    if ids != set(DEFAULT_GROUPS.values()):
        raise AssertionError("default groups %s" % sorted(ids))
    spec = "Paid=search,*spla*;Earned=social,e*"
    got, _ = report_json(out, "--by", "channel_group", "-X", "rollup.channel.groups=" + spec)
    compare(got, expected(records, "channel_group", "all", rules_of(spec)), "rules")
    ids = sorted(r["id"] for r in got["rows"])
    bad = tally("report", "--input", out, "--by", "channel_group", "-X",
                "rollup.channel.groups=Paid", ok=False)
    if bad.returncode != 2 or "'Paid' is not Group=pattern" not in bad.stderr:
        raise AssertionError("a malformed rule: exit %d\n%s" % (bad.returncode, bad.stderr))
    return "default groups %s; rules %r give %s; a malformed rule is refused" % (
        sorted(DEFAULT_GROUPS.values()), spec, ids)


def case_spend(out, records, tmp):
    """A spend file (one bad row, a channel nothing was credited to, a day outside the
    range): cost per conversion and ROAS per method equal spend / conversions and value /
    spend made here; CSV has the same numbers; spend by category is a usage error."""
    days = sorted({r["ts"] - r["ts"] % DAY for r in records if r["type"] == "attribution"})
    path = os.path.join(tmp, "spend.csv")
    spend = defaultdict(float)
    with open(path, "w") as fh:
        fh.write("date,channel,spend\n")
        for i, d in enumerate(days):
            day = time.strftime("%Y-%m-%d", time.gmtime(d / 1000))
            for j, ch in enumerate(list(DEFAULT_GROUPS) + ["tv"]):
                x = round(10 + 7.5 * ((i * 5 + j * 3) % 11), 2)
                fh.write("%s,%s,%s\n" % (day, ch, x))
                if d < days[-1]:
                    spend[(ch, None)] += x
            if i == 2:
                fh.write("2017-11-3,search,5\n")
    got, err = report_json(out, "--spend", path, "--to", str(days[-1]))
    if "spend: %d rows joined, 1 skipped" % (6 * (len(days) - 1)) not in err or ":20: skipped: the date is not YYYY-MM-DD" not in err:
        raise AssertionError("spend rows not counted as expected:\n%s" % err)
    want = expected(records, "channel", "all", (), None, days[-1])
    rows = {r["id"]: r for r in got["rows"]}
    n = 0
    for (ch, _), sp in spend.items():
        r = rows.get(ch)
        if r is None or not close(r["spend"], sp):
            raise AssertionError("%s: spend %r, expected %r" % (ch, r and r["spend"], sp))
        w = want.get((ch, None))
        for m in got["methods"]:
            conv = w["conversions"][m] if w else 0.0
            cpa = sp / conv if conv > 0 else None
            g = r["cost_per_conversion"][m]
            if (cpa is None) != (g is None) or (cpa is not None and not close(g, cpa)):
                raise AssertionError("%s %s: cost per conversion %r, expected %r" % (ch, m, g, cpa))
            if m != "markov":
                ro = (w["value"][m] if w else 0.0) / sp
                if not close(r["roas"][m], ro):
                    raise AssertionError("%s %s: roas %r, expected %r" % (ch, m, r["roas"][m], ro))
            n += 1
    if rows["tv"]["purchases"] != 0:
        raise AssertionError("tv has purchases")
    lines = list(csv.DictReader(io.StringIO(tally("report", "--input", out, "--spend", path, "--to",
                                                  str(days[-1]), "--format", "csv").stdout)))
    for c in lines:
        r = rows[c["channel"]]
        if not close(float(c["spend"]), r["spend"]) or (c["linear_cost_per_conversion"] == "") != (
                r["cost_per_conversion"]["linear"] is None):
            raise AssertionError("CSV row %r against JSON %r" % (c, r))
    bad = tally("report", "--input", out, "--spend", path, "--by", "category", ok=False)
    if bad.returncode != 2 or "--spend is per channel and day" not in bad.stderr:
        raise AssertionError("spend by category: exit %d\n%s" % (bad.returncode, bad.stderr))
    return "%d costs per conversion and ROAS (%d channels with spend, tv with no purchase) equal " \
           "the ones made here; CSV agrees; by category refused" % (n, len(spend))


def runs_of(img, rgb):
    """Horizontal runs of exactly colour rgb: [(y, x0, length)]."""
    w, h = img.size
    px = img.load()
    out = []
    for y in range(h):
        x = 0
        while x < w:
            if px[x, y] == rgb:
                x0 = x
                while x < w and px[x, y] == rgb:
                    x += 1
                out.append((y, x0, x - x0))
            else:
                x += 1
    return out


def case_html(out, tmp):
    from PIL import Image
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise AssertionError("chromium not found (scripts/deps.sh installs Debian's chromium)")
    page = os.path.join(tmp, "report.html")
    tally("report", "--input", out, "--format", "html", "--output", page)
    with open(page) as fh:
        html = fh.read()
    refs = re.findall(r"(?:src|href)\s*=|url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    if refs:
        raise AssertionError("the page refers outside itself: %s" % refs[:5])
    got, _ = report_json(out)
    rows = got["rows"][:15]
    methods = got["methods"]
    top = max(r["conversions"][m] for r in rows for m in methods)
    png = os.path.join(tmp, "report.png")
    height = 260 + len(rows) * (len(methods) * 14 + 10)
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--force-device-scale-factor=1", "--window-size=1000,%d" % height,
                        "--screenshot=" + png, "file://" + page],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not os.path.exists(png):
        raise AssertionError("chromium failed: exit %d\n%s" % (r.returncode, r.stderr[-1500:]))
    img = Image.open(png).convert("RGB")
    checked = 0
    for m in methods:
        rgb = tuple(int(COLOUR[m][i:i + 2], 16) for i in (1, 3, 5))
        runs = runs_of(img, rgb)
        bars = [x for x in runs if x[2] > 0]
        if not bars:
            raise AssertionError("no %s bar in the screenshot" % m)
        x0 = max(bars, key=lambda x: x[2])[1]     # the chart's axis: where the bars start
        bars = [x for x in bars if x[1] == x0]
        merged = []                               # rows of one bar are consecutive
        for y, _, w in sorted(bars):
            if merged and y == merged[-1][1] + 1:
                merged[-1][1], merged[-1][2] = y, max(merged[-1][2], w)
            else:
                merged.append([y, y, w])
        want = [round(r["conversions"][m] / top * 640) for r in rows]
        want = [w for w in want if w > 0]
        widths = [w for _, _, w in merged]
        if len(widths) != len(want) or any(abs(a - b) > 2 for a, b in zip(widths, want)):
            raise AssertionError("%s bars %s px in the screenshot, expected %s" % (m, widths, want))
        checked += len(widths)
    return "chromium rendered the page; %d bars (%d methods x %d channels) have the widths " \
           "the numbers give, to 2 px; no outside reference" % (checked, len(methods), len(rows))


def case_campaigns(tmp):
    """By campaign, on generated events with three campaigns per channel (on impressions and
    clicks; organic touchpoints under (none)): the rows equal the sums made here, each
    method's conversions add up to the attributions, no Markov column, and asking for one
    (or for spend) is an error."""
    events, out = os.path.join(tmp, "camp.csv"), os.path.join(tmp, "camp.jsonl")
    tally("gen", "--events", "40000", "--users", "2000", "--impressions", "--campaigns", "3",
          "--output", events)
    tally("replay", "--input", events, "--format", "canonical", "--output", out,
          "-X", "log.level=warn")
    records = load(out)
    n_att = sum(1 for r in records if r["type"] == "attribution")
    n = 0
    for window in ("all", "day"):
        got, _ = report_json(out, "--by", "campaign", "--window", window)
        n += compare(got, expected(records, "campaign", window), "campaign/" + window)
        if "markov" in got["methods"]:
            raise AssertionError("a Markov column by campaign")
        for m in got["methods"]:
            total = sum(r["conversions"][m] for r in got["rows"])
            if not close(total, n_att):
                raise AssertionError("campaign/%s: %s conversions sum to %r, not the %d "
                                     "attributions" % (window, m, total, n_att))
    ids = {r["id"] for r in got["rows"]} - {"(none)"}
    if len(ids) < 12:
        raise AssertionError("only campaigns %s" % sorted(ids))
    for extra in (("--methods", "linear,markov"), ("--spend", events)):
        bad = tally("report", "--input", out, "--by", "campaign", *extra, ok=False)
        if bad.returncode != 2:
            raise AssertionError("--by campaign %s: exit %d" % (" ".join(extra), bad.returncode))
    return "%d rows (%d campaigns and (none), windows all and day) equal the sums made here" % (
        n, len(ids))


def main():
    tmp = tempfile.mkdtemp(prefix="tally-report-test-")
    events, truth, out = (os.path.join(tmp, n) for n in ("events.csv", "truth.json", "out.jsonl"))
    tally("gen", "--truth", truth, "--users", "600", "--days", "14", "--seed", "5", "--output", events)
    tally("replay", "--input", events, "--format", "canonical", "--output", out,
          "-X", "model.enabled=true", "-X", "markov.enabled=true", "-X", "log.level=warn",
          "-X", "markov.bootstrap.samples=50")
    records = load(out)
    step = Steps()
    for name, fn in (("sums", lambda: case_sums(out, records)),
                     ("range", lambda: case_range(out, records)),
                     ("formats", lambda: case_formats(out, records)),
                     ("consume", lambda: case_consume(out, records, tmp)),
                     ("groups", lambda: case_groups(out, records)),
                     ("campaigns", lambda: case_campaigns(tmp)),
                     ("spend", lambda: case_spend(out, records, tmp)),
                     ("html", lambda: case_html(out, tmp))):
        step(name, lambda pr, fn=fn: fn())
    passed, failed = step.counts()
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        print("files kept in %s" % tmp)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
