#!/usr/bin/env python3
"""tally's benchmarks: medians of repeated runs, each beside its peer in the same run.

  bench/run.py engine [--events N] [--users N] [--runs R]
      bench_engine (features + attribution + Avro encoding + RocksDB state, one thread,
      generated events) against the generator alone (--baseline).
  bench/run.py kafka [--events N] [--users N] [--runs R] [-X key=value ...]
      `tally run --until-end` against a bare librdkafka consumer draining the same topic,
      on a real broker started by scripts/kafka-broker.sh.
  bench/run.py pipe [--events N] [--users N] [--runs R] [-X key=value ...]
      The limit of a Kafka-to-Kafka processor: bench_bare_pipe (consume, produce one record
      of the same size per record; at_least_once, and transactional with the offsets every
      100 ms) beside `tally run --until-end` under the same guarantee, on the same backlog,
      taking turns; also the pipe over each of tally's own output topics (kept from a first
      run, whose records and bytes per topic it prints first: the cost of copying tally's
      outputs alone); tally's share of the pipe's throughput per
      guarantee (median of the per-run ratios), and each one's CPU seconds per 1M records
      (utime + stime).
  bench/run.py query [--events N] [--users N] [--runs R] [-X key=value ...]
      GET /v1/attribution of a running `tally run` after it drained N events (defaults:
      model and Markov on): the answer is made per request from the attribution and
      credit-delta topics, so its time is the roll-ups' cost; median of R requests per
      format, beside `tally report` alone over the same records (read once with
      tally consume into a file).
  bench/run.py eos [--events N] [--users N] [--runs R] [-X key=value ...]
      exactly_once against at_least_once: `tally run --until-end` of the same backlog, the
      two alternating on one broker (which goes first alternates too); the median of the
      per-run ratios.
  bench/run.py peer [--events N] [--users N] [--runs R] [-X key=value ...]
      tally run --until-end against its Kafka Streams peer (bench/streams-peer: the same
      rule-based work in Java, one stream thread, RocksDB store per user; built with Maven
      on first use) on one backlog, alternating per run: tally at_least_once, Streams
      at_least_once, tally exactly_once, Streams exactly_once_v2 (which goes first
      alternates too). events/s, CPU seconds per 1M events (utime + stime), peak RSS; the
      ratios per guarantee; the Streams peer's rate over its second half (JIT warm-up).
  bench/run.py peer --check [--events N] [--users N] [--peer-X key=value ...]
      The two on one topic of N generated events (default 10,000) on a fresh broker: their
      interest deltas and attributions must be equal as multisets per user (every field,
      the explanations too, numbers within 1e-9 relative); exits 1 when they are not.
      --peer-X sets a key for the peer alone (e.g. features.alpha=0.6 makes it fail).
  bench/run.py rollup [--events N] [--users N] [--runs R] [-X key=value ...]
      The roll-ups' cost: `tally run --until-end` of one backlog with rollup.topic set (the
      partials sent in every transaction, the aggregator, one Markov chain for the group)
      and without, alternating; events/s and CPU per 1M events, and the median ratio.
  bench/run.py restore [--keys N] [--runs R]
      bench_restore: a compacted changelog partition of N user records (default 5,000,000)
      restored into an empty store, as after a lost disk; keys/s.
  bench/run.py latency [--events N] [--users N] [--runs R] [--seconds S] [-X key=value ...]
      End-to-end latency at half of the maximum throughput: first the maximum (tally run
      --until-end on N backlogged events, as above), then a running `tally run` fed by
      bench_latency at half that rate for S seconds (default 30, the first 5 not counted); p50/p99 of produce call
      -> interest delta visible to a read_committed consumer. --rate R: at R events/s instead.

  bench/run.py memory [--users-list N,N,...] [-X key=value ...]
      Peak RSS against the number of users: `tally replay` (one store, defaults: model and
      Markov on) of 2 generated events per user, for each count (default 100,000,
      1,000,000 and 10,000,000), beside a replay of 1,000 users (what the process needs
      without state); the memory the configuration bounds the state to, state.cache.mb +
      2 x state.memtable.mb + state.block.cache.mb (docs/operations.md, "Memory"), against
      what the runs used above the small one.

Peak RSS and CPU time are each process's own (wait4). Prints a markdown table for docs/benchmarks.md.
Build first: cmake -S . -B build -G Ninja && cmake --build build
"""
import argparse
import collections
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("TALLY_BUILD", os.path.join(ROOT, "build"))


def run_usage(cmd, **kw):
    """Runs cmd with wait4 to get its own peak RSS and CPU time. Returns (stdout, stderr,
    wall, rss_mib, cpu_s), cpu_s being user + system time of the process and its threads."""
    out_f = tempfile.TemporaryFile(mode="w+")
    err_f = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-3000:]}")
    return out, err, wall, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


def run_rss(cmd, **kw):
    """run_usage without the CPU time: (stdout, stderr, wall, rss_mib)."""
    return run_usage(cmd, **kw)[:4]


