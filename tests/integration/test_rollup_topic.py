#!/usr/bin/env python3
"""integration.rollup_topic: the compacted roll-up topic (rollup.topic) on a real broker,
exactly_once, against sums made here from the records tally published.

The oracle: every attribution record read back (read_committed) from the run's attribution
topic, summed in Python per channel, category and campaign (the input is generated with two
campaigns per channel, on each session's first event), per UTC hour and day: purchases
(once per value a purchase touched), touchpoints, and per method the conversions (credits)
and conversion value (credit x purchase value); plus the Markov credit deltas (credit -
credit_before) per channel and window. The roll-up topic's latest record per key must
equal those sums (counts exactly, sums within 1e-9 relative), key for key, with no key
missing or extra; the channel-group rows must add up to the channel rows.

1. One instance, `tally run --until-end`, the whole input at once; its model topic also
   holds a record that is not a model update, which must be the one dead letter (source
   topic, reason malformed, key and value as they were). With ad spend on a topic
   (rollup.spend.topic, two partitions): lines for two days of three channels (one line
   twice), a channel without touchpoints and a line that is not one (its one dead letter:
   key, value, partition and offset as they were); every channel day row
   holds the sum of its lines (null without), a spend-only channel gets a row, the
   channel-group rows' spend adds up to the channels', hour, category and campaign rows hold none,
   and each method's cost per conversion and return on ad spend are spend / conversions
   and value / spend. `tally replay` of the same input gives the same report as the topic,
   every dimension and window, but for the model's columns. With a bootstrap of the Markov
   chain (markov.bootstrap.samples), every channel and category row carries the interval
   of its value's latest credit delta in its window.
2. Three instances of one group on a second copy of the input produced in three parts:
   the first instance alone on part 1; two more join (a rebalance of both the pipeline's
   and the aggregator's groups) before part 2; one of them is SIGKILLed as part 3 arrives
   and restarted. A spend topic of four partitions holds a bad line in each before the
   start, and one more in the killed owner's partition after the restart: the group
   dead-letters each once. The roll-ups must again equal the sums of what that group published --
   nothing lost or doubled through the kill -- and the rule-based columns, purchases and
   touchpoints must equal run 1's, and so must the Markov column and every Markov credit
   delta (window, channel, credit, removal effect): the chain is one chain for the group,
   its windows closed on a watermark over every input partition, so none of it depends on
   how many instances ran. (The model-based columns depend on which instance credited
   which purchase with its model as it was then; they are checked against the group's own
   records.) GET /v1/attribution of two of the instances (by channel, and by campaign),
   answered from the roll-up topic, equals `tally report` over the group's records.
3. One model for the group (model.shared): the model topic <group>-model holds, per
   committed transaction, the examples learned and their predictions (model/model.h). Its
   records decoded here: the three instances' together hold exactly the examples the single
   instance learned (the same count and positives: none lost or doubled through the
   rebalance and the SIGKILL), they come from more than one process, the group's progressive
   AUC over them is within four standard errors of the difference (Hanley and McNeil's) of
   the single instance's (an instance predicts before the others' latest updates reach it,
   so the two are close, not equal), and every instance's model has learned from all of them
   (tally_model_examples_total on its /metrics, which counts the others' examples added
   with their updates, reaches the group's count). As good a model: the final model of
   each of the three instances and of the single one, each replaying the same held-out
   stream (another seed) from a copy of its model.bin, are at most 0.01 AUC apart.
"""
import json
import os
import re
import shutil
import subprocess
import struct
import sys
import tempfile
import time
import uuid
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_util as ku  # noqa: E402
from rollup_ref import (close, compare, expected, groups_add_up, input_events, latest,  # noqa: E402
                        markov_deltas, published, same_deltas)

EVENTS, USERS = 30000, 3000
RULE = ["last_touch", "first_touch", "linear", "time_decay", "position_based"]
COMMON = ["processing.guarantee=exactly_once", "kafka.consumer.session.timeout.ms=6000",
          "kafka.consumer.heartbeat.interval.ms=1000", "http.listen=", "log.level=info"]
TIMEOUT_S = 240


