#!/usr/bin/env python3
"""Two builds of tally side by side: `tally run --until-end` of one backlog, alternating
runs of each build on one fresh broker (which goes first alternates too), each waiting for
the broker to settle; events/s and CPU seconds (utime + stime) per 1M events, medians.

  bench/ab_builds.py BEFORE_DIR AFTER_DIR [--events N] [--users N] [--runs R] [-X key=value ...]
  bench/ab_builds.py --engine BEFORE_DIR AFTER_DIR [--events N] [--users N] [--cache-mb M] ...

BEFORE_DIR and AFTER_DIR are build directories (each holding a `tally`). The settings of
`tally run` are bench/run.py's; -X adds to them (e.g. processing.guarantee=at_least_once,
model.enabled=false). With --engine, each build's `bench_engine` instead (no broker; by
default 10M events, 1M users, state.cache.mb=2048, as `bench/run.py engine` runs it), the
CPU seconds being the whole process's (its RocksDB threads too).
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--events", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--engine", action="store_true", help="bench_engine instead of tally run")
    ap.add_argument("--cache-mb", type=int, default=2048, help="--engine: state.cache.mb")
    ap.add_argument("-X", dest="xs", action="append", default=[])
    a = ap.parse_args()
    a.events = a.events or (10000000 if a.engine else 1000000)
    a.users = a.users or (1000000 if a.engine else 100000)
    builds = {"before": a.before, "after": a.after}
    got = {k: [] for k in builds}
    if a.engine:
        engine(a, builds, got)
        return
    with R.local_broker("tally-ab-") as (work, broker, bootstrap):
        topic = R.backlog_topic(work, bootstrap, a, "ab")
        for i in range(a.runs):
            for name in R.alternate(i, "before", "after"):
                R.settle(broker)
                R.BUILD = builds[name]   # the build tally_drain runs
                d = R.tally_drain(a, bootstrap, topic, work, [])
                got[name].append(d)
                print(f"run {i + 1} {name}: {d.rate:,.0f} events/s, "
                      f"{d.cpu * 1e6 / a.events:.2f} CPU s per 1M", file=sys.stderr)
    report(a, builds, got)


def engine(a, builds, got):
    """bench_engine of each build, alternating (which goes first alternates too)."""
    for i in range(a.runs):
        for name in R.alternate(i, "before", "after"):
            out, _, wall, rss, cpu = R.run_usage(
                [os.path.join(builds[name], "bench_engine"), "--events", str(a.events), "--users",
                 str(a.users), "--cache-mb", str(a.cache_mb)] + R.x_args(a.xs))
            d = R.Drain(float(R.kv(out)["events_per_s"]), rss, cpu)
            got[name].append(d)
            print(f"run {i + 1} {name}: {d.rate:,.0f} events/s, "
                  f"{d.cpu * 1e6 / a.events:.2f} CPU s per 1M, peak RSS {rss:.0f} MiB", file=sys.stderr)
    report(a, builds, got)


def report(a, builds, got):
    for name in builds:
        rate = statistics.median(d.rate for d in got[name])
        cpu = statistics.median(d.cpu * 1e6 / a.events for d in got[name])
        print(f"| {name} ({builds[name]}) | {rate:,.0f} events/s | {cpu:.2f} CPU s per 1M | "
              f"{'bench_engine, ' if a.engine else ''}{R.settings_text(a)}, {a.events:,} events, "
              f"{a.users:,} users, {a.runs} runs each |")


if __name__ == "__main__":
    main()
