#!/usr/bin/env python3
"""Helpers shared by the integration tests that run `tally run` against a real broker.

- bootstrap(): the broker's address from TALLY_TEST_BOOTSTRAP, or from the file named by
  TALLY_TEST_BOOTSTRAP_FILE; read_value() reads such a one-value file.
- preflight(): what a test needs before it starts (a broker, programs, real data, the Python
  modules and the tally binary), with the SKIP or FAIL line when something is missing;
  check_tools() and check_binary() say what is missing.
- broker_script(): scripts/kafka-broker.sh, for the tests that run a broker of their own.
- load_schemas(), avro_decode(): the schemas of schemas/ (timestamps as plain ints) and a
  strict Confluent-framed Avro decoder; decode_outputs() checks framing, schema id and key.
- Kafka: topics (create, delete, partitions, configuration), end offsets, a consumer group's
  committed offsets and members, waiting until no transaction is open or unmarked on a topic
  (wait_stable), and reading a whole topic with a read_committed consumer.
- Tally: a `tally` process started in the background, its log in a file; run_tally() runs
  one to completion, gen_events(), produce_file() and replay_file() the usual commands, and
  run_args() builds a `tally run` command line. stop_all() kills every process started here
  that is still running.
- wait_until(): polls a condition until a deadline, failing early when a process that must
  stay up has exited.
- OutputTopics: the names of one run's five output topics.
- Steps: a test's named steps, each printed as "ok NAME" or "FAIL NAME" with its problems;
  finish() prints the count and gives the exit status.

Failures are raised as AssertionError with a message meant for the test's FAIL line.
"""

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TALLY_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
TALLY_BIN = os.environ.get("TALLY_BIN") or os.path.join(SOURCE_DIR, "build", "tally")
SCHEMA_DIR = os.path.join(SOURCE_DIR, "schemas")
SHARED_DATA = os.path.join(SOURCE_DIR, "..", "shared", "data")
BROKER_SH = os.path.join(SOURCE_DIR, "scripts", "kafka-broker.sh")
SKIP = 77

RUN = uuid.uuid4().hex[:10]

# The test's own clients log nothing: a broker that restarts on purpose would fill the
# output with disconnections. Their failures still surface as exceptions.
_QUIET = logging.getLogger("kafka_util.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def read_value(path):
    """The text of a file that holds one value (an address, a URL), without the white space
    around it."""
    with open(path) as fh:
        return fh.read().strip()


def bootstrap():
    b = os.environ.get("TALLY_TEST_BOOTSTRAP", "").strip()
    f = os.environ.get("TALLY_TEST_BOOTSTRAP_FILE", "").strip()
    if not b and f and os.path.isfile(f):
        b = read_value(f)
    return b


def broker_script(cmd, bdir, *extra, env=None, timeout_s=300):
    """scripts/kafka-broker.sh CMD BDIR EXTRA... for a broker of the test's own (a first start
    may fetch the broker's jars); its output, stdout and stderr together. AssertionError when
    it fails."""
    res = subprocess.run([BROKER_SH, cmd, bdir] + list(extra), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=timeout_s, env=env)
    if res.returncode != 0:
        raise AssertionError("kafka-broker.sh %s %s failed:\n%s" % (cmd, bdir, res.stdout))
    return res.stdout


# ------------------------------------------------------------------------- schemas

def _strip_logical(node):
    """The schema without logicalType annotations: timestamps decode as plain ints (ms)."""
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(x) for x in node]
    return node


EVENT_ID = 10         # schemas/10-behavior_event.avsc: the event schema tally produce writes
ATTRIBUTION_ID = 11   # schemas/11-attribution.avsc: the attribution schema tally writes
CREDIT_ID = 7        # schemas/7-credit_delta.avsc: the credit_delta schema tally writes
INTENT_ID = 12       # schemas/12-intent_delta.avsc: the intent_delta schema tally writes
NEXTCAT_ID = 13      # schemas/13-next_categories.avsc: the next_categories schema


