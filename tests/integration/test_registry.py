#!/usr/bin/env python3
"""tally with a Confluent-API schema registry, over HTTPS with basic auth, on a real broker.

The registry is a stand-in started inside this test (no Confluent-compatible registry
installs from the package registries tally's tools use): an in-memory implementation of
the part of the Confluent Schema Registry API tally calls, answering with Confluent's status
codes and error bodies:

  GET  /schemas/ids/{id}              200 {"schema": ...} | 404 {"error_code": 40403, ...}
  POST /subjects/{s}/versions         200 {"id": N} (the same id for the same schema)
  POST /subjects/{s}                  200 {"subject", "id", "version", "schema"} |
                                      404 40401 (no such subject) | 404 40403 (not under it)
  GET  /subjects, GET /subjects/{s}/versions/latest
  every route without the right Authorization: Basic header: 401 {"error_code": 401, ...}

Ids start at 1, as in Confluent's and Apicurio's registries, and a schema of another
subject is registered first, so the input schema gets id 2: the id of tally's bundled
interest-delta schema. With a registry configured the registry is the authority for ids:
the bundled files must not shadow it (they did: every event was a dead letter).

Steps (each one line, ok or FAIL):
  1. TLS material made with openssl (a CA and a server certificate for 127.0.0.1); the
     input schema registered under <input topic>-value; framed events produced with its id,
     plus one record framed with an id the registry does not have.
  2. Start-up refusals, each a non-zero exit with a message naming the cause: no CA bundle
     (certificate not verified), a wrong password (HTTP 401), the registry down (connection
     refused), schema.registry.auto.register=false while the subjects are missing (names
     the subject; nothing gets registered).
  3. `tally run --until-end` over HTTPS with basic auth: exits 0.
  4. The subjects <topic>-value of the interest, attribution and credit topics hold the
     schemas of schemas/ (and no subject for the dead-letter topic, which is not Avro).
  5. Every output record is framed with its subject's id (not a schema.dir id) and decodes
     with the schema fetched from the registry by that id; keys are the user_ids.
  5b. `tally consume` prints every attribution as JSON, decoded with the schema its frame
     names, fetched from the registry; `tally produce` with the registry registers
     BehaviorEvent under <topic>-value and frames every event with that id.
  6. The dead-letter topic holds the unknown-id record alone, reason unknown_schema.
  7. Every request tally made carried the credentials; it fetched the input schema by id.
  8. auto.register=false with the subjects present: starts, only looks up, registers nothing.
  9. No tally log holds the password.

Environment: TALLY_TEST_BOOTSTRAP (or TALLY_TEST_BOOTSTRAP_FILE), TALLY_BIN, TALLY_SOURCE_DIR.
Exit status 0 passed, 1 failed, 77 skipped (no broker, or openssl missing).
"""

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fixtures  # noqa: E402
import kafka_util as ku  # noqa: E402

USER, PASSWORD = "tally-svc", "pw-9f3c1e7a-registry"
UNKNOWN_ID = 999999
RUN_TIMEOUT_S = 90
REFUSE_TIMEOUT_S = 30
CT = "application/vnd.schemaregistry.v1+json"


# ---------------------------------------------------------------- the registry stand-in

def canonical(text):
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