def owns(log_path, partition):
    """Whether the aggregator of the instance logging to log_path owns partition now."""
    state = False
    with open(log_path, errors="replace") as fh:
        for line in fh:
            if "component=rollup assigned partition=%d\n" % partition in line + "\n":
                state = True
            elif "component=rollup revoked partition=%d\n" % partition in line + "\n":
                state = False
    return state


def consume(kafka, topics, path):
    """`tally consume --until-end` of topics into one file of JSON lines."""
    with open(path, "w") as out:
        for t in topics:
            subprocess.run([ku.TALLY_BIN, "consume", "--topic", t, "--until-end", "-X",
                            "kafka.bootstrap.servers=" + kafka.b], stdout=out,
                           stderr=subprocess.DEVNULL, check=True, timeout=120)


# the key of a record put on the single instance's model topic that is not a model update
ROGUE = b"rogue/0"


def model_examples(kafka, topic):
    """The (p, weight, label) rows of every model update on topic, and the keys seen."""
    rows, keys = [], set()
    for _p, _o, key, value, _h in kafka.read_all(topic):
        if key == ROGUE:
            continue
        if value[:4] != b"TLMS" or struct.unpack_from("<I", value, 4)[0] != 1:
            raise AssertionError("model topic %s: a record that is not a model update" % topic)
        n = struct.unpack_from("<I", value, 8)[0]
        for i in range(n):
            rows.append(struct.unpack_from("<ddB", value, 12 + 17 * i))
        if value[12 + 17 * n:12 + 17 * n + 4] != b"TLFD":
            raise AssertionError("model topic %s: an update without its FTRL delta" % topic)
        keys.add(key)
    return rows, keys


def auc_se(auc, rows):
    """Hanley and McNeil's (1982) standard error of an AUC over these rows' labels."""
    n1 = sum(1 for r in rows if r[2])
    n0 = len(rows) - n1
    if not n1 or not n0:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return ((auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc))
            / (n1 * n0)) ** 0.5


def weighted_auc(rows):
    """AUC of p for label 1 against label 0, pairs weighted by both rows' weights; ties 1/2."""
    rows = sorted(rows, key=lambda r: r[0])
    num = neg_below = 0.0
    wp = wn = 0.0
    i = 0
    while i < len(rows):
        j = i
        tp = tn = 0.0
        while j < len(rows) and rows[j][0] == rows[i][0]:
            if rows[j][2]:
                tp += rows[j][1]
            else:
                tn += rows[j][1]
            j += 1
        num += tp * (neg_below + tn / 2)
        neg_below += tn
        wp += tp
        wn += tn
        i = j
    return num / (wp * wn) if wp and wn else float("nan")


def events_of(csv):
    """(ts, channel) of every event of a canonical CSV."""
    with open(csv) as fh:
        head = fh.readline().strip().split(",")
        ts, ch = head.index("ts"), head.index("channel")
        return [(int(f[ts]), f[ch]) for f in (line.rstrip("\n").split(",") for line in fh)]


def spend_problems(got, want):
    """The roll-up rows' spend against the lines' sums ({(day, channel): spend}): channel day
    rows hold their sum (null without one), channel-group day rows add up to the channel
    rows of the day, hour, category and campaign rows hold none; the cost per conversion and the
    return on ad spend are spend / conversions and value / spend."""
    pr = []
    by_day = defaultdict(lambda: [0.0, 0.0])
    for (dim, w, start, vid), rec in got.items():
        sp = rec.get("spend")
        if w == "hour" or dim in ("category", "campaign"):
            if sp is not None:
                pr.append("%s: spend %r in a row that takes none" % ((dim, w, start, vid), sp))
            continue
        if dim == "channel":
            if (sp is None) != ((start, vid) not in want) or \
                    (sp is not None and not close(sp, want[(start, vid)])):
                pr.append("%s: spend %r, expected %r" % ((dim, w, start, vid), sp,
                                                         want.get((start, vid))))
        by_day[start][0 if dim == "channel" else 1] += sp or 0.0
        for m in rec["methods"]:
            cpc, roas = rec["cost_per_conversion"].get(m["method"]), rec["roas"].get(m["method"])
            want_cpc = sp / m["conversions"] if sp is not None and m["conversions"] > 0 else None
            want_roas = m["value"] / sp if sp and m["method"] != "markov" else None
            for name, x, y in (("cost per conversion", cpc, want_cpc), ("roas", roas, want_roas)):
                if (x is None) != (y is None) or (x is not None and not close(x, y)):
                    pr.append("%s %s: %s %r, expected %r" % ((dim, w, start, vid), m["method"],
                                                             name, x, y))
    for start, (ch, grp) in sorted(by_day.items()):
        if not close(ch, grp):
            pr.append("day %d: spend %r over the channel groups, %r over the channels"
                      % (start, grp, ch))
    for (start, vid) in sorted(want):
        if ("channel", "day", start, vid) not in got:
            pr.append("no day row of channel %s for its spend on %d" % (vid, start))
    return pr[:10]