def load_schemas():
    """{schema id: parsed schema} from schemas/<id>-<name>.avsc."""
    import fastavro
    files = []
    for name in os.listdir(SCHEMA_DIR):
        if name.endswith(".avsc") and name.split("-", 1)[0].isdigit():
            files.append((int(name.split("-", 1)[0]), name))
    named = {}
    out = {}
    for sid, name in sorted(files):
        with open(os.path.join(SCHEMA_DIR, name)) as fh:
            schema = _strip_logical(json.load(fh))
        try:
            out[sid] = fastavro.parse_schema(schema, named_schemas={})
        except fastavro.schema.UnknownType:
            out[sid] = fastavro.parse_schema(schema, named_schemas=dict(named))
        fastavro.parse_schema(schema, named_schemas=named)   # collect its named types
    return out


def frame(schema_id, body):
    """Confluent framing: magic byte 0, the schema id (4 bytes, big-endian), the body."""
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def avro_encode(schema, record):
    import fastavro
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def avro_decode(schema, body):
    """Decodes one record; the body must be used up exactly."""
    import fastavro
    bio = io.BytesIO(body)
    rec = fastavro.schemaless_reader(bio, schema, None)
    if bio.tell() != len(body):
        raise ValueError("%d trailing bytes after the Avro record" % (len(body) - bio.tell()))
    return rec


def decode_outputs(rows, schema_id, schema, topic, problems, max_problems=10):
    """rows: [(partition, offset, key, value, headers)] of an interest or attribution topic.
    Returns the decoded records; framing, schema id and key (= user_id) problems are
    appended to problems (at most max_problems of them)."""
    recs = []
    bad = 0
    for p, off, key, value, _ in rows:
        where = "%s[%d]@%d" % (topic, p, off)
        why = None
        rec = None
        if value is None or len(value) < 5 or value[0] != 0:
            why = "value is not Confluent-framed: %r" % ((value or b"")[:16],)
        elif int.from_bytes(value[1:5], "big") != schema_id:
            why = "schema id %d, expected %d" % (int.from_bytes(value[1:5], "big"), schema_id)
        else:
            try:
                rec = avro_decode(schema, value[5:])
            except Exception as e:   # fastavro raises several kinds
                why = "Avro body does not decode: %s" % e
        if rec is not None:
            recs.append(rec)
            if key is None or key.decode("utf-8", "replace") != rec.get("user_id"):
                why = "key %r is not the user_id %r" % (key, rec.get("user_id"))
        if why:
            bad += 1
            if bad <= max_problems:
                problems.append("%s: %s" % (where, why))
    if bad > max_problems:
        problems.append("%s: %d more records with problems" % (topic, bad - max_problems))
    return recs


# --------------------------------------------------------------------------- kafka

