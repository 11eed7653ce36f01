#!/usr/bin/env python3
"""integration.explanations: every attribution sentence says what its record says.

`tally replay` runs over generated data (`tally gen --truth`: impressions with channels;
`tally gen --impressions`: every event type) and, where ../shared/data is present, the
Taobao journeys and slice. For every attribution record, the rule-based sentence (the part
before "; the model") is rebuilt from the record alone, by the rules of docs/attribution.md,
by reference.attribution_sentence, and must be the sentence:

- "purchase of item I: all credit to <touchpoint>" for one touchpoint; otherwise
  "purchase of item I after N touchpoints over SPAN: last touch <last>, first <first>; "
  and what time decay gives: "each the same (x)" when every credit is equal, "the most (x)
  to <the touchpoint>" when one is largest, "the most (x each) to K touchpoints, the latest
  <touchpoint>" when K tie;
- a touchpoint: the right article (an impression, an add-to-cart, a browse, ...), its item,
  "on <channel>" when it has one, and its time before the purchase;
- x is the largest time-decay credit, rounded to 2 decimals.

Also, in the whole sentence: no "a impression" or "a add-to-cart", every percentage within
[0, 100]; the model's numbers (the purchase rate's lift, the part owed, and its shares) exactly when its Shapley status
is ok, and otherwise the reason its credits are linear; every model share in [0, 1] and
each method's shares summing to 1.

Environment: TALLY_BIN, TALLY_SOURCE_DIR. Exit 0 passed, 1 failed.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import fixtures as fx  # noqa: E402
import reference as ref  # noqa: E402

TALLY, SHARED = fx.TALLY, fx.TAOBAO


def expected_sentence(rec):
    return ref.attribution_sentence(rec["item_id"], rec["ts"], rec["touchpoints"], rec["credits"])


def check_file(out, pr):
    n = ties = alike = models = 0
    with open(out) as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["type"] != "attribution":
                continue
            n += 1
            text = rec["explanation"]
            rule = text.split(cmp.MODEL_SENTENCE, 1)[0]
            want = expected_sentence(rec)
            if rule != want and len(pr) < 10:
                pr.append("%s:\n       said: %s\n   expected: %s" % (
                    rec["conversion_event_id"], rule, want))
            if re.search(r"\ba (impression|add-to-cart)\b", text) and len(pr) < 10:
                pr.append("%s: wrong article: %s" % (rec["conversion_event_id"], text))
            for pct in re.findall(r"(-?\d+(?:\.\d+)?)%", text):
                if not 0 <= float(pct) <= 100 and len(pr) < 10:
                    pr.append("%s: %s%% in: %s" % (rec["conversion_event_id"], pct, text))
            status = (rec.get("model_status") or {}).get("shapley")
            if status is not None:
                models += 1
                said = "of this purchase is owed to them" in text
                reason = {"ok": "gives", "fallback_linear": "falls back to linear",
                          "warming_up": "warming up", "no_negatives": "no moment without a purchase"}
                if said:   # the model's numbers are the record's
                    lift = rec["p_conversion"] / rec["p_baseline"]
                    want_nums = ("%.2f times the rate with none, so %.0f%% of this purchase" % (
                        lift, 100 * (1 - 1 / lift)) if lift > 1 else
                        "%.2f times the rate with none, so none of this purchase" % lift)
                    if want_nums not in text and len(pr) < 10:
                        pr.append("%s: expected \"%s\" in: %s" % (rec["conversion_event_id"],
                                                                  want_nums, text))
                if said != (status == "ok") or reason.get(status, "?") not in text:
                    if len(pr) < 10:
                        pr.append("%s: status %s, sentence: %s" % (rec["conversion_event_id"],
                                                                  status, text))
                for m in ("shapley", "removal"):
                    c = rec["credits"][m]
                    if any(not 0 <= x <= 1 for x in c) or abs(sum(c) - 1) > 1e-9:
                        if len(pr) < 10:
                            pr.append("%s: %s shares %s" % (rec["conversion_event_id"], m, c))
            ties += "each)" in rule or "each the same" in rule
            tps = rec["touchpoints"]
            keys = [(t["type"], t["item_id"], t.get("channel")) for t in tps]
            alike += len(set(keys)) < len(keys)
    return n, ties, alike, models


def main():
    inputs = []
    with tempfile.TemporaryDirectory(prefix="tally-explain-") as d:
        tr_csv, tr_json = os.path.join(d, "truth.csv"), os.path.join(d, "truth.json")
        subprocess.run([TALLY, "gen", "--truth", tr_json, "--users", "1500", "--output", tr_csv],
                       check=True)
        inputs.append(("generated with channels (gen --truth)", tr_csv, "canonical"))
        gi = os.path.join(d, "gen.csv")
        subprocess.run([TALLY, "gen", "--events", "100000", "--impressions", "--output", gi],
                       check=True)
        inputs.append(("generated, every type (gen --impressions)", gi, "canonical"))
        for name in ("user_behavior_journeys.csv", "user_behavior_slice.csv"):
            path = os.path.join(SHARED, name)
            if os.path.exists(path):
                inputs.append(("Taobao " + name, path, "taobao"))
            else:
                print("note: %s absent (../shared/data not beside the source): not checked" % path)
        failed = 0
        for name, path, fmt in inputs:
            out = os.path.join(d, "out.jsonl")
            subprocess.run([TALLY, "replay", "--input", path, "--format", fmt, "--output", out,
                            "-X", "log.level=warn"], check=True, stderr=subprocess.DEVNULL)
            pr = []
            n, ties, alike, models = check_file(out, pr)
            if n == 0:
                pr.append("no attribution record")
            failed += fx.step_verdict(
                name, "%d sentences (%d with tied time-decay credits, %d with touchpoints "
                "alike but for their time, %d with the model)" % (n, ties, alike, models), pr)
    return fx.steps_summary(len(inputs), failed)


if __name__ == "__main__":
    sys.exit(main())
