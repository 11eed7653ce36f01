#!/usr/bin/env python3
"""Fixtures shared by the integration tests that need no broker client (kafka_util.py holds
the Kafka and `tally` process helpers).

- csv_events(): the events of a canonical CSV as records of the behavior_event schema;
  write_csv() writes a CSV's header and rows.
- read_properties(): a Java-style .properties file as a dict.
- make_tls(): a CA and a certificate for 127.0.0.1 signed by it, made with openssl.
- free_port(): a local TCP port nothing listens on.
- json_lines(): every line of a JSON log, each checked to be an object with the fields of
  tally's log lines.
- Checks: a test's checks that go on after a failure, each failure printed as "FAIL: ...",
  and the exit message when any failed.
- step_verdict() and steps_summary(): for a test made of named steps, each step's "ok" or
  "FAIL" line with its problems, and the closing count.

- TALLY, SOURCE, TAOBAO: the tally binary (TALLY_BIN), the source tree (TALLY_SOURCE_DIR)
  and the Taobao data beside it (../shared/data/taobao, which may be absent).

Failures are raised as AssertionError with a message meant for the test's FAIL line.
"""

import json
import os
import socket
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
TALLY = os.environ.get("TALLY_BIN", os.path.join(_HERE, "..", "..", "build", "tally"))
SOURCE = os.environ.get("TALLY_SOURCE_DIR", os.path.join(_HERE, "..", ".."))
TAOBAO = os.path.join(SOURCE, "..", "shared", "data", "taobao")


def csv_events(path):
    """[event record] of the canonical CSV at path (`tally gen`'s output): empty optional
    columns are None, propensity is None."""
    import csv
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out.append({"event_id": r["event_id"], "user_id": r["user_id"], "item_id": r["item_id"],
                        "category_id": r["category_id"] or None, "type": r["type"], "ts": int(r["ts"]),
                        "channel": r["channel"] or None,
                        "dwell_ms": int(r["dwell_ms"]) if r["dwell_ms"] else None,
                        "value": float(r["value"]) if r["value"] else None, "propensity": None})
    return out


def write_csv(path, header, rows):
    """Writes header and rows (lines, each with its newline) to path; returns (path, the
    number of rows)."""
    with open(path, "w") as fh:
        fh.write(header)
        fh.writelines(rows)
    return path, len(rows)


def read_properties(path):
    """{key: value} of a .properties file (key=value lines; # comments)."""
    out = {}
    with open(path) as fh:
        for line in fh:
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def make_tls(d):
    """A CA and a certificate for 127.0.0.1 signed by it, in directory d: (ca.pem, srv.pem,
    srv.key)."""
    ca_key, ca, key, csr, cert = (os.path.join(d, n) for n in
                                  ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "san.ext")
    with open(ext, "w") as fh:
        fh.write("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["openssl", "req", "-x509"] + ec + ["-keyout", ca_key, "-out", ca, "-days", "2",
                                                    "-subj", "/CN=tally test CA"],
                ["openssl", "req"] + ec + ["-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                 "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]):
        subprocess.run(cmd, check=True, capture_output=True)
    return ca, cert, key


def free_port():
    """A port on 127.0.0.1 that was free a moment ago (bound, then closed): a server that is
    down."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


LOG_FIELDS = ("ts", "level", "component", "message")


def json_lines(text, what):
    """[object] of every line of text, a log written with log.format=json. AssertionError
    for a line that is not JSON or lacks a string ts, level, component or message."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"{what} line {n} is not JSON ({e}): {line!r}")
        for field in LOG_FIELDS:
            if not isinstance(obj.get(field), str):
                raise AssertionError(f"{what} line {n} has no string {field}: {line!r}")
        out.append(obj)
    return out


class Checks:
    """Checks that go on after a failure: check(ok, msg) prints "FAIL: msg" when not ok and
    keeps it; finish() exits with a message counting the failures, if any."""

    def __init__(self):
        self.failures = []

    def __call__(self, ok, msg):
        if not ok:
            self.failures.append(msg)
            print("FAIL:", msg)

    def finish(self):
        if self.failures:
            sys.exit(f"{len(self.failures)} check(s) failed")


def step_verdict(name, info, problems):
    """Prints a step's line, "ok   NAME: INFO" or "FAIL NAME: INFO", and each of problems
    (strings) indented below it; returns 1 when there is any, else 0."""
    print("%s %s: %s" % ("ok  " if not problems else "FAIL", name, info))
    for p in problems:
        print("     " + p)
    return 1 if problems else 0


def steps_summary(steps, failed):
    """Prints "N passed, M failed" for steps steps of which failed failed; returns the exit
    status, 1 when any failed, else 0."""
    print("%d passed, %d failed" % (steps - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit("fixtures.py is a module for the integration tests")