class Kafka:
    """One broker. The admin client and the probe consumer are kept for the object's
    life (polling them is cheap); close() releases them."""

    def __init__(self, bootstrap_servers):
        from confluent_kafka.admin import AdminClient
        self.b = bootstrap_servers
        self.admin = AdminClient({"bootstrap.servers": self.b, "logger": _QUIET})
        self._probe = None
        self._probe_uncommitted = None
        self._group_consumers = {}

    def close(self):
        for c in (self._probe, self._probe_uncommitted):
            if c is not None:
                c.close()
        self._probe = self._probe_uncommitted = None
        for c in self._group_consumers.values():
            c.close()
        self._group_consumers = {}
        self.admin = None

    def probe(self, isolation="read_committed"):
        """A consumer that never joins a group: watermarks only. read_committed gives each
        partition's last stable offset, read_uncommitted its high watermark."""
        from confluent_kafka import Consumer
        attr = "_probe" if isolation == "read_committed" else "_probe_uncommitted"
        if getattr(self, attr) is None:
            setattr(self, attr, Consumer({"bootstrap.servers": self.b,
                                          "group.id": "tally-test-probe-" + RUN,
                                          "enable.auto.commit": False,
                                          "isolation.level": isolation,
                                          "logger": _QUIET}))
        return getattr(self, attr)

    def create_topics(self, spec, config=None):
        """spec: {name: partitions}; waits until every partition has a leader."""
        from confluent_kafka.admin import NewTopic
        futs = self.admin.create_topics(
            [NewTopic(t, num_partitions=n, replication_factor=1, config=dict(config or {}))
             for t, n in spec.items()],
            operation_timeout=30, request_timeout=30)
        for t, f in futs.items():
            f.result(timeout=60)
        deadline = time.monotonic() + 60
        while True:
            md = self.admin.list_topics(timeout=10)
            ready = all(t in md.topics and md.topics[t].error is None
                        and len(md.topics[t].partitions) == n
                        and all(p.leader >= 0 for p in md.topics[t].partitions.values())
                        for t, n in spec.items())
            if ready:
                return
            if time.monotonic() > deadline:
                raise AssertionError("topics %s not ready after 60 s" % sorted(spec))
            time.sleep(0.1)   # poll interval

    def delete_topics(self, names):
        names = [n for n in names if n]
        if not names:
            return
        try:
            for f in self.admin.delete_topics(list(names), operation_timeout=30).values():
                f.result(timeout=60)
        except Exception as e:  # best effort: the broker is a test broker
            print("note: could not delete test topics: %s" % e)

    def topics(self):
        return set(self.admin.list_topics(timeout=10).topics)

    def partitions(self, topic):
        md = self.admin.list_topics(topic=topic, timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            raise AssertionError("topic %s: %s" % (topic, t.error if t else "absent"))
        return sorted(t.partitions)

    def topic_config(self, topic):
        """{name: value} of the topic's configuration."""
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        for _, f in self.admin.describe_configs([res], request_timeout=30).items():
            return {k: v.value for k, v in f.result(timeout=30).items()}
        return {}

    def produce(self, topic, records, partition=None):
        """records: [(key bytes, value bytes)]; returns [(partition, offset)] in order
        (into partition when given). Records over 100 kB are sent alone (flushed before
        and after), so that no batch exceeds the topic's default max.message.bytes."""
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.b, "enable.idempotence": True,
                      "message.max.bytes": 1_048_500, "logger": _QUIET})
        where = [None] * len(records)
        errors = []

        def cb(i):
            def done(err, msg):
                if err is not None:
                    errors.append(str(err))
                else:
                    where[i] = (msg.partition(), msg.offset())
            return done

        kw = {} if partition is None else {"partition": partition}
        for i, (k, v) in enumerate(records):
            big = len(k or b"") + len(v or b"") > 100_000
            if big:
                p.flush(60)
            while True:
                try:
                    p.produce(topic, key=k, value=v, on_delivery=cb(i), **kw)
                    break
                except BufferError:   # the local queue is full: let deliveries drain it
                    p.poll(0.1)
            if big:
                p.flush(60)
        left = p.flush(60)
        if left or errors or None in where:
            raise AssertionError("producing to %s failed: %d unsent, errors %s" % (
                topic, left, errors[:3]))
        return where

    def end_offsets(self, topic):
        """{partition: end offset} (the last stable offset: what a read_committed consumer
        can reach)."""
        from confluent_kafka import TopicPartition
        c = self.probe()
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in self.partitions(topic)}

    def unstable(self, topic):
        """{partition: (last stable offset, high watermark)} of the partitions where a
        transaction is still open or its commit markers are not written yet."""
        from confluent_kafka import TopicPartition
        lso, hw = self.probe("read_committed"), self.probe("read_uncommitted")
        out = {}
        for p in self.partitions(topic):
            tp = TopicPartition(topic, p)
            s = lso.get_watermark_offsets(tp, timeout=10)[1]
            h = hw.get_watermark_offsets(tp, timeout=10)[1]
            if s != h:
                out[p] = (s, h)
        return out

    def wait_stable(self, topics, timeout_s=90):
        """Waits until no transaction is open on any partition of topics and every commit
        or abort marker is written: a producer's commit returns before the broker writes
        its markers, so a read_committed reader can miss a transaction that was committed
        a moment ago. A transaction left open by a killed producer stays open until its
        transactional id is used again or transaction.timeout.ms passes."""
        topics = [topics] if isinstance(topics, str) else list(topics)
        last = {}

        def stable():
            last.clear()
            for t in topics:
                u = self.unstable(t)
                if u:
                    last[t] = u
            return not last
        deadline = time.monotonic() + timeout_s
        while not stable():
            if time.monotonic() > deadline:
                raise AssertionError("a transaction is still open on %s after %d s "
                                     "({partition: (last stable offset, high watermark)})" % (
                                         last, timeout_s))
            time.sleep(0.05)   # poll interval

    def committed(self, group, topic):
        """{partition: committed offset, -1 where none} of group on topic: the last
        committed offsets, without waiting for pending transactional ones (the asking
        consumer reads uncommitted, so the broker is not asked for stable offsets). Asked
        through a consumer of the group that never joins it: the admin API's
        ListConsumerGroupOffsets crashes librdkafka 2.11 when the coordinator moves
        (confluentinc/librdkafka#5040)."""
        from confluent_kafka import Consumer, TopicPartition
        c = self._group_consumers.get(group)
        if c is None:
            c = Consumer({"bootstrap.servers": self.b, "group.id": group,
                          "enable.auto.commit": False,
                          "isolation.level": "read_uncommitted", "logger": _QUIET})
            self._group_consumers[group] = c
        tps = c.committed([TopicPartition(topic, p) for p in self.partitions(topic)],
                          timeout=15)
        return {tp.partition: tp.offset if tp.error is None and tp.offset >= 0 else -1
                for tp in tps}

    def committed_sum(self, group, topic):
        return sum(max(0, o) for o in self.committed(group, topic).values())

    def group_members(self, group):
        """[(member_id, client_id, [partitions])] of the group's current members."""
        fut = self.admin.describe_consumer_groups([group], request_timeout=10)[group]
        d = fut.result(timeout=15)
        out = []
        for m in d.members:
            parts = sorted(tp.partition for tp in (m.assignment.topic_partitions
                                                   if m.assignment else []))
            out.append((m.member_id, m.client_id, parts))
        return out

    def read_all(self, topic, timeout_s=180, stable=True):
        """Every committed record of topic, from the beginning to each partition's end
        offset (read_committed; asked of the broker first: the topic is no longer written).
        With stable, first waits until no transaction is open or unmarked on the topic
        (wait_stable), so a transaction committed just before is read too.
        Returns [(partition, offset, key, value, headers dict)]."""
        from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
        if stable:
            self.wait_stable(topic, timeout_s)
        c = Consumer({"bootstrap.servers": self.b, "group.id": "tally-test-read-" + RUN,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "enable.partition.eof": True, "isolation.level": "read_committed",
                      "logger": _QUIET})
        out = []
        try:
            ends = {}
            for p in self.partitions(topic):
                ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            pending = {p for p, (lo, hi) in ends.items() if hi > lo}
            if not pending:
                return out
            c.assign([TopicPartition(topic, p, ends[p][0]) for p in sorted(pending)])
            deadline = time.monotonic() + timeout_s
            while pending:
                if time.monotonic() > deadline:
                    pos = {tp.partition: tp.offset for tp in
                           c.position([TopicPartition(topic, p) for p in pending])}
                    raise AssertionError("reading %s: partitions %s not at their end after %d s "
                                         "(positions %s, ends %s)" % (
                                             topic, sorted(pending), timeout_s, pos, ends))
                for m in c.consume(num_messages=10000, timeout=1.0):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            raise KafkaException(m.error())
                        if m.offset() >= ends[m.partition()][1]:
                            pending.discard(m.partition())
                        continue
                    out.append((m.partition(), m.offset(), m.key(), m.value(),
                                dict((k, v) for k, v in (m.headers() or []))))
                    if m.offset() + 1 >= ends[m.partition()][1]:
                        pending.discard(m.partition())
                if pending:
                    for tp in c.position([TopicPartition(topic, p) for p in list(pending)]):
                        if tp.offset >= 0 and tp.offset >= ends[tp.partition][1]:
                            pending.discard(tp.partition)
            return out
        finally:
            c.close()


