#!/usr/bin/env python3
"""Checks that the test broker does what tally needs of Kafka.

With the Python client (confluent-kafka): a 4-partition topic, a transactional producer
(one committed transaction, one aborted, one committed), and a read_committed consumer that
must see exactly the committed records. With kcat, which links Debian's librdkafka (the
library tally links): metadata, a plain produce/consume round trip on an auto-created topic,
a transactional produce read back with read_committed, and a consumer-group read.

The broker's address comes from TALLY_TEST_BOOTSTRAP, or from the file named by
TALLY_TEST_BOOTSTRAP_FILE. Prints "N passed, M failed" last; exits 1 on any failure.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4
RUN = uuid.uuid4().hex[:8]


def bootstrap():
    b = os.environ.get("TALLY_TEST_BOOTSTRAP", "").strip()
    if not b and os.environ.get("TALLY_TEST_BOOTSTRAP_FILE"):
        with open(os.environ["TALLY_TEST_BOOTSTRAP_FILE"]) as f:
            b = f.read().strip()
    if not b:
        sys.exit("kafka_roundtrip: set TALLY_TEST_BOOTSTRAP (or TALLY_TEST_BOOTSTRAP_FILE)")
    return b


BOOTSTRAP = bootstrap()


def wait_for(cond, timeout, what):
    """Polls cond() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)  # poll interval


def create_topic(name, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    fut = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                              operation_timeout=30, request_timeout=30)
    fut[name].result(timeout=60)

    def ready():
        md = admin.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is None or t.error is not None or len(t.partitions) != partitions:
            return None
        return all(p.leader >= 0 for p in t.partitions.values())
    wait_for(ready, 30, f"topic {name} with {partitions} partitions")


def consume_all(topic, expected_count, isolation, timeout=60):
    """Reads topic from the beginning until every partition reached its end (EOF) and at least
    expected_count records arrived. Returns a list of (partition, key, value)."""
    c = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"tally-it-{RUN}-{topic}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        got, at_eof = [], set()
        deadline = time.monotonic() + timeout
        while not (len(at_eof) == PARTITIONS and len(got) >= expected_count):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out: {len(got)}/{expected_count} records, EOF on {sorted(at_eof)}")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            at_eof.discard(m.partition())
            got.append((m.partition(), m.key() and m.key().decode(), m.value().decode()))
        return got
    finally:
        c.close()


# --- checks with the Python client ------------------------------------------------------

