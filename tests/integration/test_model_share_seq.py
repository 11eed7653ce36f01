#!/usr/bin/env python3
"""integration.model_share_seq: one conversion model for a group with model.kind=seq (the
default model plus the attention step, docs/attribution.md "The sequence model"), on a real
broker, exactly_once.

Two instances of one group, rollup.topic set (model.shared is true by default), drain an
input of four partitions, produced once both hold their partitions. Checked, from outside
tally:
- every record of the model topic <group>-model is a model update ("TLMS") that carries,
  after its FTRL delta ("TLFD"), the attention step's delta ("TLSD", of the configured
  dim and buckets), and the updates come from both instances;
- every instance's model counts all the examples of the topic (tally_model_examples_total on
  its /metrics), so it has added the other's updates;
- after a clean stop, the attention step's weights in the two instances' model.bin are the
  same (to 1e-9 of their scale): both started from the same weights and each added its own
  changes and the other's, so they differ only in the order of the additions; and they
  are not the weights they started from (each instance's own changes alone would leave them
  apart by what the other learned).
"""
import os
import re
import struct
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_util as ku  # noqa: E402

EVENTS, USERS = 20000, 2000
DIM, BUCKETS = 8, 64
TYPES, AGES = 8, 8   # model/seq.h: TL_SEQ_TYPES, TL_SEQ_AGES
TIMEOUT_S = 240
COMMON = ["processing.guarantee=exactly_once", "kafka.consumer.session.timeout.ms=6000",
          "kafka.consumer.heartbeat.interval.ms=1000", "http.listen=127.0.0.1:0",
          "model.kind=seq", "model.seq.dim=%d" % DIM, "model.seq.buckets=%d" % BUCKETS]


def n_weights():
    """The attention step's number of weights (model/seq.c: embedding rows, then Wq, Wk, u,
    g, b and the sink)."""
    return (TYPES + AGES + 2 * BUCKETS) * DIM + 2 * DIM * DIM + 2 * DIM + 2


def seq_weights(path):
    """The attention step's weights in a model.bin: its "TLSQ" state (format 1, dim,
    buckets, version, then the weights and AdaGrad's sums)."""
    with open(path, "rb") as fh:
        data = fh.read()
    at = data.find(b"TLSQ")
    if at < 0 or struct.unpack_from("<I", data, at + 4)[0] != 1:
        raise AssertionError("%s: no sequence model's state" % path)
    dim, buckets = struct.unpack_from("<II", data, at + 8)
    if (dim, buckets) != (DIM, BUCKETS):
        raise AssertionError("%s: a sequence model of dim %d, %d buckets" % (path, dim, buckets))
    n = n_weights()
    return struct.unpack_from("<%dd" % n, data, at + 24)


def updates(kafka, topic, problems):
    """The (examples, key) of every model update on topic; each must carry both deltas."""
    out = []
    for _p, _o, key, value, _h in kafka.read_all(topic):
        if value[:4] != b"TLMS":
            problems.append("model topic: a record that is not a model update")
            continue
        n = struct.unpack_from("<I", value, 8)[0]
        f = 12 + 17 * n
        if value[f:f + 4] != b"TLFD":
            problems.append("model topic: an update without its FTRL delta")
            continue
        k = struct.unpack_from("<I", value, f + 20)[0]
        s = f + 24 + 20 * k
        if value[s:s + 4] != b"TLSD" or struct.unpack_from("<II", value, s + 8) != (DIM, BUCKETS):
            problems.append("model topic: an update without the attention step's delta "
                            "(%r after the FTRL delta)" % value[s:s + 4])
            continue
        out.append((n, key))
    return out