def java_partition(key, partitions):
    """The partition Java's producer picks for key (bytes) among partitions: Kafka's
    Utils.murmur2 (seed 0x9747b28c), made positive (& 0x7fffffff), modulo the count.
    Written from the Java source, independently of librdkafka."""
    m, r = 0x5BD1E995, 24
    n = len(key)
    h = (0x9747B28C ^ n) & 0xFFFFFFFF
    for i in range(0, n - n % 4, 4):
        k = key[i] | key[i + 1] << 8 | key[i + 2] << 16 | key[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = n & ~3
    rest = n % 4
    if rest >= 3:
        h ^= key[tail + 2] << 16
    if rest >= 2:
        h ^= key[tail + 1] << 8
    if rest >= 1:
        h ^= key[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


class OutputTopics:
    """The six output topics of one tally run (or of the instances of one group)."""

    def __init__(self, prefix):
        self.interest = prefix + "-interest"
        self.attribution = prefix + "-attribution"
        self.credit = prefix + "-credit"
        self.dlq = prefix + "-dlq"
        self.intent = prefix + "-intent"
        self.categories = prefix + "-categories"

    def all(self):
        return [self.interest, self.attribution, self.credit, self.dlq, self.intent,
                self.categories]

    def create(self, kafka, partitions=4):
        kafka.create_topics({self.interest: partitions, self.attribution: partitions,
                             self.credit: 1, self.dlq: 1, self.intent: partitions,
                             self.categories: partitions})

    def args(self):
        return ["-X", "output.interest.topic=" + self.interest,
                "-X", "output.attribution.topic=" + self.attribution,
                "-X", "output.credit.topic=" + self.credit,
                "-X", "dlq.topic=" + self.dlq,
                "-X", "output.intent.topic=" + self.intent,
                "-X", "output.categories.topic=" + self.categories]

    def read(self, kafka, schemas, problems):
        """The interest deltas and attributions on the topics (read_committed), decoded.
        A record on the dead-letter topic is a problem (the tests' input is all valid)."""
        recs = decode_outputs(kafka.read_all(self.interest), 2, schemas[2], self.interest,
                              problems)
        recs += decode_outputs(kafka.read_all(self.attribution), ATTRIBUTION_ID, schemas[ATTRIBUTION_ID],
                               self.attribution, problems)
        dlq = kafka.read_all(self.dlq)
        if dlq:
            problems.append("%d record(s) on the dead-letter topic %s, e.g. reason %r" % (
                len(dlq), self.dlq, dlq[0][4].get("tally.reason")))
        return recs


# ---------------------------------------------------------------------------- tally

def tail(path, n=30):
    """The last n lines of a tally log, without librdkafka's own lines (a broker that is
    away fills a log with them); how many were left out is said first."""
    try:
        with open(path, errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return ""
    own = [line for line in lines if "component=librdkafka" not in line]
    left_out = len(lines) - len(own)
    head = "(%d librdkafka lines left out)\n" % left_out if left_out else ""
    return head + "".join(own[-n:])


_procs = []


class Tally:
    """`tally ARGS` in the background, stdout and stderr into log_path."""

    def __init__(self, args, log_path, name):
        self.name = name
        self.log_path = log_path
        self.cmd = [TALLY_BIN] + list(args)
        self.t0 = time.monotonic()
        with open(log_path, "w") as log:
            self.p = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        _procs.append(self)

    @property
    def pid(self):
        return self.p.pid

    def running(self):
        return self.p.poll() is None

    def returncode(self):
        return self.p.poll()

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def wait(self, timeout_s):
        """The exit status; AssertionError when it does not exit within timeout_s."""
        try:
            return self.p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s (pid %d) did not exit within %d s; log %s:\n%s" % (
                self.name, self.p.pid, timeout_s, self.log_path, tail(self.log_path)))

    def kill(self):
        """SIGKILL and reap."""
        self.signal(signal.SIGKILL)
        return self.wait(30)

    def stop(self, timeout_s=60):
        """SIGTERM; the exit status must be 0."""
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout_s)
        if rc != 0:
            raise AssertionError("%s exited %s after SIGTERM (expected 0); log %s:\n%s" % (
                self.name, describe_rc(rc), self.log_path, tail(self.log_path)))
        return rc

    def log(self):
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def exited_message(self):
        return "%s exited %s after %.1f s; log %s:\n%s" % (
            self.name, describe_rc(self.p.poll()), time.monotonic() - self.t0, self.log_path,
            tail(self.log_path))


