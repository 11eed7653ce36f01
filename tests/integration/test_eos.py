#!/usr/bin/env python3
"""integration.eos: exactly-once processing, recovery and scale-out on a real broker.

Every run of `tally run` here uses processing.guarantee=exactly_once, a stable instance.id,
model.enabled=false and markov.enabled=false (the online model is per process and not
transactional; the crash test turns the Markov chain on, shared through rollup.topic),
and the rule parameters RULE_CONFIG. Outputs are always
read with a read_committed consumer.

The oracle is independent of tally: the expected outputs are computed by reference.py
(written from docs/interests.md and docs/attribution.md) from the canonical CSV files that
were produced to the input topic, in the order they were produced, with
reference.make_params(RULE_CONFIG): the same parameters the runs get with -X. Every test
compares its outputs with them field by field (compare(..., rule_only=True): interest
deltas, and attributions with their touchpoints and rule-based credits; the explanation
only has to be a sentence); compare() reports records missing, records doubled (a key
twice) and records that differ. On a mismatch both sides are written beside the logs
(expected.jsonl, actual.jsonl).

Order. tally processes each input partition in offset order, the partitions interleaved
in whatever order the consumer hands them out; reference.py processes events one after
another. The two agree because of where the state lives: interest weights and journeys
are per user (in the store of the user's partition), and an event's interest deltas and
attribution depend only on that user's earlier events, in the order processed, and on
the parameters; the input's key is the user_id, so a user's events are all in one
partition, in the order produced. Neither the interleaving of partitions nor that of
different users within a partition changes any rule-based output. What tally keeps per
partition besides users, the stream time (the largest event time seen) and the expiry
timers it fires, labels idle journeys as negative examples for the model and closes
Markov windows, and an expiry never changes a journey; with the model and Markov off it
produces nothing. So that this rests on facts rather than on the producer's behaviour,
the input topic is read back (kafka_util, read_committed, decoded here) before the
reference is computed: each event of the files must be on it exactly once, keyed by its
user_id, every user's events in one partition at increasing offsets in file order. The
reference is then computed per partition (one reference.Reference per input partition,
its events in file order), the scope of tally's stores. The reference keeps no cap on
interest entries per user (features.max.interests, 1000): the inputs stay far below it
(at most 118 categories for a Taobao user).

1. crash: 200,000 generated events (20,000 users) in a 4-partition topic. The crash run
   (local stores written every 200 ms) is killed with SIGKILL 24 times and restarted each
   time with the same state.dir, group and instance.id, then drained with --until-end.
   20 kills come after progress is observed (the group's committed offsets pass a seeded
   random target between where this start began and the end of the input) plus a random
   0-100 ms; 4 come while the restarted instance is starting (once it holds partitions,
   plus a random 0-500 ms: restore or first batch). Outputs = reference. The changelog
   topic must be compacted, with as many partitions as the input; the group's committed
   offsets must be the input's end offsets. The kills are listed in kills.txt beside the
   logs. This run also keeps the group's Markov chain and roll-ups (markov.enabled=true,
   rollup.topic): its Markov credit deltas must equal those recomputed from the input
   topic's events alone (rollup_ref.markov_deltas: the journeys tally closes, the windows
   the watermark passed, removal effects solved by their definition with numpy), and the
   roll-up topic the sums of the attribution records and credit deltas on the output
   topics: the kills lose and double nothing there either.
2. zombie: instance A runs; instance B starts with the same instance.id and group (another
   state.dir) while events keep arriving. A must exit non-zero within 90 s with a message
   of its own that contains "fenced"; B then consumes the rest and stops cleanly on
   SIGTERM. Outputs = reference.
3. lost local state: the real Taobao journeys (114 users, 9 days), split in time: the first
   half is consumed (--until-end), the state directory deleted, the second half produced
   and consumed by a new start (--until-end) in the same group. The second half's
   interest deltas start from the users' earlier weights and its purchases are credited to
   touchpoints from the first half (the reference, over both halves, must hold such
   records, or the test proves nothing), so only a restore from the changelog gives
   outputs = reference.
4. scale-out: three instances (distinct instance.id and state.dir, one group) on a
   6-partition topic fed in chunks; once all three hold partitions and the stream is under
   way, one is stopped (SIGTERM, exit 0) and a fourth started; when the group's committed
   offsets reach the input's end offsets the instances are stopped (each exits 0).
   Outputs = reference.
5. broker restart: a private broker (scripts/kafka-broker.sh start, then restart: same data
   and port). 8,000 events are consumed, 20,000 more produced, and as soon as tally is seen
   committing some of them the broker is restarted. tally must stay up, resume, consume
   the rest (3 x 4,000 more) and stop cleanly on SIGTERM. Outputs = reference (the input
   topic read back from the restarted broker). The outage (stop, start, loading the
   coordinators' state) lasts about as long as the 6 s consumer session used here, so the
   group may drop tally's member meanwhile: tally then has to rejoin and redo the batch
   whose offsets the group no longer accepts.

Every wait is a poll with a deadline. Settings: TALLY_EOS_SEED (kill moments, default
20261122), TALLY_EOS_EVENTS (crash test events, default 200000), TALLY_EOS_KILLS (kills
after progress, default 20; a fifth as many more at start-up). Arguments: the names of
the tests to run (default all). TALLY_EOS_KEEP=1 keeps the files and topics of a run
that passed (they are kept when one fails). Environment: TALLY_TEST_BOOTSTRAP or
TALLY_TEST_BOOTSTRAP_FILE, TALLY_BIN, TALLY_SOURCE_DIR. Exit status 0 passed, 1 failed, 77
skipped (no broker configured, or ../shared/data absent).
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import fixtures  # noqa: E402
import kafka_util as ku  # noqa: E402
import reference as ref  # noqa: E402
import rollup_ref as rr  # noqa: E402
from kafka_util import Kafka, OutputTopics, Tally, run_tally, wait_until  # noqa: E402

TOL = 1e-9
SEED = int(os.environ.get("TALLY_EOS_SEED", "20261122"))
CRASH_EVENTS = int(os.environ.get("TALLY_EOS_EVENTS", "200000"))
CRASH_KILLS = int(os.environ.get("TALLY_EOS_KILLS", "20"))
TAOBAO = os.path.join(ku.SHARED_DATA, "taobao", "user_behavior_journeys.csv")

# Small batches: many transactions, so that kills land before, inside and between them.
BATCH_EVENTS = 500
# The parameters the rule-based outputs depend on: given to every `tally run` (-X) and to
# reference.make_params alike, so that the oracle does not rest on tally's defaults being
# reference.py's. (Their values are the documented defaults.)
RULE_CONFIG = [
    "features.dims=category", "features.half.life.ms=86400000", "features.alpha=0.5",
    "features.beta=0.5", "features.epsilon=1e-6", "features.heat.impression=0.1",
    "features.heat.browse=1", "features.heat.click=2", "features.heat.favorite=3",
    "features.heat.add_to_cart=4", "features.heat.purchase=5",
    "attribution.lookback.ms=604800000", "attribution.max.touchpoints=50",
    "attribution.reset.on.conversion=true", "attribution.time.decay.half.life.ms=604800000",
    "attribution.touch.types=IMPRESSION,BROWSE,CLICK,FAVORITE,ADD_TO_CART"]
REF_PARAMS = ref.make_params(RULE_CONFIG)
# A killed member leaves the group only when its session expires (librdkafka's default is
# 45 s; 6 s is the broker's minimum): a restart then joins within seconds.
COMMON = ["processing.guarantee=exactly_once", "model.enabled=false", "markov.enabled=false",
          "batch.max.events=%d" % BATCH_EVENTS, "kafka.consumer.session.timeout.ms=6000",
          "kafka.consumer.heartbeat.interval.ms=1000"] + RULE_CONFIG
RUN_TIMEOUT_S = 300       # one `tally run --until-end`
READ_TIMEOUT_S = 180      # reading a topic back
PROGRESS_TIMEOUT_S = 120  # a (re)started instance commits its next batch
JOIN_TIMEOUT_S = 90       # a started instance holds partitions
FENCE_TIMEOUT_S = 90      # the zombie exits after the second instance started
STOP_TIMEOUT_S = 60       # exit after SIGTERM
DRAIN_TIMEOUT_S = 240     # committed offsets reach the end offsets
COMMITTED_TIMEOUT_S = 60  # a finished run's last committed offsets become readable

BEHAVIOR = {"pv": "BROWSE", "cart": "ADD_TO_CART", "fav": "FAVORITE", "buy": "PURCHASE"}
CANONICAL_HEADER = "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value\n"


class Ctx:
    def __init__(self, b, tmp):
        self.b = b
        self.tmp = tmp
        self.kafka = Kafka(b)
        self.schemas = ku.load_schemas()
        self.topics = []

    def name(self, what):
        return "tally-eos-%s-%s" % (what, ku.RUN)

    def dir(self, what):
        d = os.path.join(self.tmp, what)
        os.makedirs(d, exist_ok=True)
        return d

    def input_topic(self, what, partitions, kafka=None):
        t = self.name(what + "-events")
        (kafka or self.kafka).create_topics({t: partitions})
        if kafka is None:
            self.topics.append(t)
        return t

    def outputs(self, what, kafka=None):
        o = OutputTopics(self.name(what))
        o.create(kafka or self.kafka)
        if kafka is None:
            self.topics.extend(o.all())
        return o

    def group(self, what):
        g = self.name(what)
        self.topics.append(g + "-users-changelog")   # created by tally
        return g

    def chunked(self, dirname, what, n_events, users, seed, n_chunks, partitions):
        """A stream fed in chunks: in directory dirname, `tally gen` of n_events for users
        (seed) split into n_chunks files; the input topic (partitions), the output topics
        and the group of what; the first two chunks produced.
        Returns (directory, input topic, outputs, group, [(path, rows)], rows produced)."""
        d = self.dir(dirname)
        events = os.path.join(d, "events.csv")
        ku.gen_events(events, n_events, users, seed)
        chunks = split_csv(events, n_chunks)
        t_in = self.input_topic(what, partitions)
        outs = self.outputs(what)
        group = self.group(what)
        produced = 0
        for path, rows in chunks[:2]:
            ku.produce_file(path, t_in, self.b)
            produced += rows
        return d, t_in, outs, group, chunks, produced


def run_args(ctx, in_topic, group, state_dir, outs, instance, until_end=False, b=None,
             extra=()):
    args = ["run"] + (["--until-end"] if until_end else [])
    for kv in ["kafka.bootstrap.servers=" + (b or ctx.b), "input.topics=" + in_topic,
               "kafka.group.id=" + group, "state.dir=" + state_dir,
               "instance.id=" + instance] + COMMON + list(extra):
        args += ["-X", kv]
    return args + outs.args()


def split_csv(path, n):
    """Splits a canonical CSV into n files of consecutive rows (header in each);
    returns [(path, rows)]."""
    with open(path) as fh:
        header = fh.readline()
        rows = [line for line in fh if line.strip()]
    out = []
    size = (len(rows) + n - 1) // n
    for i in range(n):
        part = rows[i * size:(i + 1) * size]
        if not part:
            break
        out.append(fixtures.write_csv("%s.%02d.csv" % (path[:-4], i), header, part))
    return out


def concat_csv(paths, out):
    """One canonical CSV of the rows of paths, in order; returns (out, rows)."""
    n = 0
    with open(out, "w") as fo:
        fo.write(CANONICAL_HEADER)
        for p in paths:
            with open(p) as fh:
                fh.readline()
                for line in fh:
                    if line.strip():
                        fo.write(line)
                        n += 1
    return out, n


def end_sum(kafka, topic):
    return sum(kafka.end_offsets(topic).values())


def input_partitions(kafka, schemas, topic, events):
    """{event_id: partition} of the input topic's records, read back (read_committed) and
    decoded here, independently of tally. Raises AssertionError unless the topic holds
    every one of events exactly once and nothing else, keyed by its user_id, each user's
    events in one partition at increasing offsets in the order of events: what makes the
    reference, which follows that order, see each user's events as tally does."""
    rows = kafka.read_all(topic, READ_TIMEOUT_S)
    schema = schemas[ku.EVENT_ID]
    where = {}
    bad = []
    for p, off, key, value, _ in rows:
        at = "%s[%d]@%d" % (topic, p, off)
        if value is None or len(value) < 5 or value[0] != 0 or \
                int.from_bytes(value[1:5], "big") != ku.EVENT_ID:
            bad.append("%s: not a Confluent-framed record of schema id %d" % (at, ku.EVENT_ID))
            continue
        try:
            rec = ku.avro_decode(schema, value[5:])
        except Exception as e:   # fastavro's errors have no common base
            bad.append("%s: %s: %s" % (at, type(e).__name__, e))
            continue
        if key != rec["user_id"].encode():
            bad.append("%s: key %r, user_id %r" % (at, key, rec["user_id"]))
        if rec["event_id"] in where:
            bad.append("%s: event %s again (first at partition %d, offset %d)" % (
                at, rec["event_id"], *where[rec["event_id"]]))
            continue
        where[rec["event_id"]] = (p, off)
    ids = [ev["event_id"] for ev in events]
    missing = [i for i in ids if i not in where]
    if missing:
        bad.append("%d event(s) of the files are not on the topic, e.g. %s" % (
            len(missing), ", ".join(missing[:5])))
    extra = set(where) - set(ids)
    if extra:
        bad.append("%d record(s) on the topic are no event of the files, e.g. %s" % (
            len(extra), ", ".join(sorted(extra)[:5])))
    last = {}
    for ev in events:
        if ev["event_id"] not in where:
            continue
        p, off = where[ev["event_id"]]
        u = ev["user_id"]
        if u in last:
            lp, loff, leid = last[u]
            if p != lp:
                bad.append("user %s: event %s in partition %d, %s in %d" % (
                    u, leid, lp, ev["event_id"], p))
            elif off <= loff:
                bad.append("user %s: event %s at offset %d, the later %s at %d" % (
                    u, leid, loff, ev["event_id"], off))
        last[u] = (p, off, ev["event_id"])
    if bad:
        raise AssertionError("input topic %s does not hold the files' events once each, each "
                             "user's in one partition in file order (%d problem(s)):\n%s" % (
                                 topic, len(bad), "\n".join(bad[:10])))
    return {eid: p for eid, (p, _) in where.items()}


