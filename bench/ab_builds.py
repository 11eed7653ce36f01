#!/usr/bin/env python3
"""Two builds of tally side by side: `tally run --until-end` of one backlog, alternating
runs of each build on one fresh broker (which goes first alternates too), each waiting for
the broker to settle; events/s and CPU seconds (utime + stime) per 1M events, medians.

  bench/ab_builds.py BEFORE_DIR AFTER_DIR [--events N] [--users N] [--runs R] [-X key=value ...]

BEFORE_DIR and AFTER_DIR are build directories (each holding a `tally`). The settings of
`tally run` are bench/run.py's; -X adds to them (e.g. processing.guarantee=at_least_once,
model.enabled=false).
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
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("-X", dest="xs", action="append", default=[])
    a = ap.parse_args()
    builds = {"before": a.before, "after": a.after}
    got = {k: [] for k in builds}
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
    for name in builds:
        rate = statistics.median(d.rate for d in got[name])
        cpu = statistics.median(d.cpu * 1e6 / a.events for d in got[name])
        print(f"| {name} ({builds[name]}) | {rate:,.0f} events/s | {cpu:.2f} CPU s per 1M | "
              f"{R.settings_text(a)}, {a.events:,} events, {a.users:,} users, {a.runs} runs each |")


if __name__ == "__main__":
    main()
