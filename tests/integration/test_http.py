#!/usr/bin/env python3
"""tally run's HTTP endpoints on a real broker (ctest integration.http).

1. not-ready: an instance whose broker cannot be reached serves /healthz 200, /readyz 503
   and valid /metrics; SIGTERM while it cannot reach the broker ends it within
   shutdown.timeout.ms (exit 1, the reason in its log). Without a signal the start fails
   by itself (exit 1) with a line naming the broker and librdkafka's connection error.
2. flow: `tally run` (exactly_once) on 20,000 generated events: /readyz turns 200 once it
   has partitions; /metrics parses with prometheus_client's parser, has every family of
   docs/operations.md, and its counters equal what the output topics hold; 5,000 more
   events move events, outputs and transactions by exactly that much and the lag back to 0.
3. users: for 30 users, /v1/users/{id}?as_of=<the user's last event>&top=0 gives f, h and
   w equal to the user's interest deltas (decayed to as_of by the documented formula, to
   1e-9); an unknown user is 404 naming the owned partitions; a bad as_of is 400.
   /v1/attribution?by=category: every row equals the sums of the attribution records on
   the topic, per rule-based method; a bad parameter is 400; format=html is the page;
   spend rows produced to rollup.spend.topic join the answer by channel and day (cost per
   conversion = spend / conversions).
4. shutdown: SIGTERM in the middle of 60,000 events: exit 0 within shutdown.timeout.ms,
   and the group's committed offsets equal the interest deltas visible to a
   read_committed consumer (one per event): what was committed is exactly what was output.
5. restart: 2,000 events consumed (--until-end), the state directory deleted, tally
   started again (it restores from the changelog): /v1/users/{id} without as_of is as of
   the user's newest event with finite weights, before any new event; after one more event
   of the user it is as of that event. Without instance.id, the instance id is the one kept
   in the state directory: the same after a restart with it, another for a new directory.
6. reset: `tally reset --execute` is refused while an instance of the group runs; stopped,
   it deletes the group (offsets), the changelog and the local state but instance.id, and
   the next run reprocesses the input to the same deltas.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_util import (http_get, http_port, metric_total, scrape, RUN, SKIP, Kafka, OutputTopics, Tally, bootstrap, decode_outputs,  # noqa: E402
                        TALLY_BIN, avro_encode, frame, load_schemas, run_tally, stop_all,
                        wait_until)
from kafka_util import ATTRIBUTION_ID, INTENT_ID, NEXTCAT_ID  # noqa: E402
import kafka_util as ku  # noqa: E402

FAMILIES = ["tally_events_total", "tally_dead_letters_total", "tally_outputs_total",
            "tally_attributions_total", "tally_consumer_lag_records", "tally_batch_duration_seconds",
            "tally_end_to_end_latency_seconds", "tally_transactions_total", "tally_rebalances_total",
            "tally_assigned_partitions", "tally_restoring_partitions", "tally_state_cached_users",
            "tally_state_cache_bytes", "tally_state_cache_budget_bytes", "tally_model_auc",
            "tally_model_log_loss", "tally_ready",
            "tally_decode_errors_total", "tally_state_keys", "tally_state_sst_bytes",
            "tally_rocksdb_memory_bytes", "tally_restore_records_total", "tally_build_info",
            "tally_restore_remaining_records", "process_cpu_seconds_total",
            "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
            "tally_intent_outcomes_total", "tally_intent_auc", "tally_intent_log_loss",
            "tally_categories", "tally_categories_scored_total", "tally_categories_hits_total",
            "tally_categories_external", "tally_categories_external_bad_records_total"]
# The purchase intent on, with a window and a warm-up that 20,000 generated events decide,
# and the next categories.
INTENT = ["-X", "intent.enabled=true", "-X", "intent.window.ms=3600000",
          "-X", "model.warmup.examples=5", "-X", "categories.enabled=true"]


get = http_get
port_of = http_port
metrics = scrape
total = metric_total


def run_args(b, topic, out, state, extra=()):
    return (["run", "-X", "kafka.bootstrap.servers=" + b, "-X", "input.topics=" + topic,
             "-X", "kafka.group.id=http-" + topic, "-X", "state.dir=" + state,
             "-X", "http.listen=127.0.0.1:0"] + out.args() + list(extra))


def gen_produce(work, b, topic, n, seed):
    csv = os.path.join(work, "events-%d.csv" % seed)
    ku.gen_events(csv, n, 500, seed)
    ku.produce_file(csv, topic, b)


DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy")


def exposition_problems(port):
    """promtool check metrics on a live scrape (Prometheus' own linter: names, types, help,
    units, histogram buckets), shortest-form numbers in le labels, and every metric that a
    dashboard panel or an alert of deploy/ names is in the scrape."""
    s, text = get(port, "/metrics")
    if s != 200:
        return "/metrics: %d" % s
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        return "promtool check metrics: exit %d: %s %s" % (r.returncode, r.stdout, r.stderr)
    long_le = re.findall(r'le="([0-9.e+-]{18,})"', text)
    if long_le:
        return "le labels not in shortest form: %s" % long_le[:3]
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    used = set()
    for root, _, files in os.walk(DEPLOY):
        for f in files:
            if f.endswith((".json", ".yml", ".yaml")):
                with open(os.path.join(root, f)) as fh:
                    body = fh.read()
                exprs = re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', body) + \
                    re.findall(r"^\s*expr:\s*(.+)$", body, re.M)
                for e in exprs:
                    used |= {(f, m) for m in re.findall(r"\b((?:tally|process)_[a-z_]+)", e)}
    unknown = sorted({"%s in %s" % (m, f) for f, m in used if m not in names})
    if not used:
        return "no metric found in the expressions of %s" % DEPLOY
    return "expressions name metrics /metrics does not have: %s" % unknown if unknown else None


def test_not_ready(work):
    t = Tally(["run", "-X", "kafka.bootstrap.servers=127.0.0.1:1", "-X", "http.listen=127.0.0.1:0",
               "-X", "state.dir=" + os.path.join(work, "nr-state"), "-X", "shutdown.timeout.ms=2000"],
              os.path.join(work, "not-ready.log"), "tally run (no broker)")
    port = port_of(t)
    s, body = get(port, "/readyz")
    assert s == 503 and "no partition assignment" in body, "/readyz: %d %r" % (s, body)
    s, body = get(port, "/healthz")
    assert s == 200, "/healthz: %d %r" % (s, body)
    _, fams = metrics(port)
    s, _ = get(port, "/nothing-here")
    assert s == 404, "an unknown path answered %d" % s
    t0 = time.monotonic()
    t.signal(signal.SIGTERM)
    rc = t.wait(30)
    took = time.monotonic() - t0
    assert rc == 1 and took < 2 + 10, "exit %s after %.1f s (expected 1 within ~2 s)" % (rc, took)
    assert "shutdown.timeout.ms=2000 passed" in t.log(), "no shutdown timeout message:\n" + t.log()[-2000:]
    # Without a signal, the start fails by itself and names the broker it cannot reach.
    t = Tally(["run", "-X", "kafka.bootstrap.servers=127.0.0.1:1", "-X", "http.listen=",
               "-X", "state.dir=" + os.path.join(work, "nr-state")],
              os.path.join(work, "unreachable.log"), "tally run (no broker, no signal)")
    rc = t.wait(60)
    want = "cannot reach Kafka at 127.0.0.1:1 (kafka.bootstrap.servers): "
    assert rc == 1 and want in t.log() and "Connection refused" in t.log(), \
        "unreachable broker: exit %s, log:\n%s" % (rc, t.log()[-2000:])


def test_flow_users_shutdown(work, b, kafka):
    schemas = load_schemas()
    topic = "http-in-" + RUN
    out = OutputTopics("http-" + RUN)
    kafka.create_topics({topic: 4})
    out.create(kafka)
    spend_topic = "http-spend-" + RUN
    kafka.create_topics({spend_topic: 1})
    gen_produce(work, b, topic, 20000, 1)
    # externally computed embeddings of two categories (and, once the input is processed,
    # a record that is not one)
    emb_topic = "http-emb-" + RUN
    kafka.create_topics({emb_topic: 1})
    bad_emb = b'{"category_id": "c3", "embedding": [1, 2'
    kafka.produce(emb_topic, [(b"c1", json.dumps({"category_id": "c1", "embedding": [0.5] * 16}).encode()),
                              (b"c2", json.dumps({"category_id": "c2", "embedding": [-1.0] * 16}).encode())])
    state = os.path.join(work, "state")
    t = Tally(run_args(b, topic, out, state, ["-X", "rollup.spend.topic=" + spend_topic,
                                              "-X", "categories.embeddings.topic=" + emb_topic]
                       + INTENT),
              os.path.join(work, "run1.log"), "tally run")
    port = port_of(t)
    wait_until(lambda: get(port, "/readyz")[0] == 200, 120, "/readyz 200", running=[t])

    def settled(n, min_committed=1):
        """One scrape in which n events are processed, output and committed: the counters
        move at different points (events when processed, latency, transactions and batch
        durations when a transaction commits, outputs and state gauges at the once-a-second
        tick; readiness and the assignment after a rebalance), so the scrape asserted on is
        one where all of them have caught up."""
        def cond():
            m, fams = metrics(port)
            committed = total(m, "tally_transactions_total", result="committed")
            ok = (total(m, "tally_events_total") == n
                  and total(m, "tally_outputs_total", output="interest_delta") == n
                  and total(m, "tally_end_to_end_latency_seconds_count") == n
                  and committed >= min_committed
                  and total(m, "tally_batch_duration_seconds_count") == committed
                  and total(m, "tally_attributions_total", method="linear")
                  == total(m, "tally_outputs_total", output="attribution")
                  and total(m, "tally_state_keys") >= 500
                  and total(m, "tally_rocksdb_memory_bytes") > 0
                  and total(m, "tally_ready") == 1
                  and total(m, "tally_assigned_partitions") == 4)
            return (m, fams) if ok else None
        return cond
    m1, fams = wait_until(settled(20000), 180, "20,000 events processed, output and committed "
                          "in /metrics", running=[t])
    kafka.produce(emb_topic, [(b"c3", bad_emb)])   # read while no input comes
    wait_until(lambda: total(metrics(port)[0], "tally_categories_external") == 2 and
               total(metrics(port)[0], "tally_categories_external_bad_records_total") == 1, 60,
               "the embeddings topic read: 2 taken, 1 refused", running=[t])
    missing = [f for f in FAMILIES if f not in fams]
    assert not missing, "families missing from /metrics: %s" % missing
    lint = exposition_problems(port)
    assert not lint, lint
    problems = []
    deltas = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, problems)
    atts = decode_outputs(kafka.read_all(out.attribution), ATTRIBUTION_ID, schemas[ATTRIBUTION_ID], out.attribution, problems)
    intents = decode_outputs(kafka.read_all(out.intent), INTENT_ID, schemas[INTENT_ID], out.intent,
                             problems)
    nexts = decode_outputs(kafka.read_all(out.categories), NEXTCAT_ID, schemas[NEXTCAT_ID],
                           out.categories, problems)
    assert not problems, problems[:5]
    assert len(deltas) == 20000, "%d interest deltas on the topic" % len(deltas)
    assert nexts and total(m1, "tally_outputs_total", output="next_categories") == len(nexts), \
        "next categories: /metrics %d, topic %d" % (
            total(m1, "tally_outputs_total", output="next_categories"), len(nexts))
    last_next = {}
    for r in nexts:   # each adds up to 1 and moved by the threshold (0.1)
        p = r["p_other"] + sum(c["p"] for c in r["categories"])
        assert abs(p - 1) < 1e-5 and r["moved"] >= 0.1 and len(r["embedding"]) == 16, r
        last_next[r["user_id"]] = r
    scored = total(m1, "tally_categories_scored_total")
    hits = [total(m1, "tally_categories_hits_total", within=w) for w in ("1", "5")]
    assert 0 < hits[0] <= hits[1] <= scored, "next categories: %r of %r" % (hits, scored)
    assert intents and total(m1, "tally_outputs_total", output="intent_delta") == len(intents), \
        "intents: /metrics %d, topic %d" % (total(m1, "tally_outputs_total", output="intent_delta"),
                                            len(intents))
    last_intent = {}
    for r in intents:   # a user's records are in one partition, in order
        last_intent[r["user_id"]] = r
    assert total(m1, "tally_outputs_total", output="attribution") == len(atts), \
        "attributions: /metrics %d, topic %d" % (total(m1, "tally_outputs_total", output="attribution"),
                                                 len(atts))
    purchases = total(m1, "tally_events_total", type="PURCHASE")
    assert purchases > 0 and total(m1, "tally_attributions_total", method="linear") == len(atts)
    assert total(m1, "tally_end_to_end_latency_seconds_count") == 20000
    committed1 = total(m1, "tally_transactions_total", result="committed")
    assert committed1 >= 1 and total(m1, "tally_batch_duration_seconds_count") == committed1, \
        "%d transactions committed, %d batch durations" % (
            committed1, total(m1, "tally_batch_duration_seconds_count"))
    assert total(m1, "tally_ready") == 1 and total(m1, "tally_assigned_partitions") == 4
    # four stores of the default state.cache.mb, far from the process's memory bound
    assert total(m1, "tally_state_cache_budget_bytes") == 4 * 256 * 2**20, \
        total(m1, "tally_state_cache_budget_bytes")
    assert total(m1, "tally_outputs_total", topic=out.interest, output="interest_delta") == 20000
    assert total(m1, "tally_decode_errors_total") == 0 and total(m1, "tally_dead_letters_total") == 0
    assert total(m1, "tally_state_keys") >= 500 and total(m1, "tally_rocksdb_memory_bytes") > 0, \
        "state keys %r, RocksDB memory %r" % (total(m1, "tally_state_keys"),
                                              total(m1, "tally_rocksdb_memory_bytes"))

    # users: the profile equals the interest deltas
    H, alpha, beta = 86400000.0, 0.5, 0.5   # the defaults (tally config list)
    last = {}
    user_ts = {}
    for d in deltas:
        k = (d["user_id"], d["dim"], d["dim_id"])
        if k not in last or d["ts"] >= last[k]["ts"]:
            last[k] = d
        user_ts[d["user_id"]] = max(user_ts.get(d["user_id"], 0), d["ts"])
    users = sorted(user_ts)[:30]

    def profile_problem(u):
        """None when /v1/users/u equals the user's last deltas (decayed to as_of), else what
        differs; the number of interests compared is returned as checked[u]. The stores are
        written just after a commit, so a profile is compared until it agrees or a deadline."""
        s, body = get(port, "/v1/users/%s?as_of=%d&top=0" % (u, user_ts[u]))
        if s != 200:
            return "/v1/users/%s: %d %s" % (u, s, body[:300])
        prof = json.loads(body)
        if prof["user_id"] != u or prof["as_of"] != user_ts[u]:
            return "user %s: answered for %r as of %r" % (u, prof["user_id"], prof["as_of"])
        ln = last_next.get(u)
        want_next = None if not ln else {
            "ts": ln["ts"], "categories": ln["categories"], "p_other": ln["p_other"],
            "embedding": ln["embedding"], "like": ln["like"]}
        if prof.get("next_categories", "absent") != want_next:
            return "user %s: next categories %r, the topic's last %r" % (
                u, prof.get("next_categories", "absent"), want_next)
        li = last_intent.get(u)
        want_intent = {"p": li["p"], "ts": li["ts"]} if li else None
        if prof.get("intent", "absent") != want_intent:
            return "user %s: intent %r, the topic's last %r" % (u, prof.get("intent", "absent"),
                                                              want_intent)
        got = {(i["dim"], i["id"]): i for i in prof["interests"]}
        if not got:
            return "user %s: no interests" % u
        n = 0
        for (uu, dim, dim_id), d in last.items():
            if uu != u:
                continue
            i = got.get((dim, dim_id))
            if i is None:   # dropped below features.epsilon after its last delta
                continue
            k = 2 ** (-(user_ts[u] - d["ts"]) / H)
            for name, want in (("f", d["f"] * k), ("h", d["h"] * k), ("w", alpha * d["f"] * k + beta * d["h"] * k)):
                if not math.isclose(i[name], want, rel_tol=1e-9, abs_tol=1e-12):
                    return "user %s %s %s: %s = %r, deltas give %r" % (u, dim, dim_id, name, i[name], want)
            if d["ts"] == user_ts[u] and not math.isclose(i["w"], d["weight_after"], rel_tol=1e-12):
                return "user %s %s %s: w = %r, the last delta's weight_after %r" % (
                    u, dim, dim_id, i["w"], d["weight_after"])
            n += 1
        checked[u] = n
        return None

    checked = {}
    for u in users:
        why = [None]

        def agrees(u=u, why=why):
            why[0] = profile_problem(u)
            return why[0] is None
        try:
            wait_until(agrees, 30, "user %s's profile" % u, running=[t])
        except AssertionError as e:
            raise AssertionError("%s: %s" % (e, why[0]))
    checked = sum(checked.values())
    assert checked >= 30, "only %d interests checked" % checked
    s, body = get(port, "/v1/users/no-such-user-" + RUN)
    assert s == 404 and '"owned_partitions":[0,1,2,3]' in body, "unknown user: %d %s" % (s, body)
    # the path is percent-decoded once: %25 is a literal '%' in the id
    s, body = get(port, "/v1/users/no%2541such-" + RUN)
    assert s == 404 and json.loads(body)["user_id"] == "no%41such-" + RUN, \
        "a percent-encoded id: %d %s" % (s, body)
    s, _ = get(port, "/v1/users/%s?as_of=yesterday" % users[0])
    assert s == 400, "a bad as_of answered %d" % s
    # the refused embedding is a dead letter, with its reason, in a committed transaction:
    # one of its own when no input comes after it was read
    def dead_letter():
        dead = [r for r in kafka.read_all(out.dlq) if r[3] == bad_emb]
        ok = len(dead) == 1 and any(b"not JSON" in (v or b"") for v in (dead[0][4] or {}).values())
        return dead if ok else None
    wait_until(dead_letter, 30, "the refused embedding's dead letter on %s" % out.dlq, running=[t],
               interval_s=0.5)
    n_rows = attribution_problem(port, atts)
    spend_problem(kafka, port, spend_topic)

    # metrics move when events flow
    gen_produce(work, b, topic, 5000, 2)
    committed1 = total(m1, "tally_transactions_total", result="committed")
    wait_until(settled(25000, committed1 + 1), 180, "25,000 events processed, output and "
               "committed in /metrics, in more transactions", running=[t])
    wait_until(lambda: total(metrics(port)[0], "tally_consumer_lag_records") == 0, 60, "lag 0",
               running=[t])

    # graceful shutdown in the middle of the stream
    gen_produce(work, b, topic, 60000, 3)
    wait_until(lambda: total(metrics(port)[0], "tally_events_total") > 26000, 120,
               "processing of the last 60,000 started", running=[t], interval_s=0.01)
    t0 = time.monotonic()
    t.signal(signal.SIGTERM)
    rc = t.wait(40)
    took = time.monotonic() - t0
    assert rc == 0 and took < 30, "SIGTERM: exit %s after %.1f s (expected 0 within 30 s)" % (rc, took)
    # The last commit's markers reach the output and offsets topics after tally's commit
    # call returns: read once every transaction is marked, then wait for the offsets.
    visible = len(kafka.read_all(out.interest))
    wait_until(lambda: kafka.committed_sum("http-" + topic, topic) == visible, 30,
               "committed offsets equal to the %d interest deltas visible" % visible)
    committed = visible
    assert 25000 < committed <= 85000, "committed %d" % committed
    return "flow: %d events counted, %d interests of %d users equal the deltas; /v1/attribution's " \
           "%d category rows equal the sums of the %d attributions on the topic; shutdown in " \
           "%.2f s with %d of 85,000 committed" % (25000, checked, len(users), n_rows, len(atts),
                                                   took, committed)


def spend_problem(kafka, port, spend_topic):
    """Spend rows on rollup.spend.topic join the answer per channel and day: the row gets
    its spend and cost per conversion = spend / conversions; a bad row is left out; a
    channel with spend and no credit gets a row; by category there is no spend."""
    s, body = get(port, "/v1/attribution?by=channel&window=day&methods=linear")
    assert s == 200, "/v1/attribution by day: %d %s" % (s, body[:200])
    first = json.loads(body)["rows"][0]
    day = time.strftime("%Y-%m-%d", time.gmtime(first["window_start"] / 1000))
    kafka.produce(spend_topic, [(None, ("%s,%s,50.5" % (day, first["id"])).encode()),
                                (None, b"not,a spend row"),
                                (None, ("%s,tv,12" % day).encode())])
    s, body = get(port, "/v1/attribution?by=channel&window=day&methods=linear")
    assert s == 200, "/v1/attribution with spend: %d %s" % (s, body[:200])
    rows = {(r["id"], r["window_start"]): r for r in json.loads(body)["rows"]}
    r = rows[(first["id"], first["window_start"])]
    want = 50.5 / r["conversions"]["linear"]
    assert r["spend"] == 50.5 and math.isclose(r["cost_per_conversion"]["linear"], want,
                                               rel_tol=1e-9), "spend row: %r" % r
    tv = rows.get(("tv", first["window_start"]))
    assert tv and tv["spend"] == 12 and tv["conversions"]["linear"] == 0, "tv: %r" % tv
    s, body = get(port, "/v1/attribution?by=category")
    assert s == 200 and "spend" not in json.loads(body)["rows"][0], \
        "by category with a spend topic: %d %s" % (s, body[:200])


def attribution_problem(port, atts):
    """/v1/attribution?by=category: every row's purchases, touchpoints and conversions per
    rule-based method equal the sums made here from the attribution records read off the
    topic (to 1e-9); a bad parameter is 400 naming it; format=html is the report's page.
    Returns the number of rows compared."""
    rows = {}
    for a in atts:
        seen = set()
        for i, tp in enumerate(a["touchpoints"]):
            k = tp.get("category_id") or "(none)"
            r = rows.setdefault(k, {"purchases": 0, "touchpoints": 0, "conversions": {}})
            r["touchpoints"] += 1
            if k not in seen:
                seen.add(k)
                r["purchases"] += 1
            for m, cr in a["credits"].items():
                if cr is not None and m in ("last_touch", "first_touch", "linear", "time_decay",
                                            "position_based"):
                    r["conversions"][m] = r["conversions"].get(m, 0.0) + cr[i]
    s, body = get(port, "/v1/attribution?by=category&methods=last_touch,first_touch,linear,"
                  "time_decay,position_based")
    assert s == 200, "/v1/attribution: %d %s" % (s, body[:300])
    got = {r["id"]: r for r in json.loads(body)["rows"]}
    assert set(got) == set(rows), "categories: %d answered, %d in the records" % (len(got), len(rows))
    for k, w in rows.items():
        g = got[k]
        assert (g["purchases"], g["touchpoints"]) == (w["purchases"], w["touchpoints"]), \
            "%s: purchases/touchpoints %r, records %r" % (k, (g["purchases"], g["touchpoints"]),
                                                         (w["purchases"], w["touchpoints"]))
        for m, c in w["conversions"].items():
            assert math.isclose(g["conversions"][m], c, rel_tol=1e-9, abs_tol=1e-9), \
                "%s %s: %r answered, %r in the records" % (k, m, g["conversions"][m], c)
    s, body = get(port, "/v1/attribution?by=nothing")
    assert s == 400 and "--by" in json.loads(body)["error"], "a bad by: %d %s" % (s, body[:200])
    s, body = get(port, "/v1/attribution?format=html")
    assert s == 200 and body.startswith("<!DOCTYPE html>") and "<svg" in body, \
        "format=html: %d %s" % (s, body[:200])
    return len(rows)


def test_restart_profile(work, b, kafka):
    """/v1/users/{id} without as_of right after a restore from the changelog (the state
    directory deleted; the partition's stream time is not known until its next event),
    then after a new event of that user."""
    schemas = load_schemas()
    topic = "http-restart-" + RUN
    out = OutputTopics("http-restart-" + RUN)
    kafka.create_topics({topic: 1})
    out.create(kafka, partitions=1)
    gen_produce(work, b, topic, 2000, 4)
    state = os.path.join(work, "restart-state")
    run_tally(run_args(b, topic, out, state, ["--until-end"]), 180,
              os.path.join(work, "restart-1.log"), "tally run --until-end")
    problems = []
    deltas = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, problems)
    assert not problems, problems[:5]
    newest = {}
    for d in deltas:
        newest[d["user_id"]] = max(newest.get(d["user_id"], 0), d["ts"])
    u = max(newest, key=lambda x: (newest[x], x))   # a user whose newest event is the latest
    shutil.rmtree(state)
    t = Tally(run_args(b, topic, out, state), os.path.join(work, "restart-2.log"), "tally run (restored)")
    port = port_of(t)
    wait_until(lambda: get(port, "/readyz")[0] == 200, 120, "/readyz 200 after the restore", running=[t])
    s, body = get(port, "/v1/users/%s?top=0" % u)
    assert s == 200, "/v1/users/%s after the restore: %d %s" % (u, s, body[:300])
    prof = json.loads(body)
    assert prof["as_of"] == newest[u], "as_of %r after the restore, the user's newest event %r" % (
        prof["as_of"], newest[u])
    bad = [i for i in prof["interests"] if not all(isinstance(i[k], float) and math.isfinite(i[k])
                                                   for k in ("f", "h", "w"))]
    assert prof["interests"] and not bad, "interests after the restore: %s" % (bad or prof)
    # One more event of u, a day after everything: the profile moves to its time.
    ts = newest[u] + 86400000
    ev = {"event_id": "restart-" + RUN, "user_id": u, "item_id": "i-restart", "category_id": "c-restart",
          "type": "BROWSE", "ts": ts, "channel": None, "dwell_ms": None, "value": None,
          "propensity": None}
    kafka.produce(topic, [(u.encode(), frame(1, avro_encode(schemas[1], ev)))])

    def moved():
        s, body = get(port, "/v1/users/%s?top=0" % u)
        p = json.loads(body) if s == 200 else {}
        got = {i["id"]: i for i in p.get("interests", [])}
        return p if p.get("as_of") == ts and "c-restart" in got else None
    p2 = wait_until(moved, 60, "user %s's profile at the new event's time" % u, running=[t])
    w = {i["id"]: i["w"] for i in p2["interests"]}
    t.stop()
    # The instance id (no instance.id set): kept in the state directory, so the same after a
    # restart with it, another one with a new state directory (the deleted one).
    run_tally(run_args(b, topic, out, state, ["--until-end"]), 180,
              os.path.join(work, "restart-3.log"), "tally run --until-end (same state.dir)")
    ids = []
    for name in ("restart-1.log", "restart-2.log", "restart-3.log"):
        with open(os.path.join(work, name), errors="replace") as fh:
            found = re.findall(r"instance\.id=([0-9a-f-]{36}) ", fh.read())
        assert found, "%s: no instance.id line" % name
        ids.append(found[0])
    with open(os.path.join(state, "instance.id")) as fh:
        kept = fh.read().strip()
    assert ids[0] != ids[1] and ids[1] == ids[2] == kept, "instance ids %s, kept %s" % (ids, kept)
    return "user %s: as_of %d (its newest event) right after the restore, %d interests finite; " \
           "after one more event as_of %d, c-restart w %.3f; instance id kept in the state " \
           "directory across restarts, new for a new one" % (
               u, prof["as_of"], len(prof["interests"]), p2["as_of"], w["c-restart"])


def test_reset(work, b, kafka):
    """tally reset: refused while an instance of the group runs (nothing deleted); then
    --execute deletes the group's offsets, the changelog topic and the local state but
    instance.id, and the next run reprocesses the input from the beginning, with the same
    outputs as the first time."""
    schemas = load_schemas()
    topic = "http-reset-" + RUN
    out = OutputTopics("http-reset-" + RUN)
    group = "http-" + topic
    changelog = group + "-users-changelog"
    kafka.create_topics({topic: 2})
    out.create(kafka, partitions=2)
    gen_produce(work, b, topic, 3000, 5)
    state = os.path.join(work, "reset-state")
    base = ["-X", "kafka.bootstrap.servers=" + b, "-X", "kafka.group.id=" + group,
            "-X", "state.dir=" + state]
    run_tally(run_args(b, topic, out, state, ["--until-end"]), 180, os.path.join(work, "reset-1.log"),
              "tally run --until-end")
    problems = []
    first = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, problems)
    assert not problems and len(first) == 3000, (len(first), problems[:3])
    committed = kafka.committed(group, topic)
    assert all(o > 0 for o in committed.values()), committed
    with open(os.path.join(state, "instance.id")) as fh:
        iid = fh.read()

    t = Tally(run_args(b, topic, out, state), os.path.join(work, "reset-running.log"), "tally run")
    wait_until(lambda: get(port_of(t), "/readyz")[0] == 200, 120, "/readyz 200", running=[t])
    rc = subprocess.run([TALLY_BIN, "reset", "--execute"] + base, capture_output=True, text=True,
                        timeout=120)
    assert rc.returncode == 1 and "still has members" in rc.stderr, \
        "reset with a running instance: exit %d, %s" % (rc.returncode, rc.stderr)
    t.stop()
    assert kafka.committed(group, topic) == committed and changelog in kafka.topics(), \
        "a refused reset deleted something"

    dry = subprocess.run([TALLY_BIN, "reset"] + base, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "dry run" in dry.stderr and os.path.isdir(os.path.join(state, "p0")), \
        "dry run: exit %d, %s" % (dry.returncode, dry.stderr)
    rc = subprocess.run([TALLY_BIN, "reset", "--execute"] + base, capture_output=True, text=True,
                        timeout=120)
    assert rc.returncode == 0, "reset: exit %d, %s" % (rc.returncode, rc.stderr)
    assert all(o < 0 for o in kafka.committed(group, topic).values()), kafka.committed(group, topic)
    assert changelog not in kafka.topics(), "the changelog topic is still there"
    assert sorted(os.listdir(state)) == ["instance.id"], os.listdir(state)

    run_tally(run_args(b, topic, out, state, ["--until-end"]), 180, os.path.join(work, "reset-2.log"),
              "tally run --until-end after the reset")
    both = decode_outputs(kafka.read_all(out.interest), 2, schemas[2], out.interest, problems)
    assert not problems and len(both) == 6000, (len(both), problems[:3])
    key = lambda d: (d["event_id"], d["dim"], d["dim_id"])  # noqa: E731
    again = sorted(both, key=key)[1::2]
    assert [(key(d), d["weight_after"]) for d in again] == \
        [(key(d), d["weight_after"]) for d in sorted(first, key=key)], "reprocessed deltas differ"
    with open(os.path.join(state, "instance.id")) as fh:
        assert fh.read() == iid, "instance.id changed"
    return "refused with a running instance; --execute: group, changelog and local state gone " \
           "(instance.id kept); the next run reprocessed all 3,000 events to the same deltas"


def main():
    b = bootstrap()
    if not b:
        print("no broker: TALLY_TEST_BOOTSTRAP is not set")
        return SKIP
    work = tempfile.mkdtemp(prefix="tally-http-")
    kafka = Kafka(b)
    failed = 0
    for name, fn in (("not-ready", lambda: test_not_ready(work)),
                     ("flow", lambda: test_flow_users_shutdown(work, b, kafka)),
                     ("restart", lambda: test_restart_profile(work, b, kafka)),
                     ("reset", lambda: test_reset(work, b, kafka))):
        t0 = time.monotonic()
        try:
            msg = fn()
            print("PASS %s (%.0f s)%s" % (name, time.monotonic() - t0, ": " + msg if msg else ""))
        except AssertionError as e:
            import traceback
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            print("FAIL %s (%.0f s), line %d:\n  %s" % (name, time.monotonic() - t0, where.lineno,
                                                      e or where.line))
        finally:
            stop_all()
    kafka.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