def expected_outputs(kafka, schemas, topic, files):
    """The outputs expected of tally over topic, into which the canonical CSV files were
    produced in that order: reference.py with REF_PARAMS, one reference.Reference per input
    partition, each fed its partition's events in file order (see the docstring). Returns
    (records, seconds)."""
    t0 = time.monotonic()
    events = [ev for path in files for ev in ref.read_events(path, "canonical")]
    part = input_partitions(kafka, schemas, topic, events)
    refs = {}
    out = []
    for ev in events:
        p = part[ev["event_id"]]
        r = refs.get(p)
        if r is None:
            r = refs[p] = ref.Reference(REF_PARAMS)
        out.extend(r.process(ev))
    return out, time.monotonic() - t0


def compare_outputs(ctx, topic, files, outs, pr, d, kafka=None):
    """Compares the outputs on outs (rule-based fields) with the reference's for the events
    of files, produced in that order to the input topic (expected_outputs). On a mismatch
    both sides are written to d (expected.jsonl, actual.jsonl). Returns a summary and the
    expected records."""
    k = kafka or ctx.kafka
    expected, secs = expected_outputs(k, ctx.schemas, topic, files)
    actual = outs.read(k, ctx.schemas, pr)
    problems = cmp.compare(expected, actual, TOL, rule_only=True)
    if problems:
        ref.write_jsonl(expected, os.path.join(d, "expected.jsonl"))
        ref.write_jsonl(actual, os.path.join(d, "actual.jsonl"))
        problems.append("expected and actual records written to %s/{expected,actual}.jsonl" % d)
    pr.extend(problems)
    return "%s, equal to reference.py's (%.1f s)" % (cmp.summary(actual), secs), expected


