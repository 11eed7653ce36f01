#!/usr/bin/env python3
"""Checks the deployment files without Docker: Dockerfile, docker-compose.yml,
deploy/prometheus, deploy/grafana, deploy/systemd, deploy/tally.properties, docs/deploy.md.

What needs no Docker engine is checked here: the files parse, names and ports agree with
each other (compose service names, tally's HTTP port, Prometheus' target, Grafana's
datasource), every metric the dashboard and the alert rules use is one tally exports
(docs/metrics.md's table), the TALLY_* variables and the example properties file are
valid configuration (`tally config check`), the image's build stage runs the README's build
script and its runtime stage has every shared library tally links against. With a docker
client that has compose, `docker compose config` too; with systemd-analyze, `verify` of the
unit. What cannot be checked without an engine (images pull, containers start) is said so.

Environment: TALLY_SOURCE_DIR (default: this file's repository), TALLY_BIN (a built tally;
without it the checks that run tally are reported as not run).
Exit status 0 when every check passed.
"""
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import yaml

ROOT = Path(os.environ.get("TALLY_SOURCE_DIR") or Path(__file__).resolve().parents[2])
TALLY_BIN = os.environ.get("TALLY_BIN") or ""
if TALLY_BIN and not os.access(TALLY_BIN, os.X_OK):
    TALLY_BIN = ""

# Used when docs/metrics.md does not exist: the metrics the dashboard is built on.
FALLBACK_METRICS = {
    "tally_events_total": "counter",
    "tally_consumer_lag_records": "gauge",
    "tally_batch_duration_seconds": "histogram",
    "tally_end_to_end_latency_seconds": "histogram",
    "tally_dead_letters_total": "counter",
    "tally_transactions_total": "counter",
    "tally_outputs_total": "counter",
    "tally_credit_share": "gauge",
    "tally_model_auc": "gauge",
    "tally_model_log_loss": "gauge",
    "tally_restore_remaining_records": "gauge",
    "tally_ready": "gauge",
}
# Each of these must have a panel in the dashboard.
DASHBOARD_MUST_SHOW = sorted(FALLBACK_METRICS)
SHUTDOWN_TIMEOUT_DEFAULT_MS = 30000
METRIC_RE = re.compile(r"\btally_[a-z0-9_]+\b")
SUFFIXES = ("_bucket", "_sum", "_count", "_created")

failures = []


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def run_check(fn):
    """Runs one check; an AssertionError or any exception is a failure with its message."""
    name = fn.__name__
    try:
        fn()
        print(f"ok      {name}")
    except AssertionError as e:
        failures.append(name)
        print(f"FAILED  {name}: {e}")
    except FileNotFoundError as e:
        failures.append(name)
        print(f"FAILED  {name}: missing {e.filename}")
    except Exception:  # a bug: report it with the trace, go on
        failures.append(name)
        print(f"FAILED  {name}: unexpected error")
        traceback.print_exc(file=sys.stdout)


def note(msg):
    print(f"note    {msg}")


def read(rel):
    return (ROOT / rel).read_text(encoding="utf-8")


def load_yaml(rel):
    with open(ROOT / rel, encoding="utf-8") as f:
        return yaml.safe_load(f)