def main():
    if not os.path.exists(ku.TALLY_BIN):
        print("SKIP: %s is not built" % ku.TALLY_BIN)
        return ku.SKIP
    kafka = ku.Kafka(ku.bootstrap())
    tmp = tempfile.mkdtemp(prefix="tally-seqshare-")
    steps = ku.Steps(catch_all=True)
    run = uuid.uuid4().hex[:8]
    topic, group = "seqshare-in-" + run, "seqshare-" + run
    outs = ku.OutputTopics("seqshare-" + run)
    csv = os.path.join(tmp, "events.csv")
    insts = {}

    def assigned(t):
        status, body = ku.http_get(ku.http_port(t), "/metrics")
        m = re.search(r"^tally_assigned_partitions (\S+)$", body, re.M) if status == 200 else None
        return float(m.group(1)) if m else -1

    def two_instances(problems):
        ku.gen_events(csv, EVENTS, USERS, 3)
        kafka.create_topics({topic: 4})
        outs.create(kafka)
        for i in (1, 2):
            x = ["rollup.topic=seqshare-rollup-" + run] + COMMON
            insts[i] = ku.Tally(ku.run_args(topic, group, os.path.join(tmp, "state-%d" % i),
                                            *[a for kv in x for a in ("-X", kv)], outs=outs,
                                            b=kafka.b, until_end=False),
                                os.path.join(tmp, "tally-%d.log" % i), "tally-%d" % i)
        running = list(insts.values())
        # the input only once the group holds its four partitions between the two: a
        # rebalance in the middle of a transaction aborts it, and the instance that aborted
        # keeps what its model learned there while the model topic carries those examples
        # once, from whoever processes them again (docs/attribution.md, "One model across
        # instances"); the models would then differ by that
        ku.wait_until(lambda: min(assigned(t) for t in running) >= 1 and
                      sum(assigned(t) for t in running) == 4, TIMEOUT_S,
                      "the group's four partitions held by the two instances", running=running,
                      interval_s=0.2)
        ku.produce_file(csv, topic, kafka.b)
        ku.wait_until(lambda: sum(kafka.end_offsets(topic).values()) ==
                      kafka.committed_sum(group, topic), TIMEOUT_S, "the input committed",
                      running=running, interval_s=0.2)
        ups = updates(kafka, group + "-model", problems)
        total = sum(n for n, _ in ups)
        if len({k for _, k in ups}) < 2:
            problems.append("model topic: updates from %d instance, two expected"
                            % len({k for _, k in ups}))

        def examples_of(t):
            status, body = ku.http_get(ku.http_port(t), "/metrics")
            m = re.search(r"^tally_model_examples_total (\S+)$", body, re.M) if status == 200 else None
            return float(m.group(1)) if m else -1
        ku.wait_until(lambda: min(examples_of(t) for t in running) >= total > 0, TIMEOUT_S,
                      "every instance's model counts the group's %d examples" % total,
                      running=running, interval_s=0.5)
        for t in running:
            t.stop()
        w = [seq_weights(os.path.join(tmp, "state-%d" % i, "model.bin")) for i in (1, 2)]
        scale = max(abs(x) for x in w[0])
        diff = max(abs(a - b) for a, b in zip(*w))
        if not diff <= 1e-9 * scale:
            problems.append("the attention step's weights of the two instances differ by %.3g "
                            "(largest weight %.3g)" % (diff, scale))
        # not the initial weights: a model of no example (one event's replay learns none)
        fresh = os.path.join(tmp, "fresh")
        os.makedirs(fresh)
        one = os.path.join(tmp, "one.csv")
        with open(csv) as fh:
            head = [fh.readline(), fh.readline()]
        with open(one, "w") as fh:
            fh.writelines(head)
        ku.run_tally(["replay", "--input", one, "--format", "canonical", "--output",
                      os.path.join(fresh, "out.jsonl"), "-X", "state.dir=" + fresh] +
                     [a for kv in COMMON[4:] for a in ("-X", kv)], 120,
                     os.path.join(tmp, "fresh.log"), "replay of one event")
        w0 = seq_weights(os.path.join(fresh, "model.bin"))
        moved = max(abs(a - b) for a, b in zip(w[0], w0))
        if not moved > 1e-6:
            problems.append("the attention step's weights are where they started (%.3g)" % moved)
        return "%d updates from 2 instances, %d examples; weights %.2g apart, %.3g from the start" \
            % (len(ups), total, diff, moved)

    try:
        steps("two instances, model.kind=seq: one model for the group, the attention step's "
              "weights the same in both", two_instances)
    finally:
        ku.stop_all()
        kafka.delete_topics([topic, "seqshare-rollup-" + run] +
                            [group + s for s in ("-rollup-partials", "-rollup-state", "-model")] +
                            outs.all())
        kafka.close()
    return steps.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
