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
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fixtures  # noqa: E402
import kafka_util as ku  # noqa: E402

TALLY = ku.TALLY_BIN
SECRETS = ["SECRET1-sasl", "s3cr3t-svc", "s3cr3t-user"]
SECRET_X = ["-X", "kafka.sasl.password=" + SECRETS[0],
            "-X", "kafka.sasl.kerberos.service.name=" + SECRETS[1],
            "-X", "kafka.sasl.username=" + SECRETS[2]]
# The keys whose librdkafka configuration lines must be in the log, redacted.
CONF_KEYS = ("sasl.password", "sasl.username", "sasl.kerberos.service.name")
# Bounds the produce towards nothing (delivery fails after it); see main().
MESSAGE_TIMEOUT_MS = 15000


def fail(msg):
    raise AssertionError(msg)


def no_secret(text, what):
    for s in SECRETS:
        if s in text:
            fail(f"{what} contains the secret {s}")


def main():
    """The checks, in order; the first that fails raises AssertionError."""
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
    objs = fixtures.json_lines("\n".join(log), "replay log")
    if not any(o["level"] == "warn" and "bad row" in o["message"] for o in objs):
        fail(f"replay: no JSON line for the bad row in {r.stderr!r}")

    # produce towards nothing: librdkafka's lines, log.file and SIGHUP. The produce must
    # still be running when SIGHUP comes, and log after it: its first line after the reopen
    # is at the latest the delivery failure kafka.message.timeout.ms after it started (and
    # librdkafka's reconnection debug lines before that). The timeout leaves a wide margin
    # for a loaded machine between the configuration dump and the signal.
    logfile = os.path.join(tmp, "tally.log")
    p = ku.Tally(["produce", "--input", events, "--format", "canonical",
                  "--topic", "t", "-X", "kafka.bootstrap.servers=127.0.0.1:1",
                  "-X", "kafka.debug=broker,conf",
                  "-X", "kafka.message.timeout.ms=%d" % MESSAGE_TIMEOUT_MS,
                  *SECRET_X, "-X", "log.format=json", "-X", "log.level=debug",
                  "-X", "log.file=" + logfile],
                 os.path.join(tmp, "produce.out"), "produce")
    # Wait until librdkafka's configuration lines of every key checked below are in the
    # file (the dump is one line per key: the first CONF line does not mean the last one
    # is written), then move the file away and ask for a reopen.
    def conf_logged():
        try:
            with open(logfile, errors="replace") as fh:
                conf = [line for line in fh if '"facility":"CONF"' in line.replace(" ", "")]
        except OSError:
            return False
        return all(any(key + " = " in line for line in conf) for key in CONF_KEYS)
    # Fails early when produce exits before the lines are there.
    ku.wait_until(conf_logged, 20, f"librdkafka configuration lines of {', '.join(CONF_KEYS)} "
                  "in log.file", running=[p])
    os.rename(logfile, logfile + ".1")
    if not p.running():
        fail(f"produce exited ({p.returncode()}) before SIGHUP could be sent: the reopen is "
             "not tested")
    p.signal(signal.SIGHUP)
    rc = p.wait(60)
    if rc not in (0, 1):   # 1: nothing delivered, as expected
        fail(f"produce exited with {rc}: {ku.tail(p.log_path)}")
    no_secret(p.log(), "produce output")
    # The process has exited (wait returned its status): both files are complete.
    with open(logfile + ".1") as fh:
        old = fh.read()
    if not os.path.exists(logfile):
        fail("SIGHUP did not reopen log.file")
    with open(logfile) as fh:
        new = fh.read()
    no_secret(old + new, "produce log")
    first = fixtures.json_lines(old, "log before SIGHUP")
    second = fixtures.json_lines(new, "log after SIGHUP")
    if not second:
        fail("no line after SIGHUP")
    if not any(o["component"] == "librdkafka" and o.get("facility") == "CONF" for o in first):
        fail("no librdkafka configuration line in the log")
    conf = [o["message"] for o in first if o.get("facility") == "CONF"]
    # librdkafka prints sasl.kerberos.service.name; tally counts every sasl.* as secret
    for key in CONF_KEYS:
        lines = [m for m in conf if key + " = " in m]
        if not lines or not all(m.endswith("= [redacted]") for m in lines):
            fail(f"{key} not redacted: {lines}")
    print(f"ok: {len(objs)} replay lines, {len(first)} + {len(second)} produce lines around "
          "SIGHUP, all JSON, no secret")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
    finally:
        ku.stop_all()