class Registry:
    """In-memory Confluent-API registry on 127.0.0.1 (HTTPS when given a certificate)."""

    def __init__(self, user_info, certfile=None, keyfile=None, first_id=1001):
        self.lock = threading.Lock()
        self.auth = "Basic " + base64.b64encode(user_info.encode()).decode()
        self.schemas = {}     # id -> schema text
        self.ids = {}         # canonical text -> id
        self.subjects = {}    # subject -> [id of version 1, 2, ...]
        self.next_id = first_id
        self.requests = []    # (method, path, authorised)
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", CT)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                ok = self.headers.get("Authorization") == reg.auth
                with reg.lock:
                    reg.requests.append((method, self.path, ok))
                    if not ok:
                        return self.reply(401, {"error_code": 401, "message": "Unauthorized"})
                    status, obj = reg.route(method, self.path, body)
                self.reply(status, obj)

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _version(self, subject, sid):
        return {"subject": subject, "id": sid, "version": self.subjects[subject].index(sid) + 1,
                "schema": self.schemas[sid]}

    def route(self, method, path, body):
        parts = [urllib.parse.unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
            sid = int(parts[2]) if parts[2].isdigit() else -1
            if sid not in self.schemas:
                return 404, {"error_code": 40403, "message": "Schema %s not found" % parts[2]}
            return 200, {"schema": self.schemas[sid]}
        if method == "GET" and parts == ["subjects"]:
            return 200, sorted(self.subjects)
        if parts and parts[0] == "subjects" and len(parts) >= 2:
            subject = parts[1]
            if method == "GET" and parts[2:] == ["versions", "latest"]:
                if subject not in self.subjects:
                    return 404, {"error_code": 40401, "message": "Subject '%s' not found." % subject}
                return 200, self._version(subject, self.subjects[subject][-1])
            if method == "POST" and len(parts) in (2, 3) and parts[2:] in ([], ["versions"]):
                try:
                    text = json.loads(body)["schema"]
                    canon = canonical(text)
                except (ValueError, KeyError, TypeError):
                    return 422, {"error_code": 42201, "message": "Invalid schema"}
                sid = self.ids.get(canon)
                if len(parts) == 2:   # look up
                    if subject not in self.subjects:
                        return 404, {"error_code": 40401,
                                     "message": "Subject '%s' not found." % subject}
                    if sid not in self.subjects[subject]:
                        return 404, {"error_code": 40403, "message": "Schema not found"}
                    return 200, self._version(subject, sid)
                if sid is None:
                    sid = self.next_id
                    self.next_id += 1
                    self.ids[canon] = sid
                    self.schemas[sid] = text
                versions = self.subjects.setdefault(subject, [])
                if sid not in versions:
                    versions.append(sid)
                return 200, {"id": sid}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}

    def count(self, method, suffix=None, prefix=None):
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method
                       and (suffix is None or p.endswith(suffix))
                       and (prefix is None or p.startswith(prefix)))


class Client:
    """The test's own HTTPS client of the registry."""

    def __init__(self, url, user_info, cafile):
        self.url = url
        self.auth = "Basic " + base64.b64encode(user_info.encode()).decode()
        self.ctx = ssl.create_default_context(cafile=cafile)

    def call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": self.auth, "Content-Type": CT})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return json.loads(r.read())


# ------------------------------------------------------------------------- helpers

def schema_text(name):
    with open(os.path.join(ku.SCHEMA_DIR, name)) as fh:
        return fh.read()


def parse(text):
    import fastavro
    return fastavro.parse_schema(ku._strip_logical(json.loads(text)), named_schemas={})


def events():
    """Six users' journeys: browses and clicks on two channels, a purchase four hours in,
    and a browse two hours after it, which closes the purchase's hourly Markov window."""
    t0 = 1_700_000_000_000
    hour = 3_600_000
    out = []
    for u in range(6):
        steps = [("BROWSE", "search", 0), ("CLICK", "email" if u % 2 else "search", hour),
                 ("ADD_TO_CART", "search", 2 * hour), ("PURCHASE", None, 4 * hour + u),
                 ("BROWSE", "search", 6 * hour)]
        for i, (typ, ch, dt) in enumerate(steps):
            out.append({"event_id": "ev-%d-%d" % (u, i), "user_id": "u-%d" % u,
                        "item_id": "i-%d" % (u % 3), "category_id": "c-%d" % (u % 2),
                        "type": typ, "ts": t0 + dt + u * 1000, "channel": ch,
                        "dwell_ms": 1000 if typ == "BROWSE" else None,
                        "value": 19.5 if typ == "PURCHASE" else None, "propensity": None})
    return out


# ---------------------------------------------------------------------------- test