def clean_env(extra=None):
    """The environment without TALLY_* (so only what a check sets counts), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update(extra or {})
    return env


def run(cmd, env=None, timeout=60):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def host_port(s):
    """'0.0.0.0:9464' or 'http://tally:9464/x' -> (host, port)."""
    s = re.sub(r"^[a-z]+://", "", s).split("/", 1)[0]
    host, _, port = s.rpartition(":")
    assert port.isdigit(), f"no port in {s!r}"
    return host.strip("[]"), int(port)


COMPOSE = load_yaml("docker-compose.yml")
SERVICES = COMPOSE.get("services") or {}


def service_env(name):
    env = SERVICES[name].get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends(name):
    d = SERVICES[name].get("depends_on") or {}
    if isinstance(d, list):
        return {t: {"condition": "service_started"} for t in d}
    return {t: (c or {"condition": "service_started"}) for t, c in d.items()}


def built_services():
    return [n for n, s in SERVICES.items() if s.get("build") is not None]


def tally_service():
    """The compose service that runs `tally run` (built from this repository)."""
    runs = [n for n in built_services()
            if not SERVICES[n].get("entrypoint") and not SERVICES[n].get("command")]
    assert len(runs) == 1, f"expected one built service with the image's `run`, got {runs}"
    return runs[0]


def dockerfile_stages():
    """[(FROM line, [instruction lines])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    stages = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.upper().startswith("FROM "):
            stages.append((s, []))
        elif stages:
            stages[-1][1].append(s)
    return stages


def instr(lines, word):
    return [l[len(word):].strip() for l in lines if l.upper().startswith(word + " ")]


def tally_listen_port():
    host, port = host_port(service_env(tally_service())["TALLY_HTTP_LISTEN"])
    assert host in ("0.0.0.0", "::", ""), \
        f"TALLY_HTTP_LISTEN binds {host}: Prometheus in another container cannot reach it"
    return port


def exported_metrics():
    """{name: type} from docs/metrics.md's table (first cell a `tally_...` name), else the
    fallback list."""
    doc = ROOT / "docs" / "metrics.md"
    if not doc.exists():
        return dict(FALLBACK_METRICS), "the list in tests/deploy/test_deploy.py (no docs/metrics.md)"
    names = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`?(tally_[a-z0-9_]+)(\{[^}]*\})?`?", cells[0]) if cells else None
        if m:
            kind = next((c.strip("`").lower() for c in cells[1:]
                         if c.strip("`").lower() in ("counter", "gauge", "histogram", "summary")), "")
            names[m.group(1)] = kind
    assert names, "docs/metrics.md has no table row starting with a tally_ metric name"
    return names, "docs/metrics.md"


def is_exported(name, exported):
    if name in exported:
        return True
    for suf in SUFFIXES:
        if name.endswith(suf) and exported.get(name[: -len(suf)]) in ("histogram", "summary", ""):
            return True
    return False


def strings_in(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings_in(v)


def dashboard():
    return json.loads(read("deploy/grafana/dashboards/tally.json"))


def leaf_panels(d):
    for p in d.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def bind_source(service, target):
    """The repository path bind-mounted at `target` in `service` (None if not mounted)."""
    for v in SERVICES[service].get("volumes") or []:
        if isinstance(v, dict):
            src, dst = v.get("source"), v.get("target")
        else:
            parts = v.split(":")
            src, dst = parts[0], parts[1] if len(parts) > 1 else None
        if dst == target and src and src.startswith("."):
            return ROOT / src
    return None


def service_with_image(prefix):
    found = [n for n, s in SERVICES.items() if str(s.get("image", "")).startswith(prefix)]
    return found


# ----------------------------------------------------------------------------------------
# docker-compose.yml


@check
def compose_services_have_image_or_build():
    assert SERVICES, "docker-compose.yml has no services"
    for name, s in SERVICES.items():
        assert s.get("image") or s.get("build") is not None, f"service {name}: neither image nor build"


@check
def compose_has_the_stack():
    kafka = service_with_image("apache/kafka:")
    assert kafka, "no apache/kafka service"
    assert any(SERVICES[k]["image"] == "apache/kafka:3.9.2" for k in kafka), "Kafka is not 3.9.2"
    broker = [k for k in kafka if "KAFKA_PROCESS_ROLES" in service_env(k)]
    assert len(broker) == 1, f"expected one broker service, got {broker}"
    assert "controller" in service_env(broker[0])["KAFKA_PROCESS_ROLES"], "Kafka is not KRaft"
    assert service_with_image("confluentinc/cp-schema-registry") or \
        service_with_image("apicurio/apicurio-registry"), "no schema registry"
    assert service_with_image("prom/prometheus"), "no Prometheus"
    assert service_with_image("grafana/grafana"), "no Grafana"
    assert "demo-loader" in SERVICES, "no demo-loader service"
    for name, s in SERVICES.items():
        img = str(s.get("image", ""))
        if s.get("build") is None:
            assert ":" in img and not img.endswith(":latest"), f"service {name}: image {img!r} is not pinned"


@check
def compose_depends_on_targets_exist():
    ok_conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    docker_health = bool(instr(dockerfile_stages()[-1][1], "HEALTHCHECK"))
    for name in SERVICES:
        for target, cond in depends(name).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            c = cond.get("condition", "service_started")
            assert c in ok_conditions, f"{name} -> {target}: condition {c}"
            if c == "service_healthy":
                hc = SERVICES[target].get("healthcheck")
                has = (hc and not hc.get("disable")) or \
                      (hc is None and SERVICES[target].get("build") is not None and docker_health)
                assert has, f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
            if c == "service_completed_successfully":
                assert SERVICES[target].get("restart", "no") == "no", \
                    f"{name} waits for {target} to complete, but {target} restarts"


@check
def compose_volumes_exist():
    declared = set((COMPOSE.get("volumes") or {}).keys())
    for name, s in SERVICES.items():
        for v in s.get("volumes") or []:
            src = v.get("source") if isinstance(v, dict) else v.split(":")[0]
            if not src or src.startswith("/"):
                continue
            if src.startswith("."):
                assert (ROOT / src).exists(), f"service {name}: {src} does not exist"
            else:
                assert src in declared, f"service {name}: volume {src} not declared under volumes:"
    used = {(v.get("source") if isinstance(v, dict) else v.split(":")[0])
            for s in SERVICES.values() for v in s.get("volumes") or []}
    unused = declared - used
    assert not unused, f"volumes declared but not used: {sorted(unused)}"


@check
def compose_tally_environment():
    t = tally_service()
    env = service_env(t)
    for key in ("TALLY_KAFKA_BOOTSTRAP_SERVERS", "TALLY_SCHEMA_REGISTRY_URL", "TALLY_HTTP_LISTEN",
                "TALLY_STATE_DIR", "TALLY_INSTANCE_ID"):
        assert env.get(key), f"{t}: {key} is not set"
    for bs in env["TALLY_KAFKA_BOOTSTRAP_SERVERS"].split(","):
        host, port = host_port(bs)
        assert host in SERVICES, f"bootstrap server {bs}: no service {host}"
        listeners = service_env(host).get("KAFKA_LISTENERS", "")
        assert re.search(rf"://[^,]*:{port}\b", listeners), f"{host} does not listen on {port}"
    host, port = host_port(env["TALLY_SCHEMA_REGISTRY_URL"])
    assert host in SERVICES, f"schema registry URL names no service ({host})"
    reg_listen = " ".join(service_env(host).values())
    assert f":{port}" in reg_listen, f"{host} does not listen on {port}"
    port = tally_listen_port()
    published = [str(p) for p in SERVICES[t].get("ports") or []]
    assert any(p.endswith(f":{port}") or p == str(port) for p in published), \
        f"{t} does not publish its HTTP port {port}"
    # Its state volume is where state.dir points.
    vols = [v.split(":")[1] for v in SERVICES[t].get("volumes") or [] if isinstance(v, str)]
    assert env["TALLY_STATE_DIR"] in vols, f"TALLY_STATE_DIR {env['TALLY_STATE_DIR']} is not a volume"
    grace = str(SERVICES[t].get("stop_grace_period", "10s"))
    m = re.fullmatch(r"(\d+)s", grace)
    assert m and int(m.group(1)) * 1000 > shutdown_timeout_ms(), \
        f"{t}: stop_grace_period {grace} is not above shutdown.timeout.ms"


@check
def compose_demo_loader():
    s = SERVICES["demo-loader"]
    image = s.get("image")
    t = tally_service()
    assert image and image == SERVICES[t].get("image"), "demo-loader does not use tally's image"
    cmd = " ".join(s.get("command") if isinstance(s.get("command"), list) else [s.get("command", "")])
    assert re.search(r"\btally gen\b.*--output (\S+)", cmd), "demo-loader does not run tally gen --output"
    out = re.search(r"--output (\S+)", cmd).group(1)
    m = re.search(r"\btally produce\b(.*)", cmd)
    assert m, "demo-loader does not run tally produce"
    args = m.group(1)
    assert f"--input {out}" in args and "--format canonical" in args, \
        "tally produce does not read the generated file as canonical CSV"
    topic = re.search(r"--topic (\S+)", args).group(1)
    inputs = service_env(t).get("TALLY_INPUT_TOPICS", "tally.events")
    assert topic in inputs.split(","), f"demo-loader produces to {topic}, tally reads {inputs}"
    assert "TALLY_KAFKA_BOOTSTRAP_SERVERS" in service_env("demo-loader")
    kafka = [k for k in service_with_image("apache/kafka:") if "KAFKA_PROCESS_ROLES" in service_env(k)][0]
    assert depends("demo-loader").get(kafka, {}).get("condition") == "service_healthy", \
        "demo-loader does not wait for Kafka to be healthy"
    assert s.get("restart", "no") == "no", "demo-loader is one-shot: restart must be no"
    if TALLY_BIN:
        for sub in ("gen", "produce"):
            r = run([TALLY_BIN, sub, "--help"])
            used = re.findall(r"--[a-z-]+", re.search(rf"\btally {sub}\b(.*?)(&&|$)", cmd).group(1))
            for opt in used:
                assert opt in r.stdout + r.stderr, f"tally {sub} has no option {opt}"


@check
def compose_tally_config_is_valid():
    if not TALLY_BIN:
        note("TALLY_BIN not set: the TALLY_* variables of docker-compose.yml were not checked with tally")
        return
    image_env = {}
    for e in instr(dockerfile_stages()[-1][1], "ENV"):
        for k, v in re.findall(r"(\w+)=(\S+)", e):
            image_env[k] = v
    # tally ignores a TALLY_* variable that names no key: compare the names with its keys.
    listed = run([TALLY_BIN, "config", "list"], env=clean_env()).stdout
    known = {"TALLY_" + k.upper().replace(".", "_")
             for k in re.findall(r"^([a-z0-9_.]+) \(", listed, re.M)}
    for name in (n for n in SERVICES if SERVICES[n].get("image") == SERVICES[tally_service()].get("image")):
        env = {**image_env, **service_env(name)}
        env = {k: v for k, v in env.items() if k.startswith("TALLY_") and "${" not in v}
        unknown = sorted(k for k in env if k not in known and not k.startswith("TALLY_KAFKA_"))
        assert not unknown, f"service {name}: {', '.join(unknown)} name no configuration key"
        r = run([TALLY_BIN, "config", "check"], env=clean_env(env))
        assert r.returncode == 0, f"service {name}: tally config check: {(r.stdout + r.stderr).strip()}"


@check
def compose_config_with_docker():
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(cmd[0]):
            continue
        if run(cmd + ["version"]).returncode != 0:
            continue
        r = run(cmd + ["-f", str(ROOT / "docker-compose.yml"), "config", "-q"], timeout=120)
        assert r.returncode == 0, f"{' '.join(cmd)} config: {r.stderr.strip()}"
        print(f"        {' '.join(cmd)} config: valid")
        return
    note("no docker compose client installed: docker-compose.yml was checked with PyYAML only, "
         "not with `docker compose config`")


# ----------------------------------------------------------------------------------------
# Prometheus


@check
def prometheus_scrapes_tally():
    prom = service_with_image("prom/prometheus")[0]
    src = bind_source(prom, "/etc/prometheus")
    assert src == ROOT / "deploy/prometheus", f"{prom} does not mount deploy/prometheus at /etc/prometheus"
    cfg = load_yaml("deploy/prometheus/prometheus.yml")
    jobs = cfg.get("scrape_configs") or []
    assert jobs, "no scrape_configs"
    targets = [t for j in jobs if j.get("job_name") == "tally"
               for sc in j.get("static_configs") or [] for t in sc.get("targets") or []]
    assert targets, "no static target in job tally"
    port = tally_listen_port()
    for j in jobs:
        if j.get("job_name") == "tally":
            assert j.get("metrics_path", "/metrics") == "/metrics", "metrics_path is not /metrics"
    for t in targets:
        host, p = host_port(t)
        assert host == tally_service(), f"target {t}: host is not the compose service {tally_service()}"
        assert p == port, f"target {t}: port is not tally's http.listen port {port}"
    for rf in cfg.get("rule_files") or []:
        local = ROOT / "deploy/prometheus" / Path(rf).name
        assert rf.startswith("/etc/prometheus/") and local.exists(), f"rule file {rf} is not in deploy/prometheus"
        rules = yaml.safe_load(local.read_text(encoding="utf-8"))
        for g in rules["groups"]:
            for rule in g["rules"]:
                assert rule.get("alert") or rule.get("record"), f"rule without alert or record in {rf}"
                promql_balanced(rule["expr"], f"{rf}: {rule.get('alert') or rule.get('record')}")


def promql_balanced(expr, where):
    stack = []
    pairs = {")": "(", "]": "[", "}": "{"}
    in_str = None
    for ch in expr:
        if in_str:
            if ch == in_str:
                in_str = None
            continue
        if ch in "\"'":
            in_str = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            assert stack and stack[-1] == pairs[ch], f"{where}: unbalanced {ch} in {expr}"
            stack.pop()
    assert not stack and not in_str, f"{where}: unclosed bracket or quote in {expr}"
    for m in re.finditer(r"histogram_quantile\(\s*[0-9.]+\s*,(.*)", expr):
        assert "_bucket" in m.group(1) and re.search(r"\bby\s*\([^)]*\ble\b", m.group(1)), \
            f"{where}: histogram_quantile needs _bucket series aggregated by le"


# ----------------------------------------------------------------------------------------
# Grafana


@check
def grafana_provisioning():
    graf = service_with_image("grafana/grafana")[0]
    prov = bind_source(graf, "/etc/grafana/provisioning")
    assert prov == ROOT / "deploy/grafana/provisioning", "Grafana does not mount deploy/grafana/provisioning"
    ds = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    proms = [d for d in ds if d.get("type") == "prometheus"]
    assert len(proms) == 1, "expected one Prometheus datasource"
    host, port = host_port(proms[0]["url"])
    prom = service_with_image("prom/prometheus")[0]
    assert host == prom and port == 9090, f"datasource URL {proms[0]['url']} is not {prom}:9090"
    providers = load_yaml("deploy/grafana/provisioning/dashboards/tally.yml")["providers"]
    paths = [p["options"]["path"] for p in providers]
    assert any(bind_source(graf, p) == ROOT / "deploy/grafana/dashboards" for p in paths), \
        f"no dashboard provider path {paths} is where deploy/grafana/dashboards is mounted"


@check
def grafana_dashboard_panels():
    d = dashboard()
    uid = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]["uid"]
    ds_vars = {v["name"] for v in d.get("templating", {}).get("list", [])
               if v.get("type") == "datasource" and v.get("query") == "prometheus"}
    ok_uids = {uid} | {f"${{{v}}}" for v in ds_vars} | {f"${v}" for v in ds_vars}
    panels = list(leaf_panels(d))
    assert panels, "the dashboard has no panels"
    ids = [p.get("id") for p in panels]
    assert len(set(ids)) == len(ids), "panel ids repeat"
    for p in panels:
        title = p.get("title", p.get("id"))
        ds = p.get("datasource")
        assert isinstance(ds, dict) and ds.get("uid") in ok_uids and ds.get("type") == "prometheus", \
            f"panel {title!r}: datasource {ds} is not the provisioned Prometheus"
        targets = p.get("targets") or []
        assert targets, f"panel {title!r} has no targets"
        for t in targets:
            assert t.get("expr"), f"panel {title!r}: a target without expr"
            tds = t.get("datasource")
            assert tds is None or tds.get("uid") in ok_uids, f"panel {title!r}: target datasource {tds}"
            promql_balanced(t["expr"], f"panel {title!r}")
        gp = p.get("gridPos") or {}
        assert all(k in gp for k in "xywh") and gp["x"] + gp["w"] <= 24, f"panel {title!r}: gridPos {gp}"
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for m in DASHBOARD_MUST_SHOW:
        assert m in exprs, f"no panel shows {m}"


@check
def metric_names_are_exported():
    exported, source = exported_metrics()
    print(f"        exported metrics from {source}: {len(exported)}")
    used = {}
    for s in strings_in(dashboard()):
        for m in METRIC_RE.findall(s):
            used.setdefault(m, "deploy/grafana/dashboards/tally.json")
    prom_dir = ROOT / "deploy/prometheus"
    for f in sorted(prom_dir.glob("*.yml")):
        for s in strings_in(yaml.safe_load(f.read_text(encoding="utf-8"))):
            for m in METRIC_RE.findall(s):
                used.setdefault(m, str(f.relative_to(ROOT)))
    assert used, "no tally_ metric found in the dashboard or the Prometheus files"
    unknown = sorted(f"{m} ({where})" for m, where in used.items() if not is_exported(m, exported))
    assert not unknown, f"metrics not exported by tally (per {source}): {', '.join(unknown)}"


# ----------------------------------------------------------------------------------------
# Dockerfile


def readme_build_scripts():
    """Scripts the README's build instructions name (scripts/*.sh other than the demo and
    test commands)."""
    found = set(re.findall(r"scripts/[a-z0-9_-]+\.sh", read("README.md")))
    return found - {"scripts/demo.sh", "scripts/test.sh"}


def scripts_run_by(text, seen):
    for s in re.findall(r"scripts/[a-z0-9_-]+\.sh", text):
        if s not in seen and (ROOT / s).exists():
            seen.add(s)
            scripts_run_by(read(s), seen)
    return seen


@check
def dockerfile_stages_and_runtime():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the Dockerfile is not multi-stage"
    build_from, build = stages[0]
    run_from, runtime = stages[-1]
    assert re.match(r"FROM debian:bookworm\b.* AS build$", build_from, re.I), build_from
    assert re.match(r"FROM debian:bookworm", run_from, re.I), run_from
    for line in (build_from, run_from):   # pinned: a dated tag and the index digest
        assert re.match(r"FROM debian:bookworm-\d{8}(-slim)?@sha256:[0-9a-f]{64}\b", line), \
            f"not pinned by version and digest: {line}"
    run_lines = " ".join(instr(runtime, "RUN"))
    assert "-dev" not in run_lines and "build-essential" not in run_lines and "cmake" not in run_lines, \
        "the runtime stage installs build tools or -dev packages"
    user = instr(runtime, "USER")
    assert user and user[-1] not in ("root", "0"), "the runtime stage runs as root"
    assert user[-1].split(":")[0] in ("tally", "10001"), f"runtime user is {user[-1]}, not tally"
    assert re.search(r"useradd\b.*\btally\b", run_lines), "no user tally is created"
    assert any("--from=build" in c for c in instr(runtime, "COPY")), "nothing is copied from the build stage"
    ep = instr(runtime, "ENTRYPOINT")
    assert ep and json.loads(ep[-1])[0] in ("tally", "/usr/local/bin/tally"), f"ENTRYPOINT {ep}"
    cmd = instr(runtime, "CMD")
    assert cmd and json.loads(cmd[-1]) == ["run"], f"CMD {cmd}"
    env = " ".join(instr(runtime, "ENV"))
    assert "TALLY_STATE_DIR=/var/lib/tally" in env, "state is not at /var/lib/tally"
    assert any("/var/lib/tally" in v for v in instr(runtime, "VOLUME")), "/var/lib/tally is not a VOLUME"
    port = tally_listen_port()
    assert str(port) in " ".join(instr(runtime, "EXPOSE")).split(), f"EXPOSE lacks {port}"
    hc = " ".join(instr(runtime, "HEALTHCHECK"))
    assert f"http://127.0.0.1:{port}/healthz" in hc, f"HEALTHCHECK does not poll 127.0.0.1:{port}/healthz"
    assert re.search(r"\bcurl\b", run_lines), "the health check uses curl, which is not installed"
    m = re.search(r"TALLY_HTTP_LISTEN=(\S+)", env)
    assert m and host_port(m.group(1))[1] == port, "the image's TALLY_HTTP_LISTEN port differs"


@check
def dockerfile_builds_with_the_readme_script():
    stages = dockerfile_stages()
    build_runs = " ".join(instr(stages[0][1], "RUN"))
    run_scripts = scripts_run_by(build_runs, set())
    direct = set(re.findall(r"scripts/[a-z0-9_-]+\.sh", build_runs))
    assert direct, "the build stage runs no script of scripts/"
    readme = readme_build_scripts()
    assert readme, "the README names no build script"
    missing = readme - run_scripts
    assert not missing, f"the README's {sorted(missing)} is not run by the Dockerfile's build stage"
    if "scripts/build.sh" in readme:
        assert "scripts/build.sh" in direct, "the README builds with scripts/build.sh, the Dockerfile does not"
    # The build itself: the README's CMake generator, and the binary the runtime copies.
    cmake_text = build_runs + " ".join(read(s) for s in run_scripts)
    assert re.search(r"cmake -S \. -B \S+ -G Ninja", cmake_text), "no `cmake -S . -B DIR -G Ninja` in the build"
    copies = " ".join(instr(stages[-1][1], "COPY"))
    m = re.search(r"cmake --install build --prefix (\S+) --strip", build_runs)
    assert m, "the build stage does not install (cmake --install build --prefix DIR --strip)"
    assert re.search(r"--from=build %s/? /usr/local/?" % re.escape(m.group(1)), copies), \
        "the runtime does not copy the installation (%s) to /usr/local" % m.group(1)
    assert "-DCMAKE_INSTALL_PREFIX=/usr/local" in build_runs, \
        "the build is not configured for /usr/local, where the runtime puts it"
    assert "TALLY_SCHEMA_DIR" not in " ".join(instr(stages[-1][1], "ENV")), \
        "the image points schema.dir somewhere: the installed schemas are found by the binary"
    dockerignore = read(".dockerignore").split()
    assert "build" in dockerignore, ".dockerignore does not keep local build trees out of the context"


@check
def dockerfile_runtime_has_every_library():
    tools = [shutil.which(t) for t in ("ldd", "dpkg", "apt-cache")]
    if not TALLY_BIN or not all(tools):
        note("runtime libraries not checked (needs TALLY_BIN, ldd, dpkg and apt-cache)")
        return
    m = re.search(r"apt-get install[^&]*?--no-install-recommends\s+([^&]+)",
                  " ".join(instr(dockerfile_stages()[-1][1], "RUN")))
    assert m, "no apt-get install --no-install-recommends in the runtime stage"
    pkgs = [p for p in m.group(1).split() if not p.startswith("-") and p != "\\"]
    r = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
             "--no-breaks", "--no-replaces", "--no-enhances"] + pkgs, timeout=120)
    if r.returncode != 0:
        note(f"runtime libraries not checked: apt-cache does not know {pkgs} ({r.stderr.strip()[:200]})")
        return
    closure = {l.strip() for l in r.stdout.splitlines() if l and not l.startswith(" ")}
    closure |= {"libc6", "libgcc-s1"}   # in every Debian image
    ldd = run(["ldd", TALLY_BIN])
    libs = re.findall(r"=>\s+(/\S+)", ldd.stdout)
    missing = []
    for lib in libs:
        if re.search(r"/lib(asan|ubsan|lsan|tsan)\.so", lib):
            continue   # a sanitizer build
        real = os.path.realpath(lib)
        owner = run(["dpkg", "-S", real])
        if owner.returncode != 0:
            owner = run(["dpkg", "-S", lib])
        if owner.returncode != 0:
            note(f"{lib}: no Debian package owns it; not checked")
            continue
        pkg = owner.stdout.split(":", 1)[0].strip()
        if pkg not in closure:
            missing.append(f"{lib} ({pkg})")
    assert not missing, f"the runtime stage lacks: {', '.join(missing)}"