def check_transactions_read_committed():
    topic = f"tally-it-txn-{RUN}"
    create_topic(topic)
    p = Producer({
        "bootstrap.servers": BOOTSTRAP,
        "transactional.id": f"tally-it-{RUN}",
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    # The first init_transactions creates __transaction_state: it can take some seconds.
    p.init_transactions(60)

    def transaction(name, n, commit):
        """One transaction of n records, keys k0, k1, ... and values NAME-0, NAME-1, ...,
        committed or aborted; returns the values."""
        p.begin_transaction()
        values = [f"{name}-{i}" for i in range(n)]
        for i, v in enumerate(values):
            p.produce(topic, key=f"k{i}", value=v)
        if commit:
            p.commit_transaction(30)
        else:
            p.flush(30)  # the aborted records are written to the log, not just buffered
            p.abort_transaction(30)
        return values

    committed = transaction("committed-a", 40, True)
    transaction("aborted", 10, False)
    committed += transaction("committed-b", 8, True)
    p.flush(10)

    got = consume_all(topic, len(committed), "read_committed")
    values = [v for _, _, v in got]
    assert sorted(values) == sorted(committed), (
        f"read_committed got {len(values)} records, want {len(committed)}; "
        f"unexpected: {sorted(set(values) - set(committed))[:5]}, "
        f"missing: {sorted(set(committed) - set(values))[:5]}")
    parts = {p for p, _, _ in got}
    assert len(parts) > 1, f"all records landed on partitions {parts}"
    # Same key, same partition.
    where = {}
    for part, k, _ in got:
        assert where.setdefault(k, part) == part, f"key {k} on two partitions"

    # read_uncommitted sees the aborted records too: they really reached the log.
    got_all = consume_all(topic, len(committed) + 10, "read_uncommitted")
    aborted = [v for _, _, v in got_all if v.startswith("aborted-")]
    assert len(aborted) == 10, f"read_uncommitted saw {len(aborted)} aborted records, want 10"
    return f"{len(committed)} committed of {len(committed) + 10} on {len(parts)} partitions"


def check_consumer_group_commit():
    """Subscribe in a group, commit offsets, read them back."""
    topic = f"tally-it-group-{RUN}"
    create_topic(topic)
    p = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(20):
        p.produce(topic, key=f"g{i}", value=f"v{i}")
    assert p.flush(30) == 0, "records still unsent after flush"
    group = f"tally-it-group-{RUN}"
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        n, deadline = 0, time.monotonic() + 60
        while n < 20:
            assert time.monotonic() < deadline, f"group consumer got {n}/20"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            n += 1
        c.commit(asynchronous=False)
        offs = c.committed([TopicPartition(topic, q) for q in range(PARTITIONS)], timeout=30)
        total = sum(tp.offset for tp in offs if tp.offset >= 0)
        assert total == 20, f"committed offsets add up to {total}, want 20"
    finally:
        c.close()
    return "20 records, offsets committed"


# --- checks with kcat (Debian's librdkafka) ---------------------------------------------

def kcat(*args, input=None, timeout=60):
    r = subprocess.run(["kcat", "-b", BOOTSTRAP, *args], input=input, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def kcat_partitions(topic):
    md = json.loads(kcat("-L", "-J", "-t", topic))
    for t in md.get("topics", []):
        if t.get("topic") == topic and not t.get("err"):
            return len(t.get("partitions", []))
    return None


def check_kcat_metadata():
    version = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    m = re.search(r"librdkafka ([0-9][0-9.]*)", version)
    lib = m.group(1) if m else "?"
    out = kcat("-L", "-m", "10")
    assert "1 brokers:" in out and "broker 1 at" in out, f"unexpected metadata:\n{out}"
    return f"kcat -L answers (librdkafka {lib})"


def check_kcat_roundtrip():
    topic = f"tally-it-kcat-{RUN}"  # not created: the broker auto-creates it
    msg = f"hello-{RUN}"
    kcat("-P", "-t", topic, "-p", "0", input=msg + "\n")
    n = wait_for(lambda: kcat_partitions(topic), 30, f"auto-created topic {topic}")
    assert n == PARTITIONS, f"auto-created topic has {n} partitions, want {PARTITIONS}"
    out = kcat("-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-e", "-q")
    assert out.strip() == msg, f"kcat read back {out!r}, want {msg!r}"
    return f"auto-created {PARTITIONS}-partition topic, 1 record back"


def check_kcat_transaction():
    topic = f"tally-it-kcat-txn-{RUN}"
    create_topic(topic)
    msgs = [f"txn-{RUN}-{i}" for i in range(5)]
    kcat("-P", "-t", topic, "-X", f"transactional.id=tally-it-kcat-{RUN}",
         input="\n".join(msgs) + "\n")
    got = consume_all(topic, len(msgs), "read_committed")
    assert sorted(v for _, _, v in got) == sorted(msgs), f"read_committed got {got}"
    # A transaction leaves a commit marker in each partition it wrote to: the log holds
    # more than the records themselves. The broker writes the markers after kcat's commit
    # returned; the high watermark covers a marker an instant after the records became
    # readable: poll the end offsets until they count every marker (or the deadline).
    with_records = len({q for q, _, _ in got})
    want = len(msgs) + with_records
    ends = {}
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"tally-it-wm-{RUN}"})
    try:
        def markers_in():
            ends["sum"] = sum(c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1]
                              for q in range(PARTITIONS))
            return ends["sum"] == want
        try:
            wait_for(markers_in, 30, f"log end offsets of {topic} adding up to {want}")
        except AssertionError:
            pass   # the assertion below says what was found
    finally:
        c.close()
    end = ends.get("sum")
    assert end == want, (
        f"log end offsets add up to {end}, want {len(msgs)} records + {with_records} markers")
    # And Debian's librdkafka reads them back with read_committed too.
    out = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q",
               "-X", "isolation.level=read_committed")
    assert sorted(out.split()) == sorted(msgs), f"kcat read_committed got {out!r}"
    return f"{len(msgs)} records in one transaction"


def check_kcat_group():
    topic = f"tally-it-kcat-grp-{RUN}"
    create_topic(topic)
    msgs = [f"grp-{RUN}-{i}" for i in range(8)]
    kcat("-P", "-t", topic, input="\n".join(msgs) + "\n")
    out = kcat("-G", f"tally-it-kcat-{RUN}", "-X", "auto.offset.reset=earliest",
               "-c", str(len(msgs)), "-q", topic, timeout=90)
    assert sorted(out.split()) == sorted(msgs), f"kcat -G got {out!r}"
    return f"{len(msgs)} records through a consumer group"


CHECKS = [
    check_kcat_metadata,
    check_transactions_read_committed,
    check_consumer_group_commit,
    check_kcat_roundtrip,
    check_kcat_transaction,
    check_kcat_group,
]


def main():
    print(f"kafka_roundtrip: broker {BOOTSTRAP}", flush=True)
    passed = failed = 0
    for check in CHECKS:
        t0 = time.monotonic()
        try:
            note = check()
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {check.__name__}: {type(e).__name__}: {e}", flush=True)
        else:
            passed += 1
            print(f"ok   {check.__name__} ({time.monotonic() - t0:.1f}s): {note}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