def kv(line):
    return dict(re.findall(r"(\w+)=([^\s]+)", line))


def engine(a):
    rows = []
    for i in range(a.runs):
        for mode in ("engine", "baseline"):
            cmd = [os.path.join(BUILD, "bench_engine"), "--events", str(a.events),
                   "--users", str(a.users), "--cache-mb", str(a.cache_mb)] + x_args(a.xs)
            if mode == "baseline":
                cmd.append("--baseline")
            out, _, _, rss = run_rss(cmd)
            r = kv(out)
            rows.append((mode, float(r["events_per_s"]), rss))
            print(f"run {i + 1} {mode}: {float(r['events_per_s']):,.0f} events/s, "
                  f"peak RSS {rss:.0f} MiB", file=sys.stderr)
    eng = statistics.median(r[1] for r in rows if r[0] == "engine")
    base = statistics.median(r[1] for r in rows if r[0] == "baseline")
    rss = statistics.median(r[2] for r in rows if r[0] == "engine")
    extra = (", " + ", ".join(a.xs)) if a.xs else ""
    print(f"| engine: {a.events:,} generated events, {a.users:,} users, one thread, "
          f"state.cache.mb={a.cache_mb}{extra} | {eng:,.0f} events/s | generator alone: {base:,.0f} "
          f"events/s (ratio {eng / base:.2f}) | {rss:.0f} MiB |")


@contextlib.contextmanager
def local_broker(prefix):
    """(work directory, broker directory, bootstrap) of a fresh broker; afterwards the
    broker is stopped and the directory removed."""
    work = tempfile.mkdtemp(prefix=prefix)
    broker = os.path.join(work, "kafka")
    script = os.path.join(ROOT, "scripts", "kafka-broker.sh")
    try:
        subprocess.run([script, "start", broker], check=True)
        yield work, broker, open(os.path.join(broker, "bootstrap")).read().strip()
    finally:
        subprocess.run([script, "stop", broker])
        shutil.rmtree(work, ignore_errors=True)


def backlog_topic(work, bootstrap, a, prefix):
    """A topic of a.events generated events (a.users users), 4 partitions."""
    tally = os.path.join(BUILD, "tally")
    topic = prefix + "-" + uuid.uuid4().hex[:8]
    csv = os.path.join(work, "events.csv")
    subprocess.run([tally, "gen", "--events", str(a.events), "--users", str(a.users),
                    "--output", csv], check=True)
    create_topic(bootstrap, topic)
    subprocess.run([tally, "produce", "--input", csv, "--format", "canonical", "--topic",
                    topic, "-X", f"kafka.bootstrap.servers={bootstrap}"], check=True)
    return topic


def settle(broker, idle=0.1, timeout_s=120):
    """Lets the previous phase's work finish before a measured one: its writes reach the
    disk (sync) and the broker's CPU use over a second falls below `idle` of one core."""
    os.sync()
    pid = open(os.path.join(broker, "broker.pid")).read().strip()
    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c0, t0 = cpu(), time.monotonic()
        time.sleep(1)   # the sampling interval of the broker's CPU use
        if (cpu() - c0) / (time.monotonic() - t0) < idle:
            return
    print(f"note: the broker did not settle below {idle:.0%} CPU in {timeout_s} s", file=sys.stderr)


def delete_topics(bootstrap, names):
    """Deletes a finished run's topics, so that the broker does not go on compacting or
    holding them (gigabytes of changelog after a drain) while the next run is measured."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})   # errors only
    for f in admin.delete_topics(list(names), operation_timeout=30).values():
        try:
            f.result(timeout=60)
        except Exception as e:
            if "UNKNOWN_TOPIC_OR_PART" not in str(e):   # else: a topic the run never wrote
                print(f"note: {e}", file=sys.stderr)


def output_topics(prefix):
    """The topics one `tally run` writes, named after prefix."""
    return {o: f"{prefix}-{o}" for o in ("interest", "attribution", "credit", "dlq", "changelog")}


def tally_args(bootstrap, topic, group, state, outs):
    """`tally run`'s settings for one run: input, group, state directory, outputs."""
    kvs = [f"kafka.bootstrap.servers={bootstrap}", f"input.topics={topic}",
           f"kafka.group.id={group}", f"state.dir={state}",
           f"output.interest.topic={outs['interest']}",
           f"output.attribution.topic={outs['attribution']}",
           f"output.credit.topic={outs['credit']}", f"dlq.topic={outs['dlq']}",
           f"state.changelog.topic={outs['changelog']}"]
    return x_args(kvs)


def settings_text(a, default="defaults"):
    """The run's -X settings as a result row names them; default when there are none."""
    return ", ".join(a.xs) if a.xs else default


def rotate(i, names):
    """The order of the measured configurations in run i: each goes first in turn, so that
    none is always measured first."""
    k = i % len(names)
    return names[k:] + names[:k]


def alternate(i, first, second):
    """rotate of two: first goes first in even runs, second in odd ones."""
    return rotate(i, [first, second])