def interval_problems(got, credits):
    """Each channel and category row's Markov interval is that of the latest credit delta
    (by window end) of its value whose window starts in the row's window; channel-group
    rows have none."""
    pr, latest_of = [], {}
    for c in credits:
        if c["method"] != "markov" or c.get("credit_lo") is None:
            continue
        for w, wlen in (("hour", 3600000), ("day", 86400000)):
            k = (c["dim"], w, c["window_start"] - c["window_start"] % wlen, c["dim_id"] or "(none)")
            if k not in latest_of or c["window_end"] >= latest_of[k]["window_end"]:
                latest_of[k] = c
    if not latest_of:
        pr.append("no credit delta carried a bootstrap interval")
    for k, rec in got.items():
        iv, c = rec.get("markov_interval"), latest_of.get(k)
        want = None if c is None or k[0] == "channel_group" else \
            (c["credit_lo"], c["credit_hi"], c["interval_level"], c["window_end"])
        have = None if iv is None else (iv["lo"], iv["hi"], iv["level"], iv["at"])
        if (want is None) != (have is None) or (want and not all(close(a, b) for a, b in zip(want, have))):
            pr.append("%s: Markov interval %r, expected %r" % (k, have, want))
        if len(pr) > 5:
            break
    return pr


def report(path, by, window, spend=None):
    """`tally report --format json` of a file (with --spend when given): {(id, window_start): row}."""
    p = subprocess.run([ku.TALLY_BIN, "report", "--input", path, "--by", by, "--window", window,
                        "--format", "json", "--min-purchases", "0"] +
                       (["--spend", spend] if spend else []), capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("tally report --input %s: %s" % (path, p.stderr.strip()))
    return {(r["id"], r["window_start"]): r for r in json.loads(p.stdout)["rows"]}


def same_reports(a, b, what, methods=None):
    """Problems between two reports' rows (counts exactly, numbers within TOL); methods:
    only these methods' columns (None: all)."""
    pr = ["%s: row %s in only one" % (what, k) for k in sorted(set(a) ^ set(b), key=str)[:3]]
    for k in sorted(set(a) & set(b), key=str):
        x, y = a[k], b[k]
        if (x["purchases"], x["touchpoints"]) != (y["purchases"], y["touchpoints"]):
            pr.append("%s %s: purchases/touchpoints %s vs %s" % (
                what, k, (x["purchases"], x["touchpoints"]), (y["purchases"], y["touchpoints"])))
        for col in ("conversions", "value", "cost_per_conversion", "roas"):
            x[col], y[col] = ({m: v for m, v in (r.get(col) or {}).items()
                               if methods is None or m in methods} for r in (x, y))
        for col in ("conversions", "value"):
            for m in set(x[col]) | set(y[col]):
                u, v = x[col].get(m), y[col].get(m)
                if u is None or v is None or not close(u, v):
                    pr.append("%s %s %s %s: %r vs %r" % (what, k, col, m, u, v))
        for col in ("spend", "markov_interval"):
            u, v = x.get(col), y.get(col)
            if col == "markov_interval" and methods is not None:
                continue   # (of the chain's windows, not of a method's column)
            if isinstance(u, dict) and isinstance(v, dict):
                same = set(u) == set(v) and all(close(u[f], v[f]) for f in u)
            else:
                same = (u is None) == (v is None) and (u is None or close(u, v))
            if not same:
                pr.append("%s %s %s: %r vs %r" % (what, k, col, u, v))
        for col in ("cost_per_conversion", "roas"):
            for m in set(x.get(col) or {}) | set(y.get(col) or {}):
                u, v = (x.get(col) or {}).get(m), (y.get(col) or {}).get(m)
                if (u is None) != (v is None) or (u is not None and not close(u, v)):
                    pr.append("%s %s %s %s: %r vs %r" % (what, k, col, m, u, v))
        if len(pr) > 5:
            break
    return pr[:5]


def main():
    if not os.path.exists(ku.TALLY_BIN):
        print("SKIP: %s is not built" % ku.TALLY_BIN)
        return ku.SKIP
    kafka = ku.Kafka(ku.bootstrap())
    schemas = ku.load_schemas()
    tmp = tempfile.mkdtemp(prefix="tally-rollup-")
    steps = ku.Steps(catch_all=True)
    run = uuid.uuid4().hex[:8]
    csv = os.path.join(tmp, "events.csv")
    ku.gen_events(csv, EVENTS, USERS, 1, ["--campaigns", "2"])
    with open(csv) as fh:
        header, lines = fh.readline(), fh.readlines()
    parts = []
    for i in range(3):
        path = os.path.join(tmp, "part%d.csv" % i)
        with open(path, "w") as fh:
            fh.write(header)
            fh.writelines(lines[i * len(lines) // 3:(i + 1) * len(lines) // 3])
        parts.append(path)

    def holdout_aucs(states):
        """The AUC of each state directory's final model (model.bin) on one held-out stream
        (other events of the same kind, another seed), `tally replay` of it from a copy of
        the model: every model scores the same examples in the same order."""
        held = os.path.join(tmp, "holdout.csv")
        if not os.path.exists(held):
            ku.gen_events(held, EVENTS, USERS, 7, ["--campaigns", "2"])
        aucs = []
        for i, state in enumerate(states):
            d = os.path.join(tmp, "holdout-%d" % i)
            os.makedirs(d)
            shutil.copy(os.path.join(state, "model.bin"), d)
            log = os.path.join(tmp, "holdout-%d.log" % i)
            ku.run_tally(["replay", "--input", held, "--format", "canonical", "--output",
                          os.path.join(d, "out.jsonl"), "-X", "state.dir=" + d], TIMEOUT_S, log,
                         "replay of the held-out stream")
            with open(log, errors="replace") as fh:
                m = re.search(r"progressive log-loss \S+ and AUC ([0-9.]+)", fh.read())
            if not m:
                raise AssertionError("no AUC in %s" % log)
            aucs.append(float(m.group(1)))
        return aucs

    def produce(topic, path):
        ku.produce_file(path, topic, kafka.b)

    def args(name, topic, group, outs, rollup, state, extra=()):
        x = ["kafka.bootstrap.servers=" + kafka.b, "input.topics=" + topic,
             "kafka.group.id=" + group, "state.dir=" + state, "rollup.topic=" + rollup] + COMMON + \
            list(extra)
        return [a for kv in x for a in ("-X", kv)] + outs.args()

    a = {"topic": "rollup-in-a-" + run, "group": "rollup-a-" + run, "rollup": "rollup-a-" + run,
         "outs": ku.OutputTopics("rollup-a-" + run)}
    b = {"topic": "rollup-in-b-" + run, "group": "rollup-b-" + run, "rollup": "rollup-b-" + run,
         "outs": ku.OutputTopics("rollup-b-" + run)}
    kafka.create_topics({a["topic"]: 4, b["topic"]: 4})
    a["outs"].create(kafka)
    b["outs"].create(kafka)
    got_a = {}
    credits_a = []
    auc_a = []

    def one_instance(problems):
        produce(a["topic"], csv)
        # ad spend: two days of three of the data's channels (one line twice), a channel
        # with no touchpoint, a line that is not one
        spend_topic = "rollup-spend-" + run
        kafka.create_topics({spend_topic: 2})
        days, chans = sorted({e[0] - e[0] % 86400000 for e in events_of(csv)}), \
            sorted({e[1] for e in events_of(csv) if e[1]})
        lines = [(d, c, 100.0 + 10 * i + j) for i, d in enumerate(days[:2])
                 for j, c in enumerate(chans[:3])]
        lines += [lines[0], (days[0], "tv", 55.5)]
        want_spend = defaultdict(float)
        for d, c, v in lines:
            want_spend[(d, c)] += v
        text = ["%s,%s,%.2f" % (time.strftime("%Y-%m-%d", time.gmtime(d / 1000)), c, v)
                for d, c, v in lines] + ["2017-11-25;search;1"]
        spend_at = kafka.produce(spend_topic, [(b"s%d" % i, t.encode()) for i, t in enumerate(text)])
        # a record on the model topic that is not a model update: a dead letter
        model_a = a["group"] + "-model"
        kafka.create_topics({model_a: 1})
        kafka.produce(model_a, [(ROGUE, b"not a model update")])
        secs = ku.run_tally(["run", "--until-end"] + args("a", a["topic"], a["group"], a["outs"],
                                                         a["rollup"], os.path.join(tmp, "state-a"),
                                                         ["rollup.spend.topic=" + spend_topic,
                                                          "markov.bootstrap.samples=20"]),
                            TIMEOUT_S, os.path.join(tmp, "a.log"), "tally-a")
        with open(os.path.join(tmp, "a.log"), errors="replace") as fh:
            auc_a[:] = re.findall(r"progressive AUC ([0-9.]+)", fh.read())
        dead = kafka.read_all(a["outs"].dlq)
        heads = [{k: v.decode() for k, v in h.items()} for _p, _o, _k, _v, h in dead]
        spent = [(r, h) for r, h in zip(dead, heads) if h.get("tally.source.topic") == spend_topic]
        dead = [r for r, h in zip(dead, heads) if h.get("tally.source.topic") != spend_topic]
        heads = [h for h in heads if h.get("tally.source.topic") != spend_topic]
        if len(dead) != 1 or dead[0][2] != ROGUE or dead[0][3] != b"not a model update" or \
                heads[0].get("tally.source.topic") != model_a or \
                heads[0].get("tally.reason") != "malformed":
            problems.append("the model topic's bad record: dead letters %s" % heads)
        # the spend line that is not one: one dead letter, key and value as they were
        bad_at = spend_at[-1]
        if len(spent) != 1 or spent[0][0][2] != b"s%d" % (len(text) - 1) or \
                spent[0][0][3] != text[-1].encode() or spent[0][1].get("tally.reason") != "malformed" or \
                (int(spent[0][1].get("tally.source.partition", -1)),
                 int(spent[0][1].get("tally.source.offset", -1))) != bad_at:
            problems.append("the bad spend line (at %s): dead letters %s" % (bad_at, [h for _r, h in spent]))
        attrs, credits = published(kafka, schemas, a["outs"], problems)
        credits_a.extend(credits)
        want = expected(attrs, credits)
        got_a.update(latest(kafka, schemas, a["rollup"]))
        problems += compare(want, got_a)
        problems += groups_add_up(got_a)
        problems += spend_problems(got_a, want_spend)
        problems += interval_problems(got_a, credits)
        with open(os.path.join(tmp, "a.log"), errors="replace") as fh:
            if "skipped: not three fields" not in fh.read():
                problems.append("the spend line that is not one was not reported")
        kafka.delete_topics([spend_topic])
        # the Markov credit deltas, recomputed here from the input alone
        import numpy as np
        want_d = markov_deltas(input_events(kafka, schemas, a["topic"]), 7 * 86400000, 50, 3600000, np)
        problems += same_deltas(want_d, credits, "Markov credit deltas against the journeys")
        # tally report over the roll-up topic = over the records it sums
        totals, records = os.path.join(tmp, "totals.jsonl"), os.path.join(tmp, "records.jsonl")
        consume(kafka, [a["rollup"]], totals)
        consume(kafka, [a["outs"].attribution, a["outs"].credit], records)
        # (with the spend lines joined at query time where the topic's rows carry spend)
        replayed = os.path.join(tmp, "replay.jsonl")
        ku.run_tally(["replay", "--input", csv, "--format", "canonical", "--output", replayed],
                     TIMEOUT_S, os.path.join(tmp, "replay.log"), "replay")
        spend_csv = os.path.join(tmp, "spend.csv")
        with open(spend_csv, "w") as fh:
            fh.write("date,channel,spend\n" + "".join(t + "\n" for t in text))
        for by in ("channel", "channel_group", "category", "campaign"):
            for window in ("all", "day", "hour"):
                joined = by in ("channel", "channel_group") and window != "hour"
                over_topic = report(totals, by, window)
                problems += same_reports(over_topic,
                                         report(records, by, window, spend_csv if joined else None),
                                         "report --by %s --window %s" % (by, window))
                # the same input through `tally replay`: the same roll-ups, but for the
                # model's columns (its credits depend on the order it learned in)
                problems += same_reports(over_topic,
                                         report(replayed, by, window, spend_csv if joined else None),
                                         "replay: report --by %s --window %s" % (by, window),
                                         methods=RULE + ["markov"])
        return "%d attributions, %d credit deltas -> %d roll-up rows (%d with channel groups) " \
               "equal to the sums, in %.1f s; the credit deltas equal to %d recomputed here from " \
               "the input's journeys; tally report over the topic = over the records, every " \
               "dimension and window, and = over tally replay's records of the same input " \
               "(rule-based and Markov columns); a bad model-topic record dead-lettered (%s); spend of %d " \
               "lines in the day rows, the costs it gives" % (
                   len(attrs), len(credits), len(want), len(got_a), secs, len(want_d),
                   heads[0].get("tally.error") if heads else "none", len(lines))

    def three_instances(problems):
        if not got_a:
            raise AssertionError("run 1 gave nothing to compare with")
        insts = {}

        # a spend topic of four partitions, a bad line in each: each dead-lettered once by
        # the group, whoever owns what, through the rebalance and the SIGKILL
        spend_b = "rollup-spend-b-" + run
        kafka.create_topics({spend_b: 4})
        for q in range(4):
            kafka.produce(spend_b, [(b"bad", b"no spend line %d" % q)], partition=q)

        def spend_letters():
            got = [{k: v.decode() for k, v in r[4].items()} for r in kafka.read_all(b["outs"].dlq)]
            return sorted((int(h["tally.source.partition"]), int(h["tally.source.offset"]))
                          for h in got if h.get("tally.source.topic") == spend_b)

        def start(i):
            insts[i] = ku.Tally(["run"] + args("b%d" % i, b["topic"], b["group"], b["outs"], b["rollup"],
                                               os.path.join(tmp, "state-b%d" % i),
                                               ["rollup.spend.topic=" + spend_b]) +
                                ["-X", "http.listen=127.0.0.1:0"],
                                os.path.join(tmp, "b%d-%d.log" % (i, len(insts))), "tally-b%d" % i)

        def drained():
            ends = kafka.end_offsets(b["topic"])
            return sum(ends.values()) == kafka.committed_sum(b["group"], b["topic"])

        produce(b["topic"], parts[0])
        start(1)
        ku.wait_until(drained, TIMEOUT_S, "instance 1 commits part 1", running=[insts[1]])
        start(2)
        start(3)
        ku.wait_until(lambda: len(kafka.group_members(b["group"])) == 3, TIMEOUT_S,
                      "three members in the group", running=list(insts.values()))
        produce(b["topic"], parts[1])
        ku.wait_until(drained, TIMEOUT_S, "three instances commit part 2", running=list(insts.values()))
        # the instance whose aggregator owns the shared chain (the state topic's partition)
        state_topic = b["group"] + "-rollup-state"
        chain_part = ku.wait_until(lambda: {r[0] for r in kafka.read_all(state_topic)}, TIMEOUT_S,
                                   "the shared chain's state written", running=list(insts.values()),
                                   interval_s=0.2)
        if len(chain_part) != 1:
            raise AssertionError("the chain's state is on partitions %s of %s" % (chain_part, state_topic))
        chain_part = chain_part.pop()
        # (a partition moving between members is first revoked, then assigned)
        victim = ku.wait_until(lambda: [i for i, t in insts.items() if owns(t.log_path, chain_part)],
                               TIMEOUT_S, "an owner of partition %d of the partials" % chain_part,
                               running=list(insts.values()), interval_s=0.2)
        if len(victim) != 1:
            raise AssertionError("instances %s own partition %d of the partials" % (victim, chain_part))
        victim = victim[0]
        produce(b["topic"], parts[2])
        insts[victim].kill()
        start(victim)
        ku.wait_until(drained, TIMEOUT_S, "part 3 committed after the SIGKILL",
                      running=list(insts.values()))
        n_a = len(kafka.read_all(a["outs"].attribution))

        def converged():
            pr = []
            attrs, credits = published(kafka, schemas, b["outs"], pr)
            # every purchase attributed, and the chain's last window closed: as many
            # credit deltas as one instance published (their values are compared below)
            if len(attrs) != n_a or len(credits) < len(credits_a):
                return False
            return not compare(expected(attrs, credits), latest(kafka, schemas, b["rollup"]))
        ku.wait_until(converged, TIMEOUT_S, "roll-ups equal to the group's records, and as many "
                      "credit deltas as one instance's", running=list(insts.values()), interval_s=1.0)
        # one more bad line, in the spend partition checked by the owner of the partials
        # partition that was the killed instance's: its dead letter comes after the
        # restarted group read the others again, which must not be dead-lettered again
        kafka.produce(spend_b, [(b"bad", b"no spend line either")], partition=chain_part)
        want_letters = sorted([(q, 0) for q in range(4)] + [(chain_part, 1)])
        ku.wait_until(lambda: (chain_part, 1) in spend_letters(), TIMEOUT_S,
                      "the dead letter of the last bad spend line", running=list(insts.values()),
                      interval_s=0.5)
        if spend_letters() != want_letters:
            problems.append("spend dead letters at %s, expected each of %s once" % (
                spend_letters(), want_letters))
        # GET /v1/attribution of any instance answers from the roll-up topic: the same as
        # tally report over the group's records
        records = os.path.join(tmp, "records-b.jsonl")
        consume(kafka, [b["outs"].attribution, b["outs"].credit], records)
        for i, by in ((1, "channel"), (3, "channel"), (3, "campaign")):
            status, body = ku.http_get(ku.http_port(insts[i]), "/v1/attribution?by=%s&window=day"
                                       "&min_purchases=0" % by)
            if status != 200:
                raise AssertionError("GET /v1/attribution?by=%s of instance %d: %d %s" % (
                    by, i, status, body[:200]))
            rows = {(r["id"], r["window_start"]): r for r in json.loads(body)["rows"]}
            if by == "campaign" and not any(k[0] != "(none)" for k in rows):
                problems.append("GET /v1/attribution?by=campaign: no campaign row")
            problems += same_reports(rows, report(records, by, "day"),
                                     "GET /v1/attribution?by=%s of instance %d" % (by, i))
        # one model for the group: exactly the single instance's examples, as good a model
        rows_a, keys_a = model_examples(kafka, a["group"] + "-model")
        rows_b, keys_b = model_examples(kafka, b["group"] + "-model")
        pos_a, pos_b = sum(r[2] for r in rows_a), sum(r[2] for r in rows_b)
        if not rows_a or (len(rows_b), pos_b) != (len(rows_a), pos_a):
            problems.append("model topic: the group learned %d examples (%d purchases), one "
                            "instance %d (%d)" % (len(rows_b), pos_b, len(rows_a), pos_a))
        auc_ma, auc_mb = weighted_auc(rows_a), weighted_auc(rows_b)
        auc_tol = 4 * (auc_se(auc_ma, rows_a) ** 2 + auc_se(auc_mb, rows_b) ** 2) ** 0.5
        if not abs(auc_ma - auc_mb) <= auc_tol:
            problems.append("model topic: the group's progressive AUC %.4f, one instance's %.4f "
                            "(at most %.4f apart)" % (auc_mb, auc_ma, auc_tol))
        # (which processes learned examples depends on the assignment; the restarted one
        # may have learned none)
        if len(keys_b) < 2:
            problems.append("model topic: updates from %d process, more than one expected"
                            % len(keys_b))

        def examples_of(t):
            status, body = ku.http_get(ku.http_port(t), "/metrics")
            m = re.search(r"^tally_model_examples_total (\S+)$", body, re.M) if status == 200 else None
            return float(m.group(1)) if m else -1
        # every instance's model has learned from every example (its own, and the others'
        # through their updates; a re-learned aborted one may count twice)
        counts = ku.wait_until(lambda: (lambda c: c if min(c) >= len(rows_b) else None)(
                                   [examples_of(t) for t in insts.values()]),
                               TIMEOUT_S, "every instance's model counts the group's %d examples"
                               % len(rows_b), running=list(insts.values()), interval_s=0.5)
        for t in insts.values():
            t.stop()
        # as good a model: the single instance's final model and each instance's of the
        # group, each scoring the same held-out stream from its checkpoint
        held = holdout_aucs([os.path.join(tmp, "state-a")] +
                            [os.path.join(tmp, "state-b%d" % i) for i in sorted(insts)])
        if max(abs(x - held[0]) for x in held[1:]) > 0.01:
            problems.append("held-out AUC: one instance's model %.4f, the group's instances' %s "
                            "(more than 0.01 apart)" % (held[0], " ".join("%.4f" % x for x in held[1:])))
        attrs, credits = published(kafka, schemas, b["outs"], problems)
        got_b = latest(kafka, schemas, b["rollup"])
        problems += compare(expected(attrs, credits), got_b)
        problems += groups_add_up(got_b)
        # against one instance: the rule-based and Markov columns, purchases, touchpoints
        want_a = {k: {"purchases": v["purchases"], "touchpoints": v["touchpoints"],
                      "conv": {m["method"]: m["conversions"] for m in v["methods"]},
                      "value": {m["method"]: m["value"] for m in v["methods"]}}
                  for k, v in got_a.items() if k[0] in ("channel", "category", "campaign") and
                  (v["purchases"] or v["methods"])}   # not run 1's rows of spend alone
        problems += compare(want_a, got_b, methods=RULE + ["markov"], what="1 vs 3 instances: ")
        problems += same_deltas([c for c in credits_a if c["method"] == "markov"], credits,
                                "1 vs 3 instances: Markov credit deltas")
        # each instance's progressive AUC (its metrics count the others' examples too)
        aucs = []
        for t in insts.values():
            m = re.search(r"progressive AUC ([0-9.]+)", t.log())
            aucs.append(m.group(1) if m else "?")
        restored = [t.name for t in insts.values()
                    if "restored partition=%d " % chain_part in t.log() and "and the Markov chain" in t.log()]
        if not restored:
            problems.append("no instance read the shared chain back after the SIGKILL")
        return "%d attributions, %d roll-up rows, %d Markov credit deltas; rule-based and " \
               "Markov totals and every credit delta equal to one instance's (the chain's " \
               "owner, instance %d, SIGKILLed; read back by %s); the instances' own models' " \
               "progressive AUC %s (one instance: %s); one model: %d examples (%d purchases) "\
               "from %d processes, AUC over them %.4f (one instance %.4f, at most %.4f apart), "\
               "examples in each instance's model %s; on a held-out stream, the final models' "\
               "AUC %s (one instance %.4f; at most 0.01 apart)" % (
                   len(attrs), len(got_b), len(credits), victim, ", ".join(restored),
                   " ".join(aucs), auc_a[0] if auc_a else "?", len(rows_b), pos_b, len(keys_b),
                   auc_mb, auc_ma, auc_tol, " ".join("%d" % v for v in counts),
                   " ".join("%.4f" % x for x in held[1:]), held[0])

    try:
        steps("one instance: roll-up topic = sums of the published records", one_instance)
        steps("three instances, a rebalance and a SIGKILL of the chain's owner: roll-ups = "
              "sums; rule-based and Markov totals and credit deltas = one instance's",
              three_instances)
    finally:
        ku.stop_all()
        kafka.delete_topics([a["topic"], b["topic"], a["rollup"], b["rollup"]] +
                            [r["group"] + suffix for r in (a, b)
                             for suffix in ("-rollup-partials", "-rollup-state", "-model")] +
                            a["outs"].all() + b["outs"].all() + ["rollup-spend-b-" + run])
        kafka.close()
    passed, failed = steps.counts()
    if failed:
        print("the runs' logs are kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