def committed_problems(kafka, group, topic, timeout_s=COMMITTED_TIMEOUT_S):
    """The partitions where the group's committed offset is not the topic's end offset.
    The offsets of tally's last transaction appear only once the broker has written its
    commit marker to __consumer_offsets, which it does after the commit returned to tally
    (and possibly after tally exited), so this waits until every committed offset equals
    the end offset, and returns the mismatches left at the deadline."""
    last = []

    def at_end():
        del last[:]
        ends = kafka.end_offsets(topic)
        got = kafka.committed(group, topic)
        last.extend("group %s: committed offset of partition %d is %s, end offset %d" % (
            group, p, got.get(p), hi) for p, hi in sorted(ends.items()) if got.get(p) != hi)
        return not last
    try:
        wait_until(at_end, timeout_s, "group %s: committed offsets at the end offsets of %s"
                   % (group, topic))
    except AssertionError as e:
        return list(last) or [str(e)]
    return []


def wait_drained(kafka, group, topic, total, running, timeout_s=DRAIN_TIMEOUT_S):
    wait_until(lambda: kafka.committed_sum(group, topic) >= total, timeout_s,
               "group %s: committed offsets at the end of %s (%d records)" % (group, topic, total),
               running=running)


def member_ids(kafka, group):
    try:
        return {m[0] for m in kafka.group_members(group)}
    except Exception:   # the group does not exist yet
        return set()