def x_args(settings):
    return [arg for setting in settings for arg in ("-X", setting)]


def create_topic(bootstrap, topic):
    """Creates topic with the broker's defaults (4 partitions): asking for its metadata
    makes the test broker create it."""
    subprocess.run(["kcat", "-b", bootstrap, "-L", "-t", topic], check=True,
                   stdout=subprocess.DEVNULL)


Drain = collections.namedtuple("Drain", "rate rss cpu")   # events/s, peak RSS MiB, CPU s


def tally_drain(a, bootstrap, topic, work, extra, outs=None):
    """tally run --until-end of topic: a Drain. Its output topics are deleted afterwards,
    unless they are given (outs, as output_topics() names them) for the caller to read."""
    g = uuid.uuid4().hex[:8]
    state = os.path.join(work, "state-" + g)
    keep = outs is not None
    outs = outs or output_topics(f"{topic}-{g}")
    _, err, wall, rss, cpu = run_usage(
        [os.path.join(BUILD, "tally"), "run", "--until-end"] +
        tally_args(bootstrap, topic, f"tally-{g}", state, outs) +
        x_args(["log.level=warn", "http.listen="] + a.xs + extra))
    if not keep:
        delete_topics(bootstrap, outs.values())
    m = re.search(r"run: (\d+) events", err)
    if not m or int(m.group(1)) != a.events:
        sys.exit(f"tally run processed {m.group(1) if m else '?'} of {a.events} events:\n{err[-2000:]}")
    shutil.rmtree(state, ignore_errors=True)
    return Drain(a.events / wall, rss, cpu)


def kafka(a):
    with local_broker("tally-bench-") as (work, _, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "bench")
        bare, tl, rss_t = [], [], []
        for i in range(a.runs):
            g = uuid.uuid4().hex[:8]
            out, _, wall, _ = run_rss([os.path.join(BUILD, "bench_bare_consumer"), bootstrap,
                                       topic, "bare-" + g])
            bare.append(int(kv(out)["records"]) / wall)
            rate, rss, _ = tally_drain(a, bootstrap, topic, work, [f"state.cache.mb={a.cache_mb}"])
            tl.append(rate)
            rss_t.append(rss)
            print(f"run {i + 1}: bare consumer {bare[-1]:,.0f} records/s, tally run "
                  f"{tl[-1]:,.0f} events/s, peak RSS {rss:.0f} MiB", file=sys.stderr)
        b, t = statistics.median(bare), statistics.median(tl)
        mode = settings_text(a)
        print(f"| kafka: tally run --until-end ({mode}), {a.events:,} events, {a.users:,} "
              f"users, 4 partitions, local broker | {t:,.0f} events/s | bare librdkafka "
              f"consumer: {b:,.0f} records/s (ratio {t / b:.2f}) | "
              f"{statistics.median(rss_t):.0f} MiB |")


def start_tally_http(a, work, bootstrap, topic, name, outs, timeout_s=60):
    """A running `tally run` of topic with its HTTP server on a free port, ready:
    (process, port). The caller stops it (SIGTERM)."""
    log_path = os.path.join(work, name + ".log")
    with open(log_path, "w") as log:
        p = subprocess.Popen([os.path.join(BUILD, "tally"), "run"] +
                             tally_args(bootstrap, topic, name, os.path.join(work, "state-" + name),
                                        outs) +
                             x_args(["http.listen=127.0.0.1:0"] + a.xs),
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        return p, wait_http_ready(log_path, p, timeout_s)
    except BaseException:
        p.terminate()
        p.wait(60)
        raise


def wait_http_ready(log_path, proc, timeout_s=60):
    """Waits for `tally run` to log its HTTP port and answer /readyz 200."""
    import urllib.request
    deadline = time.monotonic() + timeout_s
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("tally run exited:\n" + open(log_path).read()[-2000:])
        if port is None:
            m = re.search(r"listening on \S+ \(port (\d+)\)", open(log_path).read())
            port = int(m.group(1)) if m else None
        if port is not None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2) as r:
                    if r.status == 200:
                        return port
            except OSError:
                pass
        time.sleep(0.05)   # poll interval
    sys.exit("tally run not ready within %d s" % timeout_s)