# ----------------------------------------------------------------------------------------
# systemd, the example properties file


def shutdown_timeout_ms():
    """shutdown.timeout.ms's default from `tally config list`, else 30000."""
    if TALLY_BIN:
        out = run([TALLY_BIN, "config", "list"], env=clean_env()).stdout
        m = re.search(r"^shutdown\.timeout\.ms \(int, default \"(\d+)\"", out, re.M)
        if m:
            return int(m.group(1))
    return SHUTDOWN_TIMEOUT_DEFAULT_MS


def unit():
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(read("deploy/systemd/tally.service"))
    return cp


@check
def systemd_unit():
    cp = unit()
    for sec in ("Unit", "Service", "Install"):
        assert cp.has_section(sec), f"no [{sec}]"
    s = cp["Service"]
    for key in ("ExecStart", "User", "Restart"):
        assert s.get(key), f"[Service] has no {key}"
    assert s["User"] == "tally", "User is not tally"
    assert re.fullmatch(r"/\S+/tally run -c /etc/tally/tally\.properties", s["ExecStart"]), s["ExecStart"]
    assert s["Restart"] == "on-failure"
    assert s.get("KillSignal") == "SIGTERM"
    assert "HUP" in s.get("ExecReload", "") and "$MAINPID" in s.get("ExecReload", ""), "no ExecReload with SIGHUP"
    assert s.get("StateDirectory") == "tally"
    assert s.get("ProtectSystem") in ("strict", "full", "yes")
    stop = int(re.fullmatch(r"(\d+)s?", s["TimeoutStopSec"]).group(1))
    assert stop * 1000 > shutdown_timeout_ms(), \
        f"TimeoutStopSec={stop} is not above shutdown.timeout.ms ({shutdown_timeout_ms()} ms)"
    props = read("deploy/tally.properties")
    assert re.search(r"^state\.dir=/var/lib/tally$", props, re.M), "the example's state.dir is not the StateDirectory"
    m = re.search(r"^log\.file=(\S+)$", props, re.M)
    if m:
        assert m.group(1).startswith(f"/var/log/{s.get('LogsDirectory', '-')}/"), \
            "log.file is outside the unit's LogsDirectory (ProtectSystem=strict makes it read-only)"


