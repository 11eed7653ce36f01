#!/usr/bin/env python3
"""Kafka security through tally's kafka.* pass-through, on a private broker.

A broker of its own (scripts/kafka-broker.sh start DIR --secure: PLAINTEXT, SSL, and
SASL_SSL with SCRAM-SHA-256/512, one SCRAM user with a random password) is started first
and stopped at the end, also when a check fails. The test's own clients create and read the
topics over the PLAINTEXT listener; tally is only given the secure listeners.

1. reference: `tally replay` of a small input made by `tally gen`.
2. TLS: `tally produce` and `tally run --until-end` on the SSL listener, keys given with -X
   (kafka.security.protocol=SSL, kafka.ssl.ca.location); the output topics read back equal
   the replay (interest deltas and attributions, record for record, rule-based fields and
   explanations), nothing on the dead-letter topic.
2b. The broker creates no topic by itself (auto.create.topics.enable=false): a run whose
   attribution topic does not exist stops at start, exit 1, naming the topic.
3. TLS is required and verified: a producer on the SSL listener without
   kafka.security.protocol, and one without the CA, both fail (non-zero exit within the
   bound set by kafka.message.timeout.ms).
4. SASL_SSL: `tally produce` with the keys in a properties file (-c, SCRAM-SHA-512) and
   `tally run --until-end` with them in TALLY_* environment variables (SCRAM-SHA-256), both
   at log.level=debug with librdkafka's conf and security debugging; outputs = replay.
5. A wrong password: `tally produce` (kafka.message.timeout.ms bounds it) and `tally run`
   (exactly_once: its changelog metadata request fails) exit non-zero within a minute, and
   their logs say that SASL authentication failed for invalid credentials.
6. `tally config list` and `tally config check` with the secret keys set by -X, by -c and by
   the environment: exit 0, and the password is not in their output.
7. Neither the password nor the wrong one appears in anything tally wrote: every log above
   (stdout and stderr) and every file of the state directories. The scanner is first shown
   to find the password in the properties file that holds it.

Environment: TALLY_BIN, TALLY_SOURCE_DIR; TALLY_TEST_SECURE_DIR, the broker's directory
(default: a temporary one). Exit status 0 passed, 1 failed, 77 skipped (java, kcat or
openssl missing).
"""

import contextlib
import os
import re
import signal
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare as cmp  # noqa: E402
import fixtures  # noqa: E402
import kafka_util as ku  # noqa: E402

EVENTS = 3000
BROKER_TIMEOUT_S = 300     # a first start may fetch the broker's jars
RUN_TIMEOUT_S = 120
FAIL_TIMEOUT_S = 60        # a client that cannot connect must give up within this
MESSAGE_TIMEOUT_MS = 8000  # ... because of this (produce) or the changelog's metadata timeout (run)
TOL = 1e-9
AUTH_FAILED = r"SASL authentication error: Authentication failed.*invalid credentials"
AUTH_LINE = r"level=error .*authentication failed: "   # tally's own line, with librdkafka's reason


def broker(cmd, bdir, *extra):
    # A broker that creates no topic by itself, as production ones often are: the test's
    # topics are created by the test, the changelog by tally.
    env = dict(os.environ, TALLY_KAFKA_PROPERTIES="auto.create.topics.enable=false")
    return ku.broker_script(cmd, bdir, *extra, env=env, timeout_s=BROKER_TIMEOUT_S)


@contextlib.contextmanager
def environment(extra):
    """os.environ with every TALLY_KAFKA_* variable removed and extra added, for the
    processes started inside (restored afterwards)."""
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("TALLY_KAFKA_"):
            del os.environ[k]
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def files_containing(paths, secrets):
    """[(path, secret)] for every file under paths (files or directories) that contains
    one of secrets."""
    found = []
    for top in paths:
        files = [top] if os.path.isfile(top) else [
            os.path.join(root, name) for root, _, names in os.walk(top) for name in names]
        for path in files:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            found += [(path, s) for s in secrets if s.encode() in data]
    return found