def latency(a):
    """The maximum first (a backlog drained), then the latency runs, on one broker (warmed
    up by the first phase). Each latency run discards its first --warmup seconds."""
    with local_broker("tally-latency-") as (work, broker, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "max")
        maxes = []
        for i in range(a.runs):
            maxes.append(tally_drain(a, bootstrap, topic, work, []).rate)
            print(f"maximum run {i + 1}: {maxes[-1]:,.0f} events/s", file=sys.stderr)
        maximum = statistics.median(maxes)
        rate = a.rate or int(maximum / 2)
        p50s, p99s, maxlat = [], [], []
        for i in range(a.runs):
            settle(broker)
            g = uuid.uuid4().hex[:8]
            tin, outs = "lat-in-" + g, output_topics("lat-out-" + g)
            # Every topic exists before the run (as in production): the first transaction
            # then does not wait for topics the broker creates on first use.
            for t in [tin] + [outs[o] for o in ("interest", "attribution", "credit", "dlq")]:
                create_topic(bootstrap, t)
            p, _ = start_tally_http(a, work, bootstrap, tin, f"lat-{g}", outs)
            try:
                out = subprocess.run([os.path.join(BUILD, "bench_latency"), bootstrap, tin,
                                      outs["interest"], str(rate), str(a.seconds), str(a.warmup)],
                                     check=True, capture_output=True, text=True).stdout
            finally:
                p.terminate()   # SIGTERM: tally commits and stops
                p.wait(60)
            delete_topics(bootstrap, [tin] + list(outs.values()))
            r = kv(out)
            p50s.append(float(r["p50_ms"]))
            p99s.append(float(r["p99_ms"]))
            maxlat.append(float(r["max_ms"]))
            print(f"latency run {i + 1} at {rate:,} events/s: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} "
                  f"ms, max {r['max_ms']} ms ({r['events']} events)", file=sys.stderr)
        mode = settings_text(a, "defaults (exactly_once, commit.interval.ms=100)")
        at = f"{a.rate:,} events/s (maximum {maximum:,.0f})" if a.rate else \
            f"half of {maximum:,.0f} events/s"
        print(f"| latency: produce -> interest delta visible read_committed ({mode}), at {at} for "
              f"{a.seconds} s ({a.warmup} s warm-up not counted), local broker | p50 "
              f"{statistics.median(p50s):.0f} ms | p99 "
              f"{statistics.median(p99s):.0f} ms | max {statistics.median(maxlat):.0f} ms |")


def eos(a):
    with local_broker("tally-eos-") as (work, _, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "eos")
        rates = {"at_least_once": [], "exactly_once": []}
        ratios = []
        for i in range(a.runs):
            order = alternate(i, "at_least_once", "exactly_once")
            got = {}
            for g in order:
                got[g] = tally_drain(a, bootstrap, topic, work, [f"processing.guarantee={g}"]).rate
                rates[g].append(got[g])
            ratios.append(got["exactly_once"] / got["at_least_once"])
            print(f"run {i + 1}: at_least_once {got['at_least_once']:,.0f} events/s, exactly_once "
                  f"{got['exactly_once']:,.0f} events/s (ratio {ratios[-1]:.2f})", file=sys.stderr)
        mode = settings_text(a)
        print(f"| exactly_once vs at_least_once ({mode}), {a.events:,} events, {a.users:,} users, "
              f"4 partitions, local broker, {a.runs} alternating runs | "
              f"{statistics.median(rates['exactly_once']):,.0f} / "
              f"{statistics.median(rates['at_least_once']):,.0f} events/s | median ratio "
              f"{statistics.median(ratios):.2f} (runs: {', '.join(f'{r:.2f}' for r in ratios)}) |")


def rollup(a):
    """tally run --until-end with and without rollup.topic (the roll-up partials in every
    transaction, the aggregator, the shared Markov chain, the shared model unless
    -X model.shared=false), alternating on one backlog."""
    with local_broker("tally-rollup-") as (work, _, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "rollup")
        got = {"without": [], "with": []}
        ratios = []
        for i in range(a.runs):
            order = alternate(i, "without", "with")
            run = {}
            for mode in order:
                extra = []
                if mode == "with":
                    g = uuid.uuid4().hex[:8]
                    extra = [f"rollup.topic=bench-rollups-{g}", f"kafka.group.id=bench-rollup-{g}"]
                run[mode] = tally_drain(a, bootstrap, topic, work, extra)
                if mode == "with":
                    delete_topics(bootstrap, [f"bench-rollups-{g}", f"bench-rollup-{g}-rollup-partials",
                                              f"bench-rollup-{g}-rollup-state", f"bench-rollup-{g}-model"])
                got[mode].append(run[mode])
            ratios.append(run["with"].rate / run["without"].rate)
            print(f"run {i + 1}: without roll-ups {run['without'].rate:,.0f} events/s, with "
                  f"{run['with'].rate:,.0f} (ratio {ratios[-1]:.2f})", file=sys.stderr)
        mode = settings_text(a)

        def med(k, f):
            return statistics.median(getattr(d, f) for d in got[k])
        print(f"| rollup.topic on vs off ({mode}), {a.events:,} events, {a.users:,} users, "
              f"4 partitions, local broker, {a.runs} alternating runs | "
              f"{med('with', 'rate'):,.0f} / {med('without', 'rate'):,.0f} events/s; CPU "
              f"{med('with', 'cpu') * 1e6 / a.events:.1f} / {med('without', 'cpu') * 1e6 / a.events:.1f} "
              f"s per 1M events | median ratio {statistics.median(ratios):.2f} "
              f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}) |")


