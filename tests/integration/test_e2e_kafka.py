#!/usr/bin/env python3
"""End to end through a real Kafka broker: produce, run, read the output topics back.

1. Creates fresh topics (a random suffix per run): the input topic (4 partitions), the
   interest and attribution topics and the dead-letter topic.
2. `tally produce` writes the Taobao journeys file (../shared/data/taobao/...) to the input
   topic; the Python client adds five bad records: not framed, unknown schema id, a truncated
   Avro body, an empty user_id and a timestamp in the year 2500.
3. `tally run --until-end` consumes everything and exits by itself (deadline: a few minutes).
4. The output topics are read back (read_committed, from the beginning to every partition's
   end offset), their Confluent framing checked and stripped (schema id 2 = interest_delta,
   6 = attribution), the Avro decoded with fastavro, and the records compared with
   reference.py on the same file (1e-9) and with `tally replay` on it (identical records,
   identical sentences). Message keys must be the user_id. `tally report` of the attribution
   and credit-delta topics read back with `tally consume` equals its report of the replay
   (hourly rows per category, the rule-based methods).
   The intent topic's records (schema id 12) chain per user: previous is the p of the
   user's record before (0 for its first), each moved by intent.threshold.
5. The dead-letter topic must hold exactly the five bad records, original key and bytes, with
   headers tally.reason, tally.error, tally.source.topic, tally.source.partition and
   tally.source.offset.
6. The consumer group's committed offsets must be the input topic's end offsets.
7. Every record tally produced (the input by `tally produce`, the interest deltas and
   attributions) is in the partition Java's producer would choose for its key
   (kafka_util.java_partition: murmur2, checked against kafka-clients' Utils.murmur2).
8. `run --until-end` over a topic of 3 records that are all dead letters exits 1 and says
   so (dlq.max.share); with dlq.max.share=1 it exits 0.
9. An input topic that does not exist: `run` exits 1 naming it, with exactly_once and with
   at_least_once, and the check does not create it.

Environment: TALLY_TEST_BOOTSTRAP (host:port) or TALLY_TEST_BOOTSTRAP_FILE (a file holding
it), TALLY_BIN, TALLY_SOURCE_DIR. Exit status 0 passed, 1 failed, 77 skipped (no broker
configured, or the real data is absent).
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import reference as ref  # noqa: E402
from kafka_util import (RUN, SHARED_DATA, TALLY_BIN, Kafka, OutputTopics, Steps,  # noqa: E402
                        Tally, avro_encode, decode_outputs, frame, java_partition,
                        load_schemas, preflight, replay_file, run_args, run_tally, wait_until)
from kafka_util import ATTRIBUTION_ID, CREDIT_ID, INTENT_ID  # noqa: E402

DATA = os.path.join(SHARED_DATA, "taobao", "user_behavior_journeys.csv")
RULE_METHODS = ("last_touch", "first_touch", "linear", "time_decay", "position_based")
TOL = 1e-9
PRODUCE_TIMEOUT_S = 180
RUN_TIMEOUT_S = 300
READ_TIMEOUT_S = 120
OFFSETS_TIMEOUT_S = 60
IN_PARTITIONS = 4
OUT_PARTITIONS = 4
YEAR_2500_MS = 16_725_225_600_000

def bad_records(schemas):
    """[(reason, key, value)] for the dead-letter topic."""
    s1 = schemas[1]
    good = {"event_id": "bad-0", "user_id": "bad-user", "item_id": "bad-item",
            "category_id": "bad-cat", "type": "BROWSE", "ts": 1_511_848_894_000,
            "channel": None, "dwell_ms": None, "value": None, "propensity": None}
    body = avro_encode(s1, good)
    return [
        ("not_framed", b"bad-1", b"pv,1511848894: a CSV line, not a framed Avro record"),
        ("unknown_schema", b"bad-2", frame(9999, avro_encode(s1, dict(good, event_id="bad-2")))),
        ("malformed", b"bad-3", frame(1, body[: len(body) // 2])),
        ("missing_field", b"bad-4", frame(1, avro_encode(s1, dict(good, event_id="bad-4",
                                                                  user_id="")))),
        ("bad_timestamp", b"bad-5", frame(1, avro_encode(s1, dict(good, event_id="bad-5",
                                                                  ts=YEAR_2500_MS)))),
    ]


# ---------------------------------------------------------------------------- checks

def check_dlq(rows, sent, in_topic, problems):
    """sent: [(reason, key, value, partition, offset)]"""
    by_value = {}
    for row in rows:
        by_value.setdefault(row[3], []).append(row)
    if len(rows) != len(sent):
        problems.append("dead-letter topic holds %d records, expected %d" % (len(rows), len(sent)))
    sent_values = {v for _, _, v, _, _ in sent}
    for p, off, key, value, headers in rows:
        if value not in sent_values:
            problems.append("dead-letter record %d@%d is none of the bad records sent: %r" % (
                p, off, (value or b"")[:40]))
    for reason, key, value, part, off in sent:
        got = by_value.get(value, [])
        if len(got) != 1:
            problems.append("bad record %s (%s@%d of %s) is %d times in the dead-letter topic, "
                            "expected once" % (key.decode(), reason, off, in_topic, len(got)))
            continue
        _, _, dkey, _, h = got[0]
        what = "dead-letter record for %s (%s)" % (key.decode(), reason)
        if dkey != key:
            problems.append("%s: key %r, expected the original %r" % (what, dkey, key))

        def header(name):
            v = h.get(name)
            return None if v is None else v.decode("utf-8", "replace")

        want = {"tally.reason": reason, "tally.source.topic": in_topic,
                "tally.source.partition": str(part), "tally.source.offset": str(off)}
        for name, exp in want.items():
            if header(name) != exp:
                problems.append("%s: header %s = %r, expected %r" % (what, name, header(name), exp))
        err = header("tally.error")
        if not err or not err.strip():
            problems.append("%s: header tally.error missing or empty" % what)


def main():
    b, rc = preflight(data=(DATA,))
    if rc is not None:
        return rc

    tmp = tempfile.mkdtemp(prefix="tally-e2e-")
    state_dir = os.path.join(tmp, "state")
    os.makedirs(state_dir)
    group = "tally-e2e-" + RUN
    t_in = group + "-events"
    outs = OutputTopics(group)
    t_oi, t_oa, t_dlq, t_oc = outs.interest, outs.attribution, outs.dlq, outs.credit
    kafka = Kafka(b)
    schemas = load_schemas()
    step = Steps()


    print("broker %s, topics prefix %s, files in %s" % (b, group, tmp))

    def create(pr):
        kafka.create_topics({t_in: IN_PARTITIONS})
        outs.create(kafka, OUT_PARTITIONS)

    ok = step("create topics", create)

    sent = []

    def produce(pr):
        # A schema id that is not one is refused before anything is sent.
        for bad in ("x", "-1", "2147483648"):
            r = subprocess.run([TALLY_BIN, "produce", "--input", DATA, "--format", "taobao",
                                "--topic", t_in, "--schema-id", bad, "-X",
                                "kafka.bootstrap.servers=" + b], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 2 or "--schema-id" not in r.stderr:
                pr.append("--schema-id %s: exit %d, %r" % (bad, r.returncode, r.stderr[-300:]))
        secs = run_tally(["produce", "--input", DATA, "--format", "taobao", "--topic", t_in,
                          "-X", "kafka.bootstrap.servers=" + b],
                         PRODUCE_TIMEOUT_S, os.path.join(tmp, "produce.log"))
        bads = bad_records(schemas)
        where = kafka.produce(t_in, [(k, v) for _, k, v in bads])
        for (reason, k, v), (p, off) in zip(bads, where):
            sent.append((reason, k, v, p, off))
        ends = kafka.end_offsets(t_in)   # a fresh topic: offsets start at 0
        total = sum(ends.values())
        with open(DATA) as fh:
            n_rows = sum(1 for line in fh if line.strip())
        if total != n_rows + len(bads):
            pr.append("input topic holds %d records, expected %d rows + %d bad records" % (
                total, n_rows, len(bads)))
        return "tally produce %.1f s; %d records on %d partitions" % (secs, total, len(ends))

    ok = ok and step("produce", produce)

    def run(pr):
        # The purchase intent is on, and the journeys span nine days: with a one-day intent
        # window and a warm-up of 10 outcomes of each kind, it is published (with a week's
        # window, too few of its moments are decided within the data).
        secs = run_tally(run_args(t_in, group, state_dir, "-X", "intent.enabled=true",
                                  "-X", "intent.window.ms=86400000",
                                  "-X", "model.warmup.examples=10", outs=outs, b=b),
                         RUN_TIMEOUT_S, os.path.join(tmp, "run.log"))
        return "tally run --until-end exited 0 after %.1f s" % secs

    ok = ok and step("run --until-end", run)

    kafka_records = []

    def outputs(pr):
        rows_i = kafka.read_all(t_oi, READ_TIMEOUT_S)
        rows_a = kafka.read_all(t_oa, READ_TIMEOUT_S)
        kafka_records.extend(decode_outputs(rows_i, 2, schemas[2], t_oi, pr))
        kafka_records.extend(decode_outputs(rows_a, ATTRIBUTION_ID, schemas[ATTRIBUTION_ID], t_oa, pr))
        expected = ref.run_file(DATA, "taobao")
        ref.write_jsonl(expected, os.path.join(tmp, "reference.jsonl"))
        ref.write_jsonl(kafka_records, os.path.join(tmp, "kafka.jsonl"))
        pr.extend(cmp.compare(expected, kafka_records, TOL, rule_only=True))
        return "%s read back, equal to the reference" % cmp.summary(kafka_records)

    if ok:
        step("outputs = reference", outputs)

    def partitions(pr):
        """Every record tally produced is where Java's producer puts its key (murmur2), so
        Kafka Streams or ksqlDB joins on user_id find it."""
        n = 0
        for topic, produced_by_tally in ((t_in, True), (t_oi, True), (t_oa, True)):
            parts = len(kafka.partitions(topic))
            for p, off, key, value, _ in kafka.read_all(topic, READ_TIMEOUT_S):
                if key is None or (topic == t_in and key.startswith(b"bad-")):
                    continue   # the test's own bad records
                n += 1
                want = java_partition(key, parts)
                if p != want and len(pr) < 10:
                    pr.append("%s@%d: key %r in partition %d, Java's producer uses %d" % (
                        topic, off, key, p, want))
        return "%d records (input by tally produce, interest deltas, attributions), each in " \
               "murmur2(key) %% partitions; u804 -> %d of 4" % (n, java_partition(b"u804", 4))

    if ok:
        step("partitions as Java's producer", partitions)

    def model_fields(pr):
        n = 0
        for r in kafka_records:
            if "conversion_event_id" not in r:
                continue
            n += 1
            k = r["conversion_event_id"]
            for m in cmp.MODEL_METHODS:
                c = r["credits"].get(m)
                if not isinstance(c, list) or len(c) != len(r["touchpoints"]):
                    pr.append("attribution %s: %s credits missing or of the wrong length" % (k, m))
                elif abs(sum(c) - 1.0) > 1e-9:
                    pr.append("attribution %s: %s credits sum to %r" % (k, m, sum(c)))
            for f in ("p_conversion", "p_baseline"):
                if not isinstance(r.get(f), float) or not 0.0 < r[f] < 1.0:
                    pr.append("attribution %s: %s = %r" % (k, f, r.get(f)))
            if not isinstance(r.get("model_version"), int) or r["model_version"] < 0:
                pr.append("attribution %s: model_version %r" % (k, r.get("model_version")))
            if cmp.MODEL_SENTENCE not in r["explanation"]:
                pr.append("attribution %s: the explanation says nothing of the model" % k)
            if len(pr) > 10:
                break
        return "%d attributions carry shapley and removal credits summing to 1 and p in (0, 1)" % n

    if ok and kafka_records:
        step("model fields", model_fields)

    def credit_deltas(pr):
        import io
        import fastavro
        recs = []
        for p, off, key, value, _ in kafka.read_all(t_oc, READ_TIMEOUT_S):
            if value is None or value[:1] != b"\x00" or \
                    int.from_bytes(value[1:5], "big") != CREDIT_ID:
                pr.append("%s[%d]@%d: not a framed credit_delta" % (t_oc, p, off))
                continue
            rec = fastavro.schemaless_reader(io.BytesIO(value[5:]), schemas[CREDIT_ID],
                                             None)
            if key is None or key.decode() != "%s:%s" % (rec["dim"], rec["dim_id"]):
                pr.append("%s@%d: key %r is not dim:dim_id" % (t_oc, off, key))
            recs.append(rec)
        if not recs:
            pr.append("no credit_delta records on %s" % t_oc)
        # Each dimension's deltas chain: credit_before is the credit of its previous delta.
        last = {}
        for r in sorted(recs, key=lambda r: r["window_start"]):
            k = (r["dim"], r["dim_id"])
            if r["method"] != "markov" or r["window_end"] - r["window_start"] != 3600000:
                pr.append("credit_delta %s: method %r window %r..%r" % (k, r["method"], r["window_start"], r["window_end"]))
            if abs(r["credit_before"] - last.get(k, 0.0)) > 1e-9:
                pr.append("credit_delta %s at %d: credit_before %r, previous credit %r" % (
                    k, r["window_start"], r["credit_before"], last.get(k, 0.0)))
            if r["removal_effect"] is None or not -1e-12 <= r["removal_effect"] <= 1 + 1e-12:
                pr.append("credit_delta %s: removal_effect %r" % (k, r["removal_effect"]))
            last[k] = r["credit"]
            if len(pr) > 10:
                break
        return "%d Markov credit deltas over %d %s values, each chained to the one before" % (
            len(recs), len(last), recs[0]["dim"] if recs else "?")

    if ok:
        step("credit deltas", credit_deltas)

    def intent_deltas(pr):
        """Each user's intent records chain (previous = the p of its record before, 0 for its
        first: a user's records are in one partition, in order), each moved by
        intent.threshold's default (0.05), p in (0, 1), keyed by user_id, its sentence saying
        both numbers."""
        rows = kafka.read_all(outs.intent, READ_TIMEOUT_S)
        recs = decode_outputs(rows, INTENT_ID, schemas[INTENT_ID], outs.intent, pr)
        if not recs:
            pr.append("no intent_delta records on %s" % outs.intent)
        last = {}
        for r in recs:
            u = r["user_id"]
            if abs(r["previous"] - last.get(u, 0.0)) > 1e-12:
                pr.append("intent of %s at %d: previous %r, last published %r" % (
                    u, r["ts"], r["previous"], last.get(u, 0.0)))
            if not 0 < r["p"] < 1 or abs(r["p"] - r["previous"]) < 0.05 - 1e-12:
                pr.append("intent of %s at %d: p %r from %r" % (u, r["ts"], r["p"], r["previous"]))
            want = "from %.3f to %.3f" % (r["previous"], r["p"])
            if want not in r["explanation"]:
                pr.append("intent of %s: %r does not say %r" % (u, r["explanation"], want))
            last[u] = r["p"]
            if len(pr) > 10:
                break
        return "%d intent deltas of %d users, each chained to the one before" % (len(recs), len(last))

    if ok:
        step("intent deltas", intent_deltas)

    def replay(pr):
        out = os.path.join(tmp, "replay.jsonl")
        replay_file(DATA, out, os.path.join(tmp, "replay.log"), "taobao", RUN_TIMEOUT_S)
        # The model learns from the partitions' examples in arrival order, so its numbers
        # depend on that order: replay (one partition) and Kafka (4) agree on the rest.
        pr.extend(cmp.compare(cmp.read_jsonl(out), kafka_records, TOL, exact_explanation=True,
                              ignore_types=("credit_delta",), rule_only=True))
        return "record for record, explanations included (without the model's part)"

    if ok and kafka_records:
        step("outputs = replay", replay)

    def report(pr):
        """`tally report` of the topics, read back with `tally consume`, equals its report of
        the replay's output (the rule-based methods: the model's depend on arrival order)."""
        consumed = os.path.join(tmp, "consumed.jsonl")
        with open(consumed, "w") as fh:
            for topic in (t_oa, t_oc):
                subprocess.run([TALLY_BIN, "consume", "--topic", topic, "--until-end",
                                "-X", "kafka.bootstrap.servers=" + b], stdout=fh,
                               stderr=subprocess.DEVNULL, timeout=READ_TIMEOUT_S, check=True)
        answers = []
        for path in (consumed, os.path.join(tmp, "replay.jsonl")):
            r = subprocess.run([TALLY_BIN, "report", "--input", path, "--format", "json",
                                "--by", "category", "--window", "hour",
                                "--methods", ",".join(RULE_METHODS)],
                               capture_output=True, text=True, timeout=120, check=True)
            answers.append(json.loads(r.stdout))
        got, want = ({(x["id"], x["window_start"]): x for x in a["rows"]} for a in answers)
        if set(got) != set(want):
            pr.append("report rows %d from the topics, %d from the replay" % (len(got), len(want)))
        for k in set(got) & set(want):
            g, w = got[k], want[k]
            if (g["purchases"], g["touchpoints"]) != (w["purchases"], w["touchpoints"]) or any(
                    abs(g[f][m] - w[f][m]) > TOL for f in ("conversions", "value")
                    for m in RULE_METHODS):
                pr.append("report row %s: %r from the topics, %r from the replay" % (k, g, w))
            if len(pr) > 5:
                break
        return "%d hourly rows per category from the topics equal the replay's" % len(got)

    if ok and kafka_records:
        step("report of the topics = report of the replay", report)

    def dlq(pr):
        check_dlq(kafka.read_all(t_dlq, READ_TIMEOUT_S), sent, t_in, pr)
        return "%d bad records, original bytes and headers" % len(sent)

    if ok:
        step("dead-letter topic", dlq)

    def offsets(pr):
        ends = kafka.end_offsets(t_in)
        got = {}

        def at_end():
            # The last transaction's offsets are visible once its commit marker reached
            # __consumer_offsets, which the broker writes after tally's commit returned
            # (and tally exited): poll until they are there.
            got.clear()
            got.update(kafka.committed(group, t_in))
            return all(got.get(p) == hi for p, hi in ends.items())
        try:
            wait_until(at_end, OFFSETS_TIMEOUT_S, "group %s's committed offsets at the end "
                       "of %s" % (group, t_in))
        except AssertionError as e:
            pr.append(str(e))
        for p, hi in sorted(ends.items()):
            if got.get(p) != hi:
                pr.append("group %s: committed offset of partition %d is %s, end offset %d" % (
                    group, p, got.get(p), hi))
        return "at the end of every input partition"

    if ok:
        step("committed offsets", offsets)

    def mostly_bad(pr):
        """run --until-end over a topic whose records are mostly dead letters exits 1 and
        says so (dlq.max.share, 0.5 by default), after committing them; with the share
        raised to 1 the same input is a success."""
        topic = "tally-e2e-bad-%s" % RUN
        kafka.create_topics({topic: 1})
        kafka.produce(topic, [(b"k%d" % i, b"not an event %d" % i) for i in range(3)])
        out = []
        for name, extra, want in (("default", [], 1), ("dlq.max.share=1", ["-X", "dlq.max.share=1"], 0)):
            g = "tally-e2e-bad-%s-%d" % (RUN, want)
            t = Tally(run_args(topic, g, os.path.join(tmp, "bad-state-%d" % want), *extra,
                               outs=outs, b=b),
                      os.path.join(tmp, "bad-%d.log" % want), "tally run (" + name + ")")
            rc = t.wait(RUN_TIMEOUT_S)
            if rc != want:
                pr.append("%s: exit %s, expected %d:\n%s" % (name, rc, want, t.log()[-1500:]))
            elif want and "3 of the 3 records consumed (100%) went to the dead-letter topic" not in t.log():
                pr.append("%s: no line on the dead letters:\n%s" % (name, t.log()[-1500:]))
            out.append("%s: exit %s" % (name, rc))
        kafka.delete_topics([topic])
        return "3 records, all dead letters: " + ", ".join(out)

    if ok:
        step("a run of dead letters fails", mostly_bad)

    def missing_input(pr):
        """An input topic that does not exist stops the start with one line, under both
        guarantees (exactly_once used to say so; at_least_once waited for it forever)."""
        absent = "tally-e2e-absent-%s" % RUN
        said = []
        for guarantee in ("exactly_once", "at_least_once"):
            t = Tally(run_args(absent, "absent-" + RUN, os.path.join(tmp, "absent-" + guarantee),
                               "-X", "processing.guarantee=" + guarantee,
                               "-X", "dlq.topic=" + t_dlq, b=b),
                      os.path.join(tmp, "absent-%s.log" % guarantee), "tally run (" + guarantee + ")")
            rc = t.wait(60)
            if rc != 1 or absent not in t.log() or "create it first" not in t.log():
                pr.append("%s: exit %s:\n%s" % (guarantee, rc, t.log()[-1500:]))
            said.append("%s exit %s" % (guarantee, rc))
        if absent in kafka.topics():
            pr.append("the check created %s" % absent)
        return ", ".join(said) + ", naming the topic; not created"

    if ok:
        step("an absent input topic stops the start", missing_input)

    if step.counts()[1] == 0:
        kafka.delete_topics([t_in] + outs.all())
    return step.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