# ------------------------------------------------------------------------------ crash

def markov_and_rollups(ctx, t_in, outs, rollups, pr):
    """The crash run's Markov credit deltas against those recomputed from the input topic's
    events alone (rollup_ref.markov_deltas: the journeys, the watermark's windows, removal
    effects solved by their definition), and its roll-up topic against the sums of the
    attribution records and credit deltas on the output topics: nothing lost or doubled."""
    import numpy as np
    k = ctx.kafka
    credits = [ku.avro_decode(ctx.schemas[ku.CREDIT_ID], v[5:]) for _, _, _, v, _ in
               k.read_all(outs.credit, READ_TIMEOUT_S)]
    want = rr.markov_deltas(rr.input_events(k, ctx.schemas, t_in), REF_PARAMS["lookback_ms"],
                            REF_PARAMS["max_touchpoints"], 3600000, np)
    pr.extend(rr.same_deltas(want, credits, "Markov credit deltas against the journeys"))
    attrs = ku.decode_outputs(k.read_all(outs.attribution, READ_TIMEOUT_S), ku.ATTRIBUTION_ID,
                              ctx.schemas[ku.ATTRIBUTION_ID], outs.attribution, pr)
    got = rr.latest(k, ctx.schemas, rollups)
    pr.extend(rr.compare(rr.expected(attrs, credits), got))
    return "%d Markov credit deltas equal to those recomputed from the input; %d roll-up " \
           "rows equal to the sums of the records" % (len(credits), len(got))