def bare_pipe(bootstrap, topic, group, out_topic, guarantee):
    """bench_bare_pipe over topic: (records/s, CPU s, records), its output deleted. Its
    time and CPU are the whole process's, as tally's are (start and group join included)."""
    out, _, wall, _, cpu = run_usage([os.path.join(BUILD, "bench_bare_pipe"), bootstrap, topic,
                                      group, out_topic, guarantee])
    n = int(kv(out)["records"])
    delete_topics(bootstrap, [out_topic])
    return n / wall, cpu, n


def topic_sizes(bootstrap, topic):
    """(records, bytes of the values, median value size) of topic, read to its end
    (read_committed)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "sizes-" + uuid.uuid4().hex[:8],
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "enable.partition.eof": True, "log_level": 3})
    parts = c.list_topics(topic, timeout=30).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    sizes, ended = [], set()
    while len(ended) < len(parts):
        for m in c.consume(10000, timeout=5):
            if not m.error():
                sizes.append(len(m.value() or b""))
            elif m.error().code() == -191:   # _PARTITION_EOF
                ended.add(m.partition())
    c.close()
    sizes.sort()
    return len(sizes), sum(sizes), sizes[len(sizes) // 2] if sizes else 0


def pipe(a):
    """tally beside bare pipes on one broker: one over the input events, and one over each
    of tally's own output topics (kept from a first tally run under exactly_once): the
    interest deltas (1 per event), the changelog (exactly_once only: tally writes none at
    at_least_once) and the attributions. Together those are what consuming and producing
    tally's outputs costs, with nothing else done."""
    with local_broker("tally-pipe-") as (work, broker, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "pipe")
        outs = output_topics(f"{topic}-outputs")
        tally_drain(a, bootstrap, topic, work, [], outs=outs)
        kept = {"deltas": outs.pop("interest"), "changelog": outs.pop("changelog"),
                "attributions": outs.pop("attribution")}
        delete_topics(bootstrap, outs.values())
        sizes = []
        for name, t in [("input events", topic)] + list(kept.items()):
            n, size, med = topic_sizes(bootstrap, t)
            sizes.append(f"{name} {n:,} records, {size / 1e6:.0f} MB, median {med} B")
        print(f"| what one tally run under exactly_once ({settings_text(a)}) read and wrote: "
              f"{'; '.join(sizes)} |")
        res = {}
        for g in ("at_least_once", "exactly_once"):
            runs = []   # per run: {who: (rate, cpu s per 1M records)}, "outputs" per 1M events
            for i in range(a.runs):
                grp = uuid.uuid4().hex[:8]
                got, out_cpu = {}, 0.0
                # at_least_once, tally writes no changelog
                whos = ["pipe", "deltas", "changelog", "attributions", "tally"]
                for who in rotate(i, [w for w in whos if g == "exactly_once" or w != "changelog"]):
                    settle(broker)
                    if who == "tally":
                        d = tally_drain(a, bootstrap, topic, work, [f"processing.guarantee={g}"])
                        got["tally"] = (d.rate, d.cpu * 1e6 / a.events)
                        continue
                    src = kept.get(who, topic)
                    rate, cpu, n = bare_pipe(bootstrap, src, f"{who}-{grp}", f"{src}-{who}-{grp}", g)
                    got[who] = (rate, cpu * 1e6 / n)
                    if who != "pipe":
                        out_cpu += cpu
                got["outputs"] = (0, out_cpu * 1e6 / a.events)
                runs.append(got)
                print(f"{g} run {i + 1}: bare pipe {got['pipe'][0]:,.0f} records/s "
                      f"({got['pipe'][1]:.2f} CPU s per 1M), over tally's deltas "
                      f"{got['deltas'][0]:,.0f} ({got['deltas'][1]:.2f}), over all of tally's "
                      f"outputs {got['outputs'][1]:.2f} CPU s per 1M events, tally "
                      f"{got['tally'][0]:,.0f} events/s ({got['tally'][1]:.2f} CPU s per 1M; "
                      f"ratio {got['tally'][0] / got['pipe'][0]:.2f})", file=sys.stderr)
            res[g] = runs
        mode = settings_text(a)
        for g, runs in res.items():
            def med(who, k):
                return statistics.median(r[who][k] for r in runs)
            ratios = [r["tally"][0] / r["pipe"][0] for r in runs]
            print(f"| pipe, {g} ({mode}), {a.events:,} events, {a.users:,} users, 4 partitions, "
                  f"local broker, {a.runs} alternating runs | tally {med('tally', 0):,.0f} "
                  f"events/s, {med('tally', 1):.2f} CPU s per 1M | bare pipe "
                  f"{med('pipe', 0):,.0f} records/s, {med('pipe', 1):.2f} CPU s per 1M; over "
                  f"tally's interest deltas {med('deltas', 0):,.0f} records/s, "
                  f"{med('deltas', 1):.2f} CPU s per 1M; over all of tally's outputs (deltas, "
                  f"{'changelog, ' if g == 'exactly_once' else ''}attributions, one pipe each) "
                  f"{med('outputs', 1):.2f} CPU s per 1M "
                  f"events | median ratio {statistics.median(ratios):.2f} (runs: "
                  f"{', '.join(f'{x:.2f}' for x in ratios)}) |")


