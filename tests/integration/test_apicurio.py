#!/usr/bin/env python3
"""integration.apicurio: tally with a real schema registry, as a platform team runs it.

A real Apicurio Registry 2.4.2 (scripts/schema-registry.sh: built from Maven Central, its
Confluent-compatible API) and the real broker. Producers and consumers are confluent-kafka's
own AvroSerializer / AvroDeserializer with a SchemaRegistryClient: what a Python or Java
service would use.

1. The registry starts on 127.0.0.1; another subject is registered first, so ids are not
   the installed files' ids.
2. 1,500 generated events are produced with AvroSerializer (subject <input>-value, schema
   schemas/1-behavior_event.avsc, registered by the serializer); then the input schema
   evolves: v2 adds an optional field (`campaign`, default null), registered by the
   serializer as a new version with a new id, and 1,500 more events are produced with it.
3. `tally run --until-end` with schema.registry.url: exit 0, no dead letter.
4. Every output record decodes with AvroDeserializer (the writer schema fetched by the id in
   its frame); the subjects <topic>-value of tally's outputs exist in the registry; the
   interest deltas and attributions equal `tally replay` of the same events (rule-based
   fields, record for record; the v2 events' campaign in the touchpoints, as tally's reader
   schema, schemas/10-behavior_event.avsc, reads it).
5. schema.registry.subject.name.strategy: `tally produce` with record registers
   tally.BehaviorEvent, `tally run` with topic_record registers <topic>-tally.InterestDelta
   and so on; no dead letter.

Environment: TALLY_TEST_BOOTSTRAP (or _FILE), TALLY_BIN, TALLY_SOURCE_DIR. Exit 0 passed, 1
failed, 77 skipped (no broker).
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import fixtures  # noqa: E402
import kafka_util as ku  # noqa: E402

SOURCE = os.environ.get("TALLY_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
REGISTRY_SH = os.path.join(SOURCE, "scripts", "schema-registry.sh")
EVENTS = 3000
TOL = 1e-9


def main():
    b, rc = ku.preflight()
    if rc is not None:
        return rc
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    tmp = tempfile.mkdtemp(prefix="tally-apicurio-")
    rdir = os.path.join(tmp, "registry")
    step = ku.Steps(catch_all=True)
    kafka = ku.Kafka(b)
    run = ku.RUN
    t_in = "apicurio-in-" + run
    out = ku.OutputTopics("apicurio-" + run)
    st = {}

    def start(pr):
        r = subprocess.run([REGISTRY_SH, "start", rdir], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError("schema-registry.sh start: %s" % (r.stdout + r.stderr)[-2000:])
        st["url"] = ku.read_value(os.path.join(rdir, "url"))
        st["client"] = SchemaRegistryClient({"url": st["url"]})
        other = st["client"].register_schema("other-" + run + "-value", Schema(
            '{"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]}', "AVRO"))
        said = (r.stdout + r.stderr).strip().splitlines()
        return "%s; another subject registered first (id %d)" % (said[-1] if said else st["url"], other)

    ok = step("Apicurio Registry up", start)

    def produce(pr):
        kafka.create_topics({t_in: 2})
        out.create(kafka, partitions=2)
        events = os.path.join(tmp, "events.csv")
        ku.gen_events(events, EVENTS, 300, 3)
        evs = fixtures.csv_events(events)
        # what tally should read: the v2 events' campaign, which its reader schema knows
        st["events"] = os.path.join(tmp, "events_campaign.csv")
        with open(events) as fh, open(st["events"], "w") as out_fh:
            lines = fh.read().splitlines()
            out_fh.write(lines[0] + ",campaign\n")
            for i, line in enumerate(lines[1:]):
                out_fh.write(line + (",spring" if i >= EVENTS // 2 else ",") + "\n")
        with open(os.path.join(SOURCE, "schemas", "1-behavior_event.avsc")) as fh:
            v1 = fh.read()
        v2j = json.loads(v1)
        v2j["fields"].append({"name": "campaign", "type": ["null", "string"], "default": None})
        v2 = json.dumps(v2j)
        p = Producer({"bootstrap.servers": b, "partitioner": "murmur2_random"})
        ids = []
        for schema, part in ((v1, evs[:EVENTS // 2]), (v2, evs[EVENTS // 2:])):
            ser = AvroSerializer(st["client"], schema)
            for e in part:
                rec = dict(e, campaign="spring") if schema is v2 else e
                value = ser(rec, SerializationContext(t_in, MessageField.VALUE))
                ids.append(int.from_bytes(value[1:5], "big"))
                p.produce(t_in, key=e["user_id"].encode(), value=value)
                p.poll(0)
        if p.flush(60):
            pr.append("not every event was delivered")
        st["input_ids"] = sorted(set(ids))
        if len(st["input_ids"]) != 2:
            pr.append("the two schema versions got ids %s" % st["input_ids"])
        return "%d events, AvroSerializer: v1 id %d, v2 (campaign added) id %d" % (
            len(evs), st["input_ids"][0], st["input_ids"][-1])

    ok = ok and step("produce with AvroSerializer, v1 then v2", produce)

    def run_tally(pr):
        secs = ku.run_tally(ku.run_args(t_in, "apicurio-" + run, os.path.join(tmp, "state"),
                                        "-X", "schema.registry.url=" + st["url"], outs=out, b=b),
                            300, os.path.join(tmp, "run.log"))
        dead = kafka.read_all(out.dlq)
        if dead:
            pr.append("%d dead letters, e.g. %s" % (len(dead), dead[0][4]))
        return "tally run --until-end: %.1f s, no dead letter" % secs

    ok = ok and step("tally run with the registry", run_tally)

    def outputs(pr):
        de = AvroDeserializer(st["client"])
        got, ids = [], set()
        for topic, kind in ((out.interest, "interest_delta"), (out.attribution, "attribution")):
            for _, _, key, value, _ in kafka.read_all(topic):
                ids.add((topic, int.from_bytes(value[1:5], "big")))
                rec = de(value, SerializationContext(topic, MessageField.VALUE))
                rec["type"] = kind
                for tp in rec.get("touchpoints", []):
                    tp["ts"] = int(tp["ts"].timestamp() * 1000) if hasattr(tp["ts"], "timestamp") else tp["ts"]
                if hasattr(rec.get("ts"), "timestamp"):
                    rec["ts"] = int(round(rec["ts"].timestamp() * 1000))
                got.append(rec)
        subjects = set(st["client"].get_subjects())
        for topic in (out.interest, out.attribution, out.credit):
            if topic + "-value" not in subjects:
                pr.append("no subject %s-value in the registry" % topic)
        replay = os.path.join(tmp, "replay.jsonl")
        ku.replay_file(st["events"], replay, os.path.join(tmp, "replay.log"))
        pr.extend(cmp.compare(cmp.read_jsonl(replay), got, TOL, ignore_types=("credit_delta",),
                              rule_only=True))
        return "%s decoded with AvroDeserializer (frame ids %s), equal to tally replay" % (
            cmp.summary(got), sorted(i for _, i in ids))

    if ok:
        step("outputs decode with AvroDeserializer", outputs)

    def strategies(pr):
        """schema.registry.subject.name.strategy: tally produce with record (the subject is
        the record's full name), tally run with topic_record (<topic>-<full name>)."""
        t2 = "apicurio-strat-" + run
        out2 = ku.OutputTopics("apicurio-strat-" + run)
        kafka.create_topics({t2: 1})
        out2.create(kafka, partitions=1)
        reg = ["-X", "schema.registry.url=" + st["url"], "-X", "kafka.bootstrap.servers=" + b]
        ku.run_tally(["produce", "--input", st["events"], "--format", "canonical", "--topic", t2,
                      "-X", "schema.registry.subject.name.strategy=record"] + reg, 300,
                     os.path.join(tmp, "strat-produce.log"))
        ku.run_tally(ku.run_args(t2, "s-" + run, os.path.join(tmp, "state-strat"),
                                 "-X", "schema.registry.subject.name.strategy=topic_record",
                                 *reg, outs=out2),
                     300, os.path.join(tmp, "strat-run.log"))
        subjects = set(st["client"].get_subjects())
        want = {"tally.BehaviorEvent", out2.interest + "-tally.InterestDelta",
                out2.attribution + "-tally.Attribution", out2.credit + "-tally.CreditDelta"}
        if want - subjects:
            pr.append("subjects missing: %s (have %s)" % (sorted(want - subjects), sorted(subjects)))
        if kafka.read_all(out2.dlq):
            pr.append("dead letters with the record strategy")
        return "subjects %s" % ", ".join(sorted(want & subjects))

    if ok:
        step("subject name strategies", strategies)

    subprocess.run([REGISTRY_SH, "stop", rdir], capture_output=True, timeout=120)
    ku.stop_all()
    return step.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
