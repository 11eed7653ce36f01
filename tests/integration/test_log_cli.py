#!/usr/bin/env python3
"""integration.log: the tally command's log, no broker needed.

- `tally config check` and `tally replay` with -X log.format=json: every log line is a
  JSON object with ts, level, component and message; a secret given with -X
  (kafka.sasl.password) appears in no output.
- `tally produce` towards an unreachable broker with librdkafka's debug logs
  (kafka.debug=broker,conf) and log.file: librdkafka's lines are JSON in the same file,
  its configuration dump carries no secret, and after the file is renamed SIGHUP makes
  the next lines go to a new file at the configured path.

Environment: TALLY_BIN (default build/tally).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))
SECRETS = ["SECRET1-sasl", "s3cr3t-svc", "s3cr3t-user"]
SECRET_X = ["-X", "kafka.sasl.password=" + SECRETS[0],
            "-X", "kafka.sasl.kerberos.service.name=" + SECRETS[1],
            "-X", "kafka.sasl.username=" + SECRETS[2]]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def json_lines(text, what):
    """Parses every line of text as a log object; returns them."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            fail(f"{what} line {n} is not JSON ({e}): {line!r}")
        for field in ("ts", "level", "component", "message"):
            if not isinstance(obj.get(field), str):
                fail(f"{what} line {n} has no string {field}: {line!r}")
        out.append(obj)
    return out


def no_secret(text, what):
    for s in SECRETS:
        if s in text:
            fail(f"{what} contains the secret {s}")


def main():
    tmp = tempfile.mkdtemp(prefix="tally_log_")
    events = os.path.join(tmp, "events.csv")
    subprocess.run([TALLY, "gen", "--events", "3000", "--output", events], check=True)
    with open(events, "a") as f:
        f.write("a bad row, \"quoted\"\n")

    r = subprocess.run([TALLY, "config", "check", *SECRET_X, "-X", "log.format=json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"config check: {r.stderr}")
    no_secret(r.stdout + r.stderr, "config check")

    # replay: the log on stderr (the summary lines at the end are not log lines)
    r = subprocess.run([TALLY, "replay", "--input", events, "--format", "canonical",
                        "--output", os.path.join(tmp, "out.jsonl"), *SECRET_X,
                        "-X", "log.format=json", "-X", "log.level=debug"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"replay: {r.stderr}")
    no_secret(r.stdout + r.stderr, "replay")
    log = [l for l in r.stderr.splitlines() if l.startswith("{")]
    objs = json_lines("\n".join(log), "replay log")
    if not any(o["level"] == "warn" and "bad row" in o["message"] for o in objs):
        fail(f"replay: no JSON line for the bad row in {r.stderr!r}")

    # produce towards nothing: librdkafka's lines, log.file and SIGHUP
    logfile = os.path.join(tmp, "tally.log")
    p = subprocess.Popen([TALLY, "produce", "--input", events, "--format", "canonical",
                          "--topic", "t", "-X", "kafka.bootstrap.servers=127.0.0.1:1",
                          "-X", "kafka.debug=broker,conf", "-X", "kafka.message.timeout.ms=4000",
                          *SECRET_X, "-X", "log.format=json", "-X", "log.level=debug",
                          "-X", "log.file=" + logfile],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for librdkafka's configuration lines (the first lines checked below) to be in
    # the file, then move it away and ask for a reopen.
    def conf_logged():
        try:
            return any('"facility":"CONF"' in line.replace(" ", "") for line in open(logfile))
        except OSError:
            return False
    deadline = time.time() + 20
    while not conf_logged():
        if time.time() > deadline:
            fail("no librdkafka configuration line in log.file within 20 s")
        time.sleep(0.05)   # poll interval
    os.rename(logfile, logfile + ".1")
    p.send_signal(signal.SIGHUP)
    out, err = p.communicate(timeout=60)
    if p.returncode not in (0, 1):   # 1: nothing delivered, as expected
        fail(f"produce exited with {p.returncode}: {err}")
    no_secret(out + err, "produce output")
    old = open(logfile + ".1").read()
    if not os.path.exists(logfile):
        fail("SIGHUP did not reopen log.file")
    new = open(logfile).read()
    no_secret(old + new, "produce log")
    first, second = json_lines(old, "log before SIGHUP"), json_lines(new, "log after SIGHUP")
    if not second:
        fail("no line after SIGHUP")
    if not any(o["component"] == "librdkafka" and o.get("facility") == "CONF" for o in first):
        fail("no librdkafka configuration line in the log")
    conf = [o["message"] for o in first if o.get("facility") == "CONF"]
    # librdkafka prints sasl.kerberos.service.name; tally counts every sasl.* as secret
    for key in ("sasl.password", "sasl.username", "sasl.kerberos.service.name"):
        lines = [m for m in conf if key + " = " in m]
        if not lines or not all(m.endswith("= [redacted]") for m in lines):
            fail(f"{key} not redacted: {lines}")
    print(f"ok: {len(objs)} replay lines, {len(first)} + {len(second)} produce lines around "
          "SIGHUP, all JSON, no secret")


if __name__ == "__main__":
    main()