def query(a):
    import urllib.request
    tally = os.path.join(BUILD, "tally")
    with local_broker("tally-query-") as (work, _, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "query")
        g = uuid.uuid4().hex[:8]
        outs = output_topics("query-out-" + g)
        p, port = start_tally_http(a, work, bootstrap, topic, f"query-{g}", outs, 120)
        try:

            def metric(name, label):
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port) as r:
                    text = r.read().decode()
                return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                           if l.startswith(name) and label in l)
            deadline = time.monotonic() + 600
            while metric("tally_events_total", "") < a.events:   # the backlog drained
                if time.monotonic() > deadline:
                    sys.exit("tally run did not drain the backlog in 600 s")
                time.sleep(0.5)   # poll interval of the drain
            settled = None
            while True:   # and the last transaction's outputs counted
                now = (metric("tally_outputs_total", 'output="attribution"'),
                       metric("tally_outputs_total", 'output="credit_delta"'))
                if now == settled:
                    break
                settled = now
                time.sleep(2)   # the metrics tick is 1 s
            n_att, n_cd = settled
            rows = {}
            for fmt in ("json", "html"):
                times = []
                for _ in range(a.runs):
                    t0 = time.perf_counter()
                    with urllib.request.urlopen("http://127.0.0.1:%d/v1/attribution?by=channel&"
                                                "window=day&format=%s" % (port, fmt), timeout=600) as r:
                        body = r.read()
                    times.append(time.perf_counter() - t0)
                rows[fmt] = (statistics.median(times), len(body))
                print(f"/v1/attribution format={fmt}: {statistics.median(times):.2f} s "
                      f"(runs {', '.join(f'{t:.2f}' for t in times)}), {len(body):,} bytes",
                      file=sys.stderr)
            consumed = os.path.join(work, "outputs.jsonl")
            with open(consumed, "w") as f:
                for t in (outs["attribution"], outs["credit"]):
                    subprocess.run([tally, "consume", "--topic", t, "--until-end", "-X",
                                    f"kafka.bootstrap.servers={bootstrap}", "-X", "log.level=warn"],
                                   stdout=f, check=True)
            rep = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                subprocess.run([tally, "report", "--input", consumed, "--by", "channel", "--window",
                                "day", "--format", "json"], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                rep.append(time.perf_counter() - t0)
        finally:
            p.terminate()
            p.wait(60)
        mode = settings_text(a)
        print(f"| query: GET /v1/attribution?by=channel&window=day after {a.events:,} events "
              f"({mode}): {n_att:,.0f} attributions and {n_cd:,.0f} credit deltas on the topics, "
              f"local broker, median of {a.runs} | json {rows['json'][0]:.2f} s, html "
              f"{rows['html'][0]:.2f} s | tally report alone over the same records: "
              f"{statistics.median(rep):.2f} s |")


PEER = os.path.join(ROOT, "bench", "streams-peer")
RULE_BASED = ["model.enabled=false", "markov.enabled=false"]
# tally's processing.guarantee -> the Streams peer's processing.guarantee
STREAMS_GUARANTEE = {"at_least_once": "at_least_once", "exactly_once": "exactly_once_v2"}
PEER_JAVA_OPTS = os.environ.get("TALLY_PEER_JAVA_OPTS", "").split()


def peer_classpath():
    """The Streams peer's classpath, built with Maven first when absent or out of date."""
    return subprocess.run([os.path.join(PEER, "build.sh")], check=True, stdout=subprocess.PIPE,
                          text=True).stdout.strip()


def peer_drain(a, cp, bootstrap, topic, work, guarantee, outs=None):
    """The Streams peer (bench/streams-peer) draining topic under tally's `guarantee`, whole
    process timed as tally_drain's: (Drain, its closing line as a dict). Its outputs and
    changelog are deleted afterwards, unless outs are given for the caller to read."""
    app = "peer-" + uuid.uuid4().hex[:8]
    keep = outs is not None
    outs = outs or output_topics(f"{topic}-{app}")
    for t in (outs["interest"], outs["attribution"]):
        create_topic(bootstrap, t)
    state = os.path.join(work, "state-" + app)
    # the rule-based stages' keys of -X go to the peer too, then its own (--peer-X)
    xs = [x for x in a.xs if x.startswith(("features.", "attribution."))] + a.peer_xs
    out, err, wall, rss, cpu = run_usage(
        ["java"] + PEER_JAVA_OPTS + ["-cp", cp, "tally.peer.StreamsPeer", "--bootstrap", bootstrap,
                                     "--input", topic, "--application-id", app, "--state-dir", state,
                                     "--guarantee", STREAMS_GUARANTEE[guarantee],
                                     "--interest-topic", outs["interest"],
                                     "--attribution-topic", outs["attribution"],
                                     "--schema-dir", os.path.join(ROOT, "schemas")] + x_args(xs))
    if not keep:
        delete_topics(bootstrap, [outs["interest"], outs["attribution"], app + "-users-changelog"])
    shutil.rmtree(state, ignore_errors=True)
    r = kv(out)
    if int(r.get("events", -1)) != a.events:
        sys.exit(f"the Streams peer processed {r.get('events', '?')} of {a.events} events:\n"
                 f"{out}{err[-2000:]}")
    return Drain(a.events / wall, rss, cpu), r


def peer_check(a, cp):
    """tally run --until-end (rule-based, exactly_once) and the Streams peer (exactly_once_v2)
    over one topic on a fresh broker; their interest deltas and attributions, read
    read_committed and decoded, must be equal as multisets per user (compare.py: every field,
    explanations too, numbers within 1e-9 relative). Exits 1 when they are not."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import compare
    import kafka_util
    with local_broker("tally-peer-check-") as (work, _, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "check")
        outs = {"tally": output_topics(topic + "-tally"), "Streams": output_topics(topic + "-peer")}
        tally_drain(a, bootstrap, topic, work, RULE_BASED + ["processing.guarantee=exactly_once"],
                    outs["tally"])
        peer_drain(a, cp, bootstrap, topic, work, "exactly_once", outs["Streams"])
        kafka, schemas = kafka_util.Kafka(bootstrap), kafka_util.load_schemas()
        problems, by_user = [], {}
        try:
            for who, o in outs.items():
                for t, sid in ((o["interest"], 2), (o["attribution"], kafka_util.ATTRIBUTION_ID)):
                    recs = kafka_util.decode_outputs(kafka.read_all(t), sid, schemas[sid], t, problems)
                    print(f"{who}: {len(recs):,} records on {t}", file=sys.stderr)
                    for r in recs:
                        by_user.setdefault(r["user_id"], {"tally": [], "Streams": []})[who].append(r)
        finally:
            kafka.close()
        differ = 0
        for user, got in sorted(by_user.items()):
            p = compare.compare(got["tally"], got["Streams"], tol=1e-9, exact_explanation=True)
            if p:
                differ += 1
                problems += [f"user {user}: {x}" for x in p[:5]] if differ <= 5 else []
        n = {w: sum(len(g[w]) for g in by_user.values()) for w in ("tally", "Streams")}
        print(f"peer check: {a.events:,} events, {len(by_user):,} users with outputs; records: "
              f"tally {n['tally']:,}, Streams {n['Streams']:,}; users whose interest deltas and "
              f"attributions differ: {differ}")
        if problems:
            sys.exit("peer check FAILED:\n" + "\n".join(problems[:40]))
        print("peer check: equal (every field, explanations too, numbers within 1e-9 relative)")


def peer(a):
    """tally run --until-end (rule-based) against the Kafka Streams peer on one backlog, per run
    alternating under each guarantee (which goes first alternates too)."""
    cp = peer_classpath()
    if a.check:
        return peer_check(a, cp)
    with local_broker("tally-peer-") as (work, broker, bootstrap):
        topic = backlog_topic(work, bootstrap, a, "peer")
        res = {(who, g): [] for g in STREAMS_GUARANTEE for who in ("tally", "Streams")}
        warm = []   # the Streams peer's rate over its second half against its whole run
        for i in range(a.runs):
            for g in STREAMS_GUARANTEE:
                for who in alternate(i, "tally", "Streams"):
                    settle(broker)
                    if who == "tally":
                        d = tally_drain(a, bootstrap, topic, work,
                                        RULE_BASED + [f"processing.guarantee={g}"])
                    else:
                        d, r = peer_drain(a, cp, bootstrap, topic, work, g)
                        tenths = [float(x) for x in r["tenths"].split(",")]
                        warm.append((g, a.events / 2 / (tenths[9] - tenths[4]),
                                     a.events / float(r["seconds"]), d.rate))
                    res[(who, g)].append(d)
                    print(f"run {i + 1} {who} {g}: {d.rate:,.0f} events/s, "
                          f"{d.cpu * 1e6 / a.events:.2f} CPU s per 1M events, peak RSS {d.rss:.0f} MiB",
                          file=sys.stderr)
        for g, second, processing, whole in warm:
            print(f"Streams {g}: second half {second:,.0f} events/s, first to last record "
                  f"{processing:,.0f}, whole process {whole:,.0f}", file=sys.stderr)
        print(f"| system | guarantee | events/s | CPU s per 1M events | peak RSS MiB |   "
              f"({a.events:,} events, {a.users:,} users, 4 partitions, one local broker, medians "
              f"of {a.runs} runs)")
        print("|---|---|---:|---:|---:|")
        for (who, g), ds in res.items():
            name = STREAMS_GUARANTEE[g] if who == "Streams" else g
            print(f"| {who} | {name} | {statistics.median(d.rate for d in ds):,.0f} | "
                  f"{statistics.median(d.cpu * 1e6 / a.events for d in ds):.2f} | "
                  f"{statistics.median(d.rss for d in ds):.0f} |")
        for g in STREAMS_GUARANTEE:
            t, p = res[("tally", g)], res[("Streams", g)]
            rate = [x.rate / y.rate for x, y in zip(t, p)]
            cpu = [y.cpu / x.cpu for x, y in zip(t, p)]
            print(f"{g}: tally/Streams throughput {statistics.median(rate):.1f}x (runs: "
                  f"{', '.join(f'{x:.1f}' for x in rate)}); Streams/tally CPU per event "
                  f"{statistics.median(cpu):.1f}x (runs: {', '.join(f'{x:.1f}' for x in cpu)})")
        for g in STREAMS_GUARANTEE:
            w = [x for x in warm if x[0] == g]
            print(f"Streams {STREAMS_GUARANTEE[g]} warm-up: second half of the records "
                  f"{statistics.median(x[1] for x in w):,.0f} events/s, first to last record "
                  f"{statistics.median(x[2] for x in w):,.0f}, whole process "
                  f"{statistics.median(x[3] for x in w):,.0f} (medians)")


def restore(a):
    with local_broker("tally-restore-") as (_, _, bootstrap):
        rates, rss = [], []
        for i in range(a.runs):
            out, _, _, r = run_rss([os.path.join(BUILD, "bench_restore"), bootstrap, "--keys", str(a.keys)])
            rates.append(float(kv(out)["keys_per_s"]))
            rss.append(r)
            print(f"run {i + 1}: {rates[-1]:,.0f} keys/s", file=sys.stderr)
        print(f"| restore: {a.keys:,} changelog records ({kv(out)['value_bytes']} bytes each) into an empty "
              f"store, local broker | {statistics.median(rates):,.0f} keys/s | "
              f"{statistics.median(rss):.0f} MiB |")


def memory(a):
    counts = [int(x) for x in a.users_list.split(",")]
    conf = {"state.cache.mb": 256, "state.memtable.mb": 64, "state.block.cache.mb": 32}
    for x in a.xs:
        k, _, v = x.partition("=")
        if k in conf:
            conf[k] = int(v)
    bound = conf["state.cache.mb"] + 2 * conf["state.memtable.mb"] + conf["state.block.cache.mb"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tally-memory-") as d:
        for users in [1000] + counts:
            csv = os.path.join(d, "events.csv")
            subprocess.run([os.path.join(BUILD, "tally"), "gen", "--events", str(2 * users), "--users",
                            str(users), "--output", csv], check=True, stdout=subprocess.DEVNULL)
            state = os.path.join(d, "state-%d" % users)
            cmd = [os.path.join(BUILD, "tally"), "replay", "--input", csv, "--format", "canonical",
                   "--output", os.devnull, "--quiet", "-X", "state.dir=" + state] + x_args(a.xs)
            _, _, wall, rss = run_rss(cmd)
            rows.append((users, rss, wall))
            print(f"{users:,} users: peak RSS {rss:.0f} MiB, {wall:.0f} s", file=sys.stderr)
            shutil.rmtree(state, ignore_errors=True)
            os.remove(csv)
    base = rows[0][1]
    print(f"configured bound on the state's memory: {bound} MiB ({conf})")
    print("| users | events | peak RSS (MiB) | above 1,000 users (MiB) | per million users (MiB) | within the bound |")
    print("|---|---|---|---|---|---|")
    for users, rss, _ in rows[1:]:
        above = rss - base
        print(f"| {users:,} | {2 * users:,} | {rss:.0f} | {above:.0f} | {above / (users / 1e6):.0f} | "
              f"{'yes' if above <= bound else 'NO'} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["engine", "kafka", "latency", "restore", "eos", "pipe", "query",
                                     "peer", "rollup", "memory"])
    ap.add_argument("--check", action="store_true",
                    help="peer: the equality check instead (10,000 events by default)")
    ap.add_argument("--peer-X", dest="peer_xs", action="append", default=[], metavar="KEY=VALUE",
                    help="peer: a key for the Streams peer alone (a differing one makes --check fail)")
    ap.add_argument("--keys", type=int, default=5_000_000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rate", type=int, default=0, help="latency: this rate instead of half the maximum")
    ap.add_argument("--events", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache-mb", type=int, default=1024)
    ap.add_argument("--users-list", default="100000,1000000,10000000",
                    help="memory: the user counts")
    ap.add_argument("-X", dest="xs", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration key for tally (e.g. model.enabled=false)")
    a = ap.parse_args()
    if a.what == "memory":
        memory(a)
    elif a.what == "engine":
        a.events = a.events or 10_000_000
        a.users = a.users or 1_000_000
        engine(a)
    else:
        a.events = a.events or (10_000 if a.check else 1_000_000)
        a.users = a.users or (1_000 if a.check else 100_000)
        {"kafka": kafka, "latency": latency, "restore": restore, "eos": eos, "pipe": pipe,
         "query": query, "peer": peer, "rollup": rollup}[a.what](a)


if __name__ == "__main__":
    main()