def test_crash(ctx, pr):
    k = ctx.kafka
    d = ctx.dir("crash")
    n_events = CRASH_EVENTS
    events = os.path.join(d, "events.csv")
    ku.gen_events(events, n_events, max(1, n_events // 10), 1)
    t_in = ctx.input_topic("crash", 4)
    ku.produce_file(events, t_in, ctx.b)
    total = end_sum(k, t_in)
    if total != n_events:
        raise AssertionError("input topic holds %d records, expected %d" % (total, n_events))

    outs = ctx.outputs("crash")
    group = ctx.group("crash")
    rollups = ctx.name("crash-rollups")
    ctx.topics.extend([rollups, group + "-rollup-partials", group + "-rollup-state",
                       group + "-model"])
    state = os.path.join(d, "state")
    # Local stores written at most 200 ms apart (instead of 10 s): each start lives a few
    # seconds, and kills should land among store writes too, not only among transactions.
    # The group's Markov chain and roll-ups are on: they are killed with the rest.
    args = run_args(ctx, t_in, group, state, outs, "crash",
                    extra=["state.flush.interval.ms=200", "markov.enabled=true",
                           "rollup.topic=" + rollups])
    rng = random.Random(SEED)
    n_start = max(1, CRASH_KILLS // 5)
    kinds = ["progress"] * CRASH_KILLS + ["start"] * n_start
    rng.shuffle(kinds)
    progress_left = CRASH_KILLS
    mid_stream = 0
    fractions = []
    kill_log = open(os.path.join(d, "kills.txt"), "w")

    def log_kill(kill, after):
        """Logs a kill once the next start showed where it left the group's offsets."""
        nonlocal mid_stream
        n, kind, base, delay, secs = kill
        if after < total:
            mid_stream += 1
        fractions.append(after / total)
        kill_log.write("%2d %-8s committed %6d -> %6d of %d, %.0f ms after the event, "
                       "%.1f s after start\n" % (n, kind, base, after, total, delay * 1000, secs))
        kill_log.flush()

    def joined(before):
        return any(mid not in before for mid, _, _ in k.group_members(group))

    # The committed offsets right after a SIGKILL can miss the killed instance's last
    # transaction: its commit may have reached the coordinator, which writes the marker to
    # __consumer_offsets (making the offsets readable) a moment later. tally initialises
    # its transactional producer, which waits until the previous transaction of its
    # instance.id is committed or aborted, before it joins the group: so the offsets a
    # start begins from (and where the previous kill left them) are read once it joined.
    last_kill = None
    t0 = time.monotonic()
    for i, kind in enumerate(kinds):
        what = "crash run %d/%d" % (i + 1, len(kinds))
        before = member_ids(k, group)
        p = Tally(args, os.path.join(d, "crash-%02d.log" % (i + 1)), what)
        wait_until(lambda: joined(before), JOIN_TIMEOUT_S,
                   what + ": the new instance joined the group", running=[p])
        base = k.committed_sum(group, t_in)
        if last_kill is not None:
            log_kill(last_kill, base)
        if kind == "start":
            wait_until(lambda: any(mid not in before and parts
                                   for mid, _, parts in k.group_members(group)),
                       JOIN_TIMEOUT_S, what + ": the new instance holds partitions", running=[p])
            delay = rng.uniform(0.0, 0.5)
        else:
            left = total - base
            if left <= 0:
                raise AssertionError("%s: the input was consumed before the kills after "
                                     "progress were done (%d left)" % (what, progress_left))
            step = max(1, int(left * rng.uniform(0.25, 1.0) / (progress_left + 1)))
            target = min(total, base + step)
            wait_until(lambda: k.committed_sum(group, t_in) >= target, PROGRESS_TIMEOUT_S,
                       "%s: committed offsets from %d to %d of %d" % (what, base, target, total),
                       running=[p])
            progress_left -= 1
            delay = rng.uniform(0.0, 0.1)
        time.sleep(delay)   # the kill point: a random moment after the event observed
        if not p.running():
            raise AssertionError("before its SIGKILL: " + p.exited_message())
        p.kill()
        last_kill = (i + 1, kind, base, delay, time.monotonic() - p.t0)
    secs_kills = time.monotonic() - t0
    before = member_ids(k, group)
    drain = Tally(args[:1] + ["--until-end"] + args[1:], os.path.join(d, "drain.log"),
                  "drain run (--until-end)")
    # Where the last kill left the offsets (as above); should the drain run be done before
    # it is seen in the group, its own offsets are counted in.
    wait_until(lambda: not drain.running() or joined(before), RUN_TIMEOUT_S,
               "drain run: joined the group")
    if last_kill is not None:
        log_kill(last_kill, k.committed_sum(group, t_in))
    try:
        rc = drain.wait(max(1, RUN_TIMEOUT_S - (time.monotonic() - drain.t0)))
    except AssertionError:
        drain.kill()
        raise
    if rc != 0:
        raise AssertionError(drain.exited_message())
    secs_drain = time.monotonic() - drain.t0

    kill_log.close()
    summary, _ = compare_outputs(ctx, t_in, [events], outs, pr, d)
    summary += "; " + markov_and_rollups(ctx, t_in, outs, rollups, pr)
    pr.extend(committed_problems(k, group, t_in))
    changelog = group + "-users-changelog"
    if changelog not in k.topics():
        pr.append("no changelog topic %s" % changelog)
    else:
        parts = len(k.partitions(changelog))
        if parts != 4:
            pr.append("changelog %s has %d partitions, the input 4" % (changelog, parts))
        policy = k.topic_config(changelog).get("cleanup.policy", "")
        if "compact" not in policy:
            pr.append("changelog %s: cleanup.policy=%s, expected compact" % (changelog, policy))
    return ("%d SIGKILLs (%d after progress, %d at start-up; %d before the end of the input, "
            "committed %.0f%%..%.0f%% at the kills), seed %d; kills %.1f s, drain %.1f s; %s" % (
                len(kinds), CRASH_KILLS, n_start, mid_stream, 100 * min(fractions),
                100 * max(fractions), SEED, secs_kills, secs_drain, summary))


# ----------------------------------------------------------------------------- zombie

def test_zombie(ctx, pr):
    k = ctx.kafka
    d, t_in, outs, group, chunks, produced = ctx.chunked("zombie", "zombie", 40000, 4000, 7,
                                                         20, 4)
    next_chunk = 2

    a = Tally(run_args(ctx, t_in, group, os.path.join(d, "state-a"), outs, "zombie"),
              os.path.join(d, "a.log"), "instance A")
    wait_until(lambda: k.committed_sum(group, t_in) >= produced, PROGRESS_TIMEOUT_S,
               "instance A: the first %d events committed" % produced, running=[a])
    b = Tally(run_args(ctx, t_in, group, os.path.join(d, "state-b"), outs, "zombie"),
              os.path.join(d, "b.log"), "instance B (same instance.id)")
    t_b = time.monotonic()
    # Events keep arriving, so that A tries to commit after B took over its id.
    while a.running():
        if time.monotonic() - t_b > FENCE_TIMEOUT_S:
            a.kill()
            raise AssertionError("instance A still running %d s after B started with the same "
                                 "instance.id; log %s:\n%s" % (FENCE_TIMEOUT_S, a.log_path,
                                                               ku.tail(a.log_path)))
        if next_chunk < len(chunks):
            path, rows = chunks[next_chunk]
            ku.produce_file(path, t_in, ctx.b)
            produced += rows
            next_chunk += 1
        try:
            a.p.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        if not b.running():
            raise AssertionError("while A should be fenced: " + b.exited_message())
    secs_fence = time.monotonic() - t_b
    rc = a.returncode()
    if rc == 0:
        pr.append("instance A exited 0 after being fenced; expected a non-zero status")
    # tally's own message, not only librdkafka's.
    if not any("fenced" in line.lower() and "component=librdkafka" not in line
               for line in a.log().splitlines()):
        pr.append("instance A exited %s without a message of its own that mentions "
                  "\"fenced\"; log %s:\n%s" % (ku.describe_rc(rc), a.log_path,
                                                ku.tail(a.log_path)))
    for path, rows in chunks[next_chunk:]:
        ku.produce_file(path, t_in, ctx.b)
        produced += rows
    wait_drained(k, group, t_in, produced, [b])
    b.stop(STOP_TIMEOUT_S)

    summary, _ = compare_outputs(ctx, t_in, [path for path, _ in chunks], outs, pr, d)
    pr.extend(committed_problems(k, group, t_in))
    return "A exited %s %.1f s after B started (\"fenced\" in its log); %d events; %s" % (
        ku.describe_rc(rc), secs_fence, produced, summary)


# ------------------------------------------------------------------ lost local state

def taobao_halves(d):
    """The journeys file as two canonical CSVs, split at the median timestamp (each user's
    earlier events in the first); event_id = the row number in the file."""
    rows = []
    with open(TAOBAO) as fh:
        for n, line in enumerate(fh, 1):
            f = line.strip().split(",")
            if len(f) != 5:
                continue
            user, item, cat, beh, ts = f
            rows.append((int(ts) * 1000, "tb%d,%s,%s,%s,%s,%d,,,\n" % (
                n, user, item, cat, BEHAVIOR[beh], int(ts) * 1000)))
    cut = sorted(ts for ts, _ in rows)[len(rows) // 2]
    first = [r for ts, r in rows if ts < cut]
    second = [r for ts, r in rows if ts >= cut]
    paths = []
    for name, part in (("first", first), ("second", second)):
        paths.append(fixtures.write_csv(os.path.join(d, name + ".csv"), CANONICAL_HEADER, part))
    return paths


def test_lost_state(ctx, pr):
    k = ctx.kafka
    d = ctx.dir("lost-state")
    (first, n1), (second, n2) = taobao_halves(d)
    t_in = ctx.input_topic("lost", 4)
    outs = ctx.outputs("lost")
    group = ctx.group("lost")
    state = os.path.join(d, "state")
    args = run_args(ctx, t_in, group, state, outs, "lost", until_end=True)
    ku.produce_file(first, t_in, ctx.b)
    s1 = run_tally(args, RUN_TIMEOUT_S, os.path.join(d, "run-1.log"), "first run")
    if not os.path.isdir(state) or not os.listdir(state):
        raise AssertionError("the first run left nothing in its state.dir %s" % state)
    shutil.rmtree(state)
    ku.produce_file(second, t_in, ctx.b)
    s2 = run_tally(args, RUN_TIMEOUT_S, os.path.join(d, "run-2.log"),
                   "second run (state.dir deleted)")

    summary, expected = compare_outputs(ctx, t_in, [first, second], outs, pr, d)
    pr.extend(committed_problems(k, group, t_in))
    # What makes this a test of the restore: second-half records that depend on the state.
    with open(second) as fh:
        ids = {line.split(",", 1)[0] for line in fh.readlines()[1:]}
    carried = sum(1 for r in expected if cmp.kind_of(r) == "interest_delta"
                  and r["event_id"] in ids and r["weight_before"] > 0)
    spanning = sum(1 for r in expected if cmp.kind_of(r) == "attribution"
                   and r["conversion_event_id"] in ids
                   and any(t["event_id"] not in ids for t in r["touchpoints"]))
    if carried == 0 or spanning == 0:
        pr.append("the second half does not depend on the first (%d deltas from earlier "
                  "weights, %d attributions with earlier touchpoints): the test proves nothing"
                  % (carried, spanning))
    return ("%d + %d Taobao events, runs %.1f s and %.1f s; after the restore %d interest "
            "deltas build on earlier weights and %d attributions credit earlier touchpoints; "
            "%s" % (n1, n2, s1, s2, carried, spanning, summary))


# ----------------------------------------------------------------------------- scale-out

def test_scale_out(ctx, pr):
    k = ctx.kafka
    d, t_in, outs, group, chunks, produced = ctx.chunked("scale-out", "scale", 60000, 6000, 11,
                                                         12, 6)

    def start(n):
        # The consumer's client.id names the instance among the group's members.
        return Tally(run_args(ctx, t_in, group, os.path.join(d, "state-%d" % n), outs,
                              "scale-%d" % n, extra=["kafka.consumer.client.id=scale-%d" % n]),
                     os.path.join(d, "instance-%d.log" % n), "instance %d" % n)

    def holders():
        return {cid for _, cid, parts in k.group_members(group) if parts}

    live = [start(1), start(2), start(3)]
    wait_until(lambda: holders() == {"scale-1", "scale-2", "scale-3"}, JOIN_TIMEOUT_S,
               "instances 1, 2 and 3 holding partitions of %s" % t_in, running=live)
    stopped = None
    for i in range(2, len(chunks)):
        # Feed the next chunk once all but the last one are committed: the stream stays
        # under way while instances come and go.
        target = produced - chunks[i - 1][1]
        wait_until(lambda: k.committed_sum(group, t_in) >= target, PROGRESS_TIMEOUT_S,
                   "committed offsets at %d of %d produced" % (target, produced), running=live)
        path, rows = chunks[i]
        ku.produce_file(path, t_in, ctx.b)
        produced += rows
        if i == len(chunks) // 2:
            stopped = live.pop(1)
            stopped.stop(STOP_TIMEOUT_S)
            live.append(start(4))
            wait_until(lambda: holders() == {"scale-1", "scale-3", "scale-4"}, JOIN_TIMEOUT_S,
                       "instances 1, 3 and 4 holding partitions of %s" % t_in, running=live)
    wait_drained(k, group, t_in, produced, live)
    for t in live:
        t.stop(STOP_TIMEOUT_S)

    summary, _ = compare_outputs(ctx, t_in, [path for path, _ in chunks], outs, pr, d)
    pr.extend(committed_problems(k, group, t_in))
    return ("instances 1-3, then 2 stopped (exit 0) and 4 started mid-stream; %d events in "
            "%d chunks; %s" % (produced, len(chunks), summary))


# ----------------------------------------------------------------------- broker restart

def test_broker_restart(ctx, pr):
    d = ctx.dir("broker-restart")
    bdir = os.path.join(d, "broker")

    def broker(cmd):
        return ku.broker_script(cmd, bdir)

    t0 = time.monotonic()
    broker("start")
    secs_start = time.monotonic() - t0
    pk = None
    try:
        b = ku.read_value(os.path.join(bdir, "bootstrap"))
        pk = Kafka(b)
        events = os.path.join(d, "events.csv")
        ku.gen_events(events, 40000, 4000, 13)
        chunks = split_csv(events, 10)
        t_in = ctx.input_topic("restart", 4, kafka=pk)
        outs = ctx.outputs("restart", kafka=pk)
        group = ctx.name("restart")
        # 8,000 events, then 20,000 at once (the broker restarts while tally works through
        # them), then 3 x 4,000.
        pieces = chunks[:2] + [concat_csv([c for c, _ in chunks[2:7]],
                                          os.path.join(d, "events.big.csv"))] + chunks[7:]
        produced = 0
        for path, rows in pieces[:2]:
            ku.produce_file(path, t_in, b)
            produced += rows
        t = Tally(run_args(ctx, t_in, group, os.path.join(d, "state"), outs, "restart", b=b),
                  os.path.join(d, "run.log"), "tally run")
        for i in range(2, len(pieces)):
            target = produced if i == 2 else produced - pieces[i - 1][1]
            wait_until(lambda: pk.committed_sum(group, t_in) >= target, PROGRESS_TIMEOUT_S,
                       "committed offsets at %d of %d produced" % (target, produced),
                       running=[t])
            path, rows = pieces[i]
            ku.produce_file(path, t_in, b)
            produced += rows
            if i == 2:
                # Restart as soon as tally is seen working through the big piece.
                before = target
                wait_until(lambda: pk.committed_sum(group, t_in) > before, PROGRESS_TIMEOUT_S,
                           "progress into the events produced before the restart",
                           running=[t])
                at_restart = pk.committed_sum(group, t_in)
                t1 = time.monotonic()
                broker("restart")
                secs_restart = time.monotonic() - t1
                if not t.running():
                    raise AssertionError("tally did not survive the broker restart: "
                                         + t.exited_message())
        wait_drained(pk, group, t_in, produced, [t])
        t.stop(STOP_TIMEOUT_S)

        summary, _ = compare_outputs(ctx, t_in, [path for path, _ in pieces], outs, pr, d,
                                     kafka=pk)
        pr.extend(committed_problems(pk, group, t_in))
        return ("private broker started in %.1f s, restarted (data and port kept) in %.1f s "
                "when %d of the %d events produced so far were committed; %d events; %s" % (
                    secs_start, secs_restart, at_restart, before + pieces[2][1], produced,
                    summary))
    finally:
        ku.stop_all()
        if pk is not None:
            pk.close()
        try:
            broker("stop")
        except AssertionError as e:
            print("note: %s" % e)


TESTS = [("crash", test_crash), ("zombie", test_zombie), ("lost-state", test_lost_state),
         ("scale-out", test_scale_out), ("broker-restart", test_broker_restart)]


def main(argv):
    names = argv[1:] or [n for n, _ in TESTS]
    unknown = [n for n in names if n not in dict(TESTS)]
    if unknown or len(set(names)) != len(names):
        print("usage: test_eos.py [TEST...], each test at most once; tests: %s" % (
            ", ".join(n for n, _ in TESTS)))
        return 2
    b, rc = ku.preflight(data=(TAOBAO,))
    if rc is not None:
        return rc

    tmp = tempfile.mkdtemp(prefix="tally-eos-")
    ctx = Ctx(b, tmp)
    print("broker %s, run %s, seed %d, files in %s" % (b, ku.RUN, SEED, tmp))
    sys.stdout.flush()
    results = []
    for name in names:
        fn = dict(TESTS)[name]
        problems = []
        t0 = time.monotonic()
        try:
            info = fn(ctx, problems)
        except AssertionError as e:
            problems.append(str(e))
            info = None
        except Exception as e:   # a client library's error: report it, go on with the next
            problems.append("%s: %s\n%s" % (type(e).__name__, e, "".join(
                traceback.format_tb(e.__traceback__)[-3:])))
            info = None
        finally:
            ku.stop_all()
        secs = time.monotonic() - t0
        results.append((name, problems))
        if problems:
            print("FAIL %s (%.0f s):\n  %s" % (name, secs, "\n  ".join(
                "\n  ".join(p.splitlines()) for p in problems)))
        else:
            print("ok   %s (%.0f s): %s" % (name, secs, info))
        sys.stdout.flush()

    passed = sum(1 for _, pr in results if not pr)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    if failed == 0 and not os.environ.get("TALLY_EOS_KEEP"):
        ctx.kafka.delete_topics(ctx.topics)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("files kept in %s" % tmp)
    ctx.kafka.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