@check
def systemd_analyze_verify():
    if not shutil.which("systemd-analyze"):
        note("systemd-analyze not installed: the unit was checked as INI only")
        return
    with tempfile.TemporaryDirectory() as tmp:
        text = read("deploy/systemd/tally.service")
        if TALLY_BIN:   # verify wants ExecStart's binary to exist
            text = text.replace("/usr/local/bin/tally", TALLY_BIN)
        path = Path(tmp) / "tally.service"
        path.write_text(text, encoding="utf-8")
        r = run(["systemd-analyze", "verify", str(path)], timeout=60)
        about_unit = [l for l in (r.stdout + r.stderr).splitlines() if "tally.service" in l]
        if not TALLY_BIN:
            about_unit = [l for l in about_unit if "is not executable" not in l]
        assert not about_unit and (r.returncode == 0 or not TALLY_BIN), \
            "systemd-analyze verify: " + "; ".join(about_unit or [r.stderr.strip()])


@check
def example_properties_are_valid():
    if not TALLY_BIN:
        note("TALLY_BIN not set: deploy/tally.properties was not checked with tally config check")
        return
    r = run([TALLY_BIN, "config", "check", "-c", str(ROOT / "deploy/tally.properties")], env=clean_env())
    assert r.returncode == 0, (r.stdout + r.stderr).strip()
    out = run([TALLY_BIN, "config", "list"], env=clean_env()).stdout
    m = re.search(r"^http\.listen \(string, default \"([^\"]+)\"", out, re.M)
    assert m, "tally has no http.listen key"
    assert host_port(m.group(1))[1] == tally_listen_port(), \
        f"http.listen's default {m.group(1)} and the compose port differ"


# ----------------------------------------------------------------------------------------
# docs


@check
def docs_deploy():
    doc = read("docs/deploy.md")
    for s in ("/metrics", "/healthz", "/readyz", "/v1/users/", str(tally_listen_port()),
              "docker compose", "deploy/systemd/tally.service", "docs/operations.md", "/var/lib/tally"):
        assert s in doc, f"docs/deploy.md does not mention {s}"
    assert "docs/deploy.md" in read("README.md"), "README.md does not point to docs/deploy.md"


print(f"deploy checks in {ROOT}" + ("" if TALLY_BIN else " (no TALLY_BIN)"))
for c in CHECKS:
    run_check(c)
print("not checked here (needs a Docker engine): that the images pull and build, the containers "
      "start and turn healthy, Prometheus scrapes tally and Grafana draws the panels")
if failures:
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("all deploy checks passed")