def describe_rc(rc):
    if rc is None:
        return "(still running)"
    if rc < 0:
        try:
            return "on signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "on signal %d" % -rc
    return "with status %d" % rc


def stop_all():
    """Kills every tally process started by Tally that is still running."""
    for t in _procs:
        if t.p.poll() is None:
            t.p.kill()
            try:
                t.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print("note: %s (pid %d) survived SIGKILL" % (t.name, t.p.pid))


def run_tally(args, timeout_s, log_path, name="tally"):
    """Runs tally to completion; AssertionError unless it exits 0 within timeout_s.
    Returns the seconds it took."""
    t = Tally(args, log_path, name)
    try:
        rc = t.wait(timeout_s)
    except AssertionError:
        t.kill()
        raise
    if rc != 0:
        raise AssertionError(t.exited_message())
    return time.monotonic() - t.t0


def gen_events(path, events, users, seed=1, extra=(), log_path=None):
    """`tally gen` of events for users into path (canonical CSV; its log beside it, or in
    log_path)."""
    run_tally(["gen", "--events", str(events), "--users", str(users), "--seed", str(seed),
               "--output", path] + list(extra), 120, log_path or path + ".log", "tally gen")


def produce_file(path, topic, b):
    """`tally produce` of the canonical CSV at path into topic on broker b; the seconds it
    took."""
    return run_tally(["produce", "--input", path, "--format", "canonical", "--topic", topic,
                      "-X", "kafka.bootstrap.servers=" + b], 180, path + ".produce.log",
                     "tally produce " + os.path.basename(path))