def main():
    _, rc = ku.preflight(broker=False, programs=("java", "kcat", "openssl"))
    if rc is not None:
        return rc

    tmp = tempfile.mkdtemp(prefix="tally-security-")
    bdir = os.environ.get("TALLY_TEST_SECURE_DIR") or os.path.join(tmp, "broker")
    run = uuid.uuid4().hex[:10]
    wrong = "wrong-" + uuid.uuid4().hex
    logs = []          # every file tally's stdout and stderr went to
    state_dirs = []
    step = ku.Steps()
    results = step.results
    ctx = {}

    def log(name):
        path = os.path.join(tmp, name + ".log")
        logs.append(path)
        return path

    def state(name):
        path = os.path.join(tmp, "state-" + name)
        state_dirs.append(path)
        return path


    def start_broker(pr):
        out = broker("start", bdir, "--secure")
        files = {name: ku.read_value(os.path.join(bdir, name))
                 for name in ("bootstrap", "bootstrap_ssl", "bootstrap_sasl_ssl")}
        sasl = fixtures.read_properties(os.path.join(bdir, "client_sasl_ssl.properties"))
        ctx.update(files, user=sasl["sasl.username"], password=sasl["sasl.password"],
                   ca=sasl["ssl.ca.location"], kafka=ku.Kafka(files["bootstrap"]))
        if len(ctx["password"]) < 16:
            pr.append("the SCRAM password %d characters long, expected a random one" %
                      len(ctx["password"]))
        return out.strip().splitlines()[-1]

    def reference(pr):
        events = os.path.join(tmp, "events.csv")
        ku.gen_events(events, EVENTS, 300, 7, log_path=log("gen"))
        out = os.path.join(tmp, "replay.jsonl")
        ku.replay_file(events, out, log("replay"), timeout_s=RUN_TIMEOUT_S)
        ctx["events"] = events
        ctx["replay"] = cmp.read_jsonl(out)
        n = sum(1 for r in ctx["replay"] if cmp.kind_of(r) == "interest_delta")
        if n == 0:
            pr.append("the replay wrote no interest deltas")
        return "%d events, replay: %s" % (EVENTS, cmp.summary(ctx["replay"]))

    def leg(name, produce_cfg, run_cfg, run_env, pr):
        """Produces the events and runs tally over one listener; compares the outputs
        with the replay. *_cfg: extra arguments; run_env: environment of the run."""
        kafka = ctx["kafka"]
        t_in = "tally-sec-%s-events-%s" % (name, run)
        outs = ku.OutputTopics("tally-sec-%s-%s" % (name, run))
        kafka.create_topics({t_in: 2})
        outs.create(kafka, partitions=2)
        ku.run_tally(["produce", "--input", ctx["events"], "--format", "canonical",
                      "--topic", t_in] + produce_cfg, RUN_TIMEOUT_S, log(name + "-produce"),
                     name + " produce")
        n_in = sum(kafka.end_offsets(t_in).values())
        if n_in != EVENTS:
            pr.append("input topic holds %d records, expected %d" % (n_in, EVENTS))
        args = ku.run_args(t_in, "tally-sec-%s-%s" % (name, run), state(name), *run_cfg,
                           outs=outs)
        with environment(run_env):
            secs = ku.run_tally(args, RUN_TIMEOUT_S, log(name + "-run"), name + " run")
        got = outs.read(kafka, ku.load_schemas(), pr)
        pr.extend(cmp.compare(ctx["replay"], got, TOL, exact_explanation=True,
                              ignore_types=("credit_delta",), rule_only=True))
        counts = [sum(1 for r in recs if cmp.kind_of(r) == "interest_delta")
                  for recs in (ctx["replay"], got)]
        if counts[0] != counts[1]:
            pr.append("%d interest deltas on Kafka, %d in the replay" % (counts[1], counts[0]))
        kafka.delete_topics([t_in] + outs.all())
        return "run %.1f s; %s read back = replay" % (secs, cmp.summary(got))

    def tls_args():
        return ["-X", "kafka.bootstrap.servers=" + ctx["bootstrap_ssl"],
                "-X", "kafka.security.protocol=SSL", "-X", "kafka.ssl.ca.location=" + ctx["ca"]]

    def tls(pr):
        return leg("ssl", tls_args(), tls_args(), {}, pr)

    def missing_output(pr):
        """With auto.create.topics.enable=false, an output topic that does not exist stops
        the start (exit 1, the topic named) instead of failing the first transaction."""
        kafka = ctx["kafka"]
        t_in = "tally-sec-missing-in-%s" % run
        outs = ku.OutputTopics("tally-sec-missing-%s" % run)
        kafka.create_topics({t_in: 1})
        outs.create(kafka, partitions=1)
        absent = "tally-sec-absent-%s" % run
        t = ku.Tally(ku.run_args(t_in, "tally-sec-missing-" + run, state("missing"),
                                 "-X", "output.attribution.topic=" + absent, *tls_args(),
                                 outs=outs),
                     log("missing-output"), "run (absent output topic)")
        rc = t.wait(FAIL_TIMEOUT_S)
        want = "topic %s does not exist, and the broker does not create topics" % absent
        if rc != 1 or want not in t.log():
            pr.append("exit %s, expected 1 with %r:\n%s" % (rc, want, ku.tail(t.log_path)))
        kafka.delete_topics([t_in] + outs.all())
        return "exit %s after %.1f s, naming %s" % (rc, time.monotonic() - t.t0, absent)

    def failing(runs, pattern, pr):
        """Starts every (name, args) of runs at once; each must exit non-zero within
        FAIL_TIMEOUT_S with a log line matching pattern."""
        procs = [ku.Tally(args, log(name), name) for name, args in runs]
        done = []
        for t in procs:
            rc = t.wait(FAIL_TIMEOUT_S)
            done.append("%s %.0f s" % (t.name, time.monotonic() - t.t0))
            if rc == 0:
                pr.append("%s exited 0, expected a failure" % t.name)
            elif not re.search(pattern, t.log()):
                pr.append("%s exited %s without saying why (expected /%s/):\n%s" % (
                    t.name, ku.describe_rc(rc), pattern, ku.tail(t.log_path)))
        return "exited non-zero: " + ", ".join(done)

    def tls_required(pr):
        produce = ["produce", "--input", ctx["events"], "--format", "canonical",
                   "--topic", "tally-sec-refused-" + run,
                   "-X", "kafka.message.timeout.ms=%d" % MESSAGE_TIMEOUT_MS,
                   "-X", "kafka.bootstrap.servers=" + ctx["bootstrap_ssl"]]
        run_cmd = ku.run_args("tally-sec-refused-" + run, "tally-sec-refused-" + run,
                              state("refused"), "-X", "kafka.security.protocol=SSL",
                              b=ctx["bootstrap_ssl"])
        info = failing([("produce-plaintext-to-ssl", produce)], r"security\.protocol", pr)
        return info + "; " + failing(
            [("produce-ssl-without-ca", produce + ["-X", "kafka.security.protocol=SSL"]),
             ("run-ssl-without-ca", run_cmd)], AUTH_LINE + r".*certificate verify failed", pr)

    def sasl(pr):
        props = os.path.join(tmp, "sasl.properties")
        with open(props, "w") as fh:
            fh.write("# SASL_SSL with SCRAM-SHA-512\n"
                     "kafka.bootstrap.servers=%s\nkafka.security.protocol=SASL_SSL\n"
                     "kafka.ssl.ca.location=%s\nkafka.sasl.mechanisms=SCRAM-SHA-512\n"
                     "kafka.sasl.username=%s\nkafka.sasl.password=%s\n" % (
                         ctx["bootstrap_sasl_ssl"], ctx["ca"], ctx["user"], ctx["password"]))
        ctx["props"] = props
        env = {"TALLY_KAFKA_BOOTSTRAP_SERVERS": ctx["bootstrap_sasl_ssl"],
               "TALLY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
               "TALLY_KAFKA_SSL_CA_LOCATION": ctx["ca"],
               "TALLY_KAFKA_SASL_MECHANISMS": "SCRAM-SHA-256",
               "TALLY_KAFKA_SASL_USERNAME": ctx["user"],
               "TALLY_KAFKA_SASL_PASSWORD": ctx["password"],
               "TALLY_KAFKA_DEBUG": "conf,security",
               "TALLY_LOG_LEVEL": "debug"}
        ctx["env"] = env
        debug = ["-X", "log.level=debug", "-X", "kafka.debug=conf,security"]
        info = leg("sasl_ssl", ["-c", props] + debug, [], env, pr)
        for name, mech in (("sasl_ssl-produce", "SCRAM-SHA-512"), ("sasl_ssl-run", "SCRAM-SHA-256")):
            with open(os.path.join(tmp, name + ".log"), errors="replace") as fh:
                text = fh.read()
            if "level=debug" not in text or "facility=SASL" not in text:
                pr.append("%s: no debug lines of librdkafka's SASL client in its log" % name)
            named = set(re.findall(r"for SASL mechanism (SCRAM-SHA-\d+)", text))
            if named - {mech}:
                pr.append("%s: used %s, configured %s" % (name, ", ".join(sorted(named)), mech))
        return info

    def wrong_password(pr):
        cfg = ["-X", "kafka.bootstrap.servers=" + ctx["bootstrap_sasl_ssl"],
               "-X", "kafka.security.protocol=SASL_SSL", "-X", "kafka.ssl.ca.location=" + ctx["ca"],
               "-X", "kafka.sasl.mechanisms=SCRAM-SHA-512", "-X", "kafka.sasl.username=" + ctx["user"],
               "-X", "kafka.sasl.password=" + wrong, "-X", "log.level=debug"]
        t_in = "tally-sec-denied-" + run
        return failing([("wrong-password-produce",
                  ["produce", "--input", ctx["events"], "--format", "canonical", "--topic", t_in,
                   "-X", "kafka.message.timeout.ms=%d" % MESSAGE_TIMEOUT_MS] + cfg),
                 ("wrong-password-run",
                  ku.run_args(t_in, "tally-sec-denied-" + run, state("denied"), *cfg))],
                AUTH_LINE + ".*" + AUTH_FAILED, pr)

    def config_commands(pr):
        secret_x = ["-X", "kafka.sasl.password=" + ctx["password"],
                    "-X", "kafka.ssl.key.password=" + ctx["password"],
                    "-X", "schema.registry.basic.auth.user.info=%s:%s" % (ctx["user"], ctx["password"])]
        # (name, arguments, environment, expected exit status, expected output)
        cases = [("check-X", ["check"] + secret_x, {}, 0, "configuration ok"),
                 ("check-c", ["check", "-c", ctx["props"]], {}, 0, "configuration ok"),
                 ("check-env", ["check"], ctx["env"], 0, "configuration ok"),
                 ("check-bad", ["check", "-c", ctx["props"], "-X", "features.alpha=x"] + secret_x,
                  ctx["env"], 1, "features.alpha"),
                 ("list-env", ["list"], ctx["env"], 0, "log.level")]
        for name, args, env, want_rc, want_out in cases:
            with environment(env):
                t = ku.Tally(["config"] + args, log("config-" + name), "config " + name)
                rc = t.wait(FAIL_TIMEOUT_S)
            if rc != want_rc or want_out not in t.log():
                pr.append("`tally config %s` exited %s, expected %d with %r in its output:\n%s" % (
                    name, ku.describe_rc(rc), want_rc, want_out, ku.tail(t.log_path)))
        return "%d invocations: -X, -c, environment, an error" % len(cases)

    def no_secrets(pr):
        props = ctx.get("props")
        if props and not files_containing([props], [ctx["password"]]):
            pr.append("the scanner does not find the password in %s, which holds it" % props)
        secrets = [ctx["password"], wrong]
        found = files_containing(logs + [d for d in state_dirs if os.path.isdir(d)], secrets)
        for path, s in found:
            pr.append("%s contains the %s" % (path, "wrong password" if s == wrong else "password"))
        return "not in %d logs nor %d state directories" % (len(logs), len(state_dirs))

    print("files in %s, broker in %s" % (tmp, bdir))
    # A TERM or INT (ctest's timeout, ^C) unwinds through the finally below: the broker stops.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    try:
        ok = step("secure broker", start_broker)
        ok = ok and step("reference (gen, replay)", reference)
        if ok:
            step("TLS: produce and run, -X", tls)
            step("an absent output topic stops the start", missing_output)
            step("TLS is required and verified", tls_required)
            step("SASL_SSL/SCRAM: produce -c, run environment, debug", sasl)
            step("wrong password fails", wrong_password)
            if "env" in ctx:
                step("config list/check hide the password", config_commands)
            step("no password in tally's output", no_secrets)
    finally:
        ku.stop_all()
        if "kafka" in ctx:
            ctx["kafka"].close()
        try:
            broker("stop", bdir)
        except Exception as e:   # reported, and the test fails
            results.append(("stop broker", [str(e)]))
            print("FAIL stop broker: %s" % e)

    return step.finish(tmp, " (broker log: %s/broker.log)" % bdir)


if __name__ == "__main__":
    sys.exit(main())