def main():
    b, rc = ku.preflight(programs=("openssl",))
    if rc is not None:
        return rc

    tmp = tempfile.mkdtemp(prefix="tally-registry-")
    prefix = "tally-reg-" + ku.RUN
    t_in = prefix + "-events"
    out = ku.OutputTopics(prefix)
    group = prefix
    kafka = ku.Kafka(b)
    ca, cert, key = fixtures.make_tls(tmp)
    reg = Registry(USER + ":" + PASSWORD, cert, key, first_id=1)
    cli = Client(reg.url, USER + ":" + PASSWORD, ca)
    logs = []
    step = ku.Steps(catch_all=True)
    st = {}

    def base_args(name, *extra, url=reg.url, user_info=USER + ":" + PASSWORD, cafile=ca):
        args = ku.run_args(t_in, group, os.path.join(tmp, "state-" + name),
                           "-X", "instance.id=" + name, "-X", "schema.registry.url=" + url,
                           "-X", "schema.registry.basic.auth.user.info=" + user_info,
                           outs=out, b=b)
        if cafile:
            args += ["-X", "schema.registry.ssl.ca.location=" + cafile]
        return args + list(extra)

    def refused(name, args, must_contain):
        """tally exits non-zero at start-up and its log contains every string given."""
        log = os.path.join(tmp, name + ".log")
        logs.append(log)
        t = ku.Tally(args, log, name)
        rc = t.wait(REFUSE_TIMEOUT_S)
        text = t.log()
        problems = []
        if rc == 0:
            problems.append("%s: exited 0, expected a start-up error" % name)
        for s in must_contain:
            if s not in text:
                problems.append("%s: log lacks %r:\n%s" % (name, s, ku.tail(log, 8)))
        return problems


    def setup(pr):
        kafka.create_topics({t_in: 2})
        out.create(kafka, partitions=2)
        other = cli.call("POST", "/subjects/another-topic-%s-value/versions" % ku.RUN,
                         {"schema": '{"type": "record", "name": "Other", "fields": '
                                    '[{"name": "x", "type": "long"}]}'})["id"]
        sid = cli.call("POST", "/subjects/%s-value/versions" % t_in,
                       {"schema": schema_text("1-behavior_event.avsc")})["id"]
        st["input_id"] = sid
        if (other, sid) != (1, 2):
            pr.append("the registry gave ids %d and %d, expected 1 and 2" % (other, sid))
        be = parse(schema_text("1-behavior_event.avsc"))
        evs = events()
        recs = [(e["user_id"].encode(), ku.frame(sid, ku.avro_encode(be, e))) for e in evs]
        bad = ku.frame(UNKNOWN_ID, ku.avro_encode(be, dict(evs[0], event_id="ev-unknown-id")))
        st["bad"] = bad
        recs.append((b"u-unknown", bad))
        kafka.produce(t_in, recs)
        st["n_events"] = len(evs)
        return "input schema registered as id %d; %d events framed with it, 1 with id %d" % (
            sid, len(evs), UNKNOWN_ID)

    if not step("setup (TLS CA, input subject, events)", setup):
        return finish(step, reg, tmp)

    def refusals(pr):
        pr += refused("no-ca", base_args("no-ca", cafile=None), [reg.url, "certificate"])
        pr += refused("bad-password", base_args("bad-password", user_info=USER + ":wrong"),
                      [reg.url, "HTTP 401", "Unauthorized"])
        pr += refused("down", base_args("down", url="https://127.0.0.1:%d" % fixtures.free_port()),
                      ["schema registry https://127.0.0.1:"])
        registered = reg.count("POST", "/versions")
        pr += refused("no-subject", base_args("no-subject",
                                              "-X", "schema.registry.auto.register=false"),
                      [out.interest + "-value", "schema.registry.auto.register=false"])
        if reg.count("POST", "/versions") != registered:
            pr.append("auto.register=false registered a schema")
        if any(s.startswith(prefix + "-") and s != t_in + "-value" for s in reg.subjects):
            pr.append("subjects created by the refused runs: %s" % sorted(reg.subjects))
        return "no CA, wrong password, registry down, missing subject: each stops start-up"

    step("start-up refusals", refusals)

    def run(pr):
        log = os.path.join(tmp, "run.log")
        logs.append(log)
        st["run_s"] = ku.run_tally(base_args("main"), RUN_TIMEOUT_S, log, "run")
        return "tally run --until-end over HTTPS with basic auth: %.1f s" % st["run_s"]

    if not step("run --until-end", run):
        return finish(step, reg, tmp)

    files = {out.interest: "2-interest_delta.avsc", out.attribution: "11-attribution.avsc",
             out.credit: "7-credit_delta.avsc"}

    def subjects(pr):
        have = cli.call("GET", "/subjects")
        for topic, fname in files.items():
            subj = topic + "-value"
            if subj not in have:
                pr.append("subject %s missing (have %s)" % (subj, have))
                continue
            latest = cli.call("GET", "/subjects/%s/versions/latest" % urllib.parse.quote(subj))
            if canonical(latest["schema"]) != canonical(schema_text(fname)):
                pr.append("subject %s holds a schema other than schemas/%s" % (subj, fname))
            st[topic] = latest["id"]
        if out.dlq + "-value" in have:
            pr.append("a subject for the dead-letter topic exists")
        return ", ".join("%s-value id %d" % (t, st[t]) for t in files if t in st)

    step("subjects <topic>-value", subjects)

    def outputs(pr):
        counts = {}
        for topic in files:
            rows = kafka.read_all(topic)
            counts[topic] = len(rows)
            if not rows:
                pr.append("%s is empty" % topic)
                continue
            want = st.get(topic)
            ids = {int.from_bytes(v[1:5], "big") for _, _, _, v, _ in rows if v and len(v) >= 5}
            if ids != {want}:
                pr.append("%s: frames carry ids %s, the subject's id is %s" % (topic, ids, want))
                continue
            fetched = parse(cli.call("GET", "/schemas/ids/%d" % want)["schema"])
            recs = ku.decode_outputs(rows, want, fetched, topic, pr) if topic != out.credit \
                else [ku.avro_decode(fetched, v[5:]) for _, _, _, v, _ in rows]
            if len(recs) != len(rows):
                pr.append("%s: %d of %d records decoded" % (topic, len(recs), len(rows)))
        n_purchases = sum(1 for e in events() if e["type"] == "PURCHASE")
        if counts.get(out.attribution) not in (None, n_purchases):
            pr.append("%d attributions, expected one per purchase (%d)" % (
                counts[out.attribution], n_purchases))
        return ", ".join("%d on %s" % (n, t) for t, n in counts.items())

    step("outputs framed with registry ids, decoded with fetched schemas", outputs)

    reg_x = ["-X", "kafka.bootstrap.servers=" + b, "-X", "schema.registry.url=" + reg.url,
             "-X", "schema.registry.basic.auth.user.info=" + USER + ":" + PASSWORD,
             "-X", "schema.registry.ssl.ca.location=" + ca]

    def consume(pr):
        """tally consume decodes every output with the writer schema its frame names,
        fetched from the registry: the same records the test decoded itself."""
        r = subprocess.run([ku.TALLY_BIN, "consume", "--topic", out.attribution, "--until-end"] + reg_x,
                           capture_output=True, text=True, timeout=120)
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        rows = kafka.read_all(out.attribution)
        want = {(p, o) for p, o, _, _, _ in rows}
        got = {(x["partition"], x["offset"]) for x in lines}
        if r.returncode != 0 or got != want:
            pr.append("consume: exit %d, %d lines for %d records: %s" % (
                r.returncode, len(lines), len(rows), r.stderr[-500:]))
        for x in lines:
            if x.get("schema_id") != st.get(out.attribution) or "value" not in x or \
                    x["value"]["user_id"] != x["key"]:
                pr.append("consume: %s" % json.dumps(x)[:300])
                break
        return "%d attributions printed as JSON, decoded with schema id %s" % (len(lines), st.get(out.attribution))

    step("tally consume", consume)

    def produce_registers(pr):
        """tally produce with a registry registers BehaviorEvent under <topic>-value and
        frames every event with that id: tally's reader schema, version 2 of the input's
        (10-behavior_event.avsc, with campaign), so a new id, not the input's 2."""
        topic = t_in + "-produced"
        kafka.create_topics({topic: 1})
        csv = os.path.join(tmp, "produce.csv")
        subprocess.run([ku.TALLY_BIN, "gen", "--events", "50", "--output", csv], check=True)
        r = subprocess.run([ku.TALLY_BIN, "produce", "--input", csv, "--format", "canonical",
                            "--topic", topic] + reg_x, capture_output=True, text=True, timeout=120)
        versions = reg.subjects.get(topic + "-value") or []
        sid = versions[-1] if versions else None
        ids = {int.from_bytes(v[1:5], "big") for _, _, _, v, _ in kafka.read_all(topic)}
        if r.returncode != 0 or sid is None or ids != {sid} or sid == st["input_id"]:
            pr.append("produce: exit %d, frames %s, input id %s, subjects %s: %s" % (
                r.returncode, ids, st["input_id"], sorted(reg.subjects), r.stderr[-400:]))
        return "50 events framed with id %s, registered under %s-value%s" % (
            sorted(ids), topic, "" if sid is None else " (id %s)" % sid)

    step("tally produce registers its schema", produce_registers)

    def dlq(pr):
        rows = kafka.read_all(out.dlq)
        if len(rows) != 1:
            pr.append("%d dead letters, expected 1" % len(rows))
            return None
        _, _, k, v, h = rows[0]
        reason = (h.get("tally.reason") or b"").decode()
        err = (h.get("tally.error") or b"").decode()
        if reason != "unknown_schema":
            pr.append("reason %r, expected unknown_schema" % reason)
        if str(UNKNOWN_ID) not in err or reg.url not in err:
            pr.append("tally.error %r names neither id %d nor the registry" % (err, UNKNOWN_ID))
        if k != b"u-unknown" or v != st["bad"]:
            pr.append("the dead letter is not the original record")
        return "%s: %s" % (reason, err)

    step("unknown input id -> dead letter", dlq)

    def requests(pr):
        with reg.lock:
            reqs = list(reg.requests)
        tally_unauth = [r for r in reqs if not r[2]]
        # The wrong-password run is the only one that may have been refused.
        if reg.count("GET", prefix="/schemas/ids/%d" % st["input_id"]) < 1:
            pr.append("tally never fetched the input schema id %d" % st["input_id"])
        if reg.count("GET", prefix="/schemas/ids/%d" % UNKNOWN_ID) < 1:
            pr.append("tally never asked the registry for id %d" % UNKNOWN_ID)
        if len(tally_unauth) > 3:
            pr.append("%d requests without the right credentials (the wrong-password run "
                      "makes one)" % len(tally_unauth))
        return "%d requests, %d refused (the wrong-password run)" % (len(reqs), len(tally_unauth))

    step("registry requests", requests)

    def lookup_only(pr):
        before = reg.count("POST", "/versions")
        lookups = reg.count("POST", prefix="/subjects/" + prefix)
        log = os.path.join(tmp, "lookup.log")
        logs.append(log)
        ku.run_tally(base_args("main", "-X", "schema.registry.auto.register=false"),
                     RUN_TIMEOUT_S, log, "lookup")
        if reg.count("POST", "/versions") != before:
            pr.append("auto.register=false registered a schema")
        n = reg.count("POST", prefix="/subjects/" + prefix) - lookups
        if n != 3:   # interest, attribution, credit: no intent topic with intent off
            pr.append("%d subject look-ups, expected 3" % n)
        return "started after 3 look-ups, registered nothing"

    step("auto.register=false with the subjects present", lookup_only)

    def secrets(pr):
        for log in logs:
            with open(log, errors="replace") as fh:
                if PASSWORD in fh.read():
                    pr.append("%s contains the password" % log)
        return "%d logs checked" % len(logs)

    step("password never logged", secrets)
    kafka.delete_topics([t_in] + out.all())
    return finish(step, reg, tmp)


def finish(step, reg, tmp):
    reg.stop()
    ku.stop_all()
    return step.finish(tmp)


if __name__ == "__main__":
    sys.exit(main())