def replay_file(path, out, log_path, fmt="canonical", timeout_s=300, name="tally replay"):
    """`tally replay` of the input at path (in format fmt) into out (JSON lines); the seconds
    it took."""
    return run_tally(["replay", "--input", path, "--format", fmt, "--output", out], timeout_s,
                     log_path, name)


def run_args(topic, group, state_dir, *extra, outs=None, b=None, until_end=True):
    """The arguments of `tally run`: --until-end (unless until_end is false), the broker b
    (when given), the input topic, the consumer group and the state directory, the four
    topics of outs (an OutputTopics, when given), then extra as they are (so an -X of extra
    overrides one before it)."""
    args = ["run"] + (["--until-end"] if until_end else [])
    if b:
        args += ["-X", "kafka.bootstrap.servers=" + b]
    args += ["-X", "input.topics=" + topic, "-X", "kafka.group.id=" + group,
             "-X", "state.dir=" + state_dir]
    if outs is not None:
        args += outs.args()
    return args + list(extra)


def wait_until(cond, timeout_s, what, running=(), interval_s=0.05):
    """Polls cond() until it returns a true value (which is returned) or timeout_s pass.
    Every Tally in running must stay up meanwhile. Exceptions raised by cond() other than
    AssertionError count as "not yet" (e.g. a broker that is restarting); the last one is
    reported on timeout."""
    deadline = time.monotonic() + timeout_s
    last_err = None
    while True:
        for t in running:
            if not t.running():
                raise AssertionError("while waiting for %s: %s" % (what, t.exited_message()))
        try:
            v = cond()
            if v:
                return v
        except AssertionError:
            raise
        except Exception as e:   # the client libraries raise several kinds
            last_err = e
        if time.monotonic() > deadline:
            raise AssertionError("%s: not reached within %d s%s" % (
                what, timeout_s, " (last error: %s)" % last_err if last_err else ""))
        time.sleep(interval_s)   # poll interval


def http_get(port, path):
    """(status, body text) of GET http://127.0.0.1:port/path."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_port(t):
    """The HTTP port a tally logged ("listening on ... (port N)")."""
    import re

    def found():
        m = re.search(r"component=http listening on \S+ \(port (\d+)\)", t.log())
        return int(m.group(1)) if m else None
    return wait_until(found, 60, "%s's HTTP port in its log" % t.name, running=[t])


def scrape(port):
    """({(name, frozenset(labels)): value}, {family names}) of /metrics, parsed by
    prometheus_client (counter families named with their _total)."""
    from prometheus_client.parser import text_string_to_metric_families
    status, text = http_get(port, "/metrics")
    assert status == 200, "/metrics answered %d" % status
    out, families = {}, set()
    for fam in text_string_to_metric_families(text):
        families.add(fam.name + ("_total" if fam.type == "counter" else ""))
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, families


def metric_total(m, name, **labels):
    """The sum of name's samples whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def check_binary():
    """None when the tally binary is there and executable, else why not."""
    if not os.access(TALLY_BIN, os.X_OK):
        return "tally binary not found or not executable: %s (set TALLY_BIN)" % TALLY_BIN
    return None


def check_tools():
    """None when confluent_kafka, fastavro and the tally binary are there, else why not."""
    try:
        import confluent_kafka  # noqa: F401
        import fastavro  # noqa: F401
    except ImportError as e:
        return "%s (pip install -r tests/integration/requirements.txt)" % e
    return check_binary()


def cannot_start(why):
    """Prints why a test cannot start as its one failed step; the exit status (1)."""
    print("FAIL: %s\n0 passed, 1 failed" % why)
    return 1


def preflight(broker=True, programs=(), data=(), tools=check_tools):
    """What a test needs before it starts, checked in this order: a broker configured (when
    broker), programs on PATH, the real data files of data (beside the source tree), then
    tools() (check_tools: the Python modules and the tally binary; None checks nothing).
    Returns (the broker's address, or "" without broker, None) to go on, else (None, exit
    status) after printing why: SKIP (77) for a missing broker, program or data file, 1 (a
    FAIL line) for what tools() finds missing."""
    b = ""
    if broker:
        b = bootstrap()
        if not b:
            print("SKIP: no Kafka broker (set TALLY_TEST_BOOTSTRAP or TALLY_TEST_BOOTSTRAP_FILE)")
            return None, SKIP
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        print("SKIP: %s not found (scripts/deps.sh installs them)" % ", ".join(missing))
        return None, SKIP
    for path in data:
        if not os.path.isfile(path):
            print("SKIP: %s not found (real data lives beside the repository)" % path)
            return None, SKIP
    why = tools() if tools else None
    if why:
        return None, cannot_start(why)
    return b, None



class Steps:
    """A test's named steps. step(name, fn) runs fn(problems): fn appends what is wrong to
    problems (or raises AssertionError) and may return a line of information. Prints "ok
    NAME: info" or "FAIL NAME:" and the problems; returns whether the step passed. With
    catch_all, any other exception (a client library's) is that step's failure too."""

    def __init__(self, catch_all=False):
        self.results = []   # (name, problems)
        self.catch_all = catch_all

    def __call__(self, name, fn):
        problems = []
        info = None
        try:
            info = fn(problems)
        except AssertionError as e:
            problems.append(str(e))
        except Exception as e:   # noqa: BLE001 -- only with catch_all, else re-raised
            if not self.catch_all:
                raise
            problems.append("%s: %s" % (type(e).__name__, e))
        self.results.append((name, problems))
        if problems:
            print("FAIL %s:\n  %s" % (name, "\n  ".join(problems)))
        else:
            print("ok   %s%s" % (name, ": " + info if info else ""))
        return not problems

    def counts(self):
        """(passed, failed)"""
        passed = sum(1 for _, pr in self.results if not pr)
        return passed, len(self.results) - passed

    def finish(self, tmp=None, kept=""):
        """Prints "N passed, M failed"; the exit status, 1 when a step failed. The test's
        files in tmp (when given) are removed when every step passed, else kept and named
        (followed by kept)."""
        passed, failed = self.counts()
        print("%d passed, %d failed" % (passed, failed))
        if tmp and failed:
            print("files kept in %s%s" % (tmp, kept))
        elif tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit("kafka_util.py is a module for the integration tests")
