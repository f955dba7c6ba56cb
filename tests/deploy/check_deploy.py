#!/usr/bin/env python3
"""Offline checks of the deployment files (run by tests/deploy/static_checks.sh).

- docker-compose.yml: valid against the Compose specification schema (the one docker-compose ships),
  every referenced host file exists, every DISPATCH_INGEST__* variable is a real config key (the key
  list comes from `dispatch-ingest check-config`, and the variables are also fed to check-config,
  which rejects unknown keys and bad values), ports and host names agree between services,
  Prometheus and Grafana.
- deploy/k8s: every DISPATCH_INGEST__* variable is a config key; the ConfigMap's TOML passes
  check-config; probes, secrets and security context as documented.
- Grafana dashboards and alert rules reference only metrics defined in src/telemetry.rs, and every
  metric defined there is charted; every alert has a promtool unit test.
- The ClickHouse panels' SQL runs on the local ClickHouse ($CLICKHOUSE_URL) in a fresh migrated
  database (plus the published report's tables from schemas/clickhouse/public, when present).

Usage: check_deploy.py BINARY   (the dispatch-ingest binary, for check-config)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = sys.argv[1]
errors = []


def err(msg):
    errors.append(msg)
    print(f"  FAIL: {msg}", file=sys.stderr)


def ok(msg):
    print(f"  ok: {msg}")


def config_keys():
    """Every config key as DISPATCH_INGEST__SECTION__KEY, from the effective config's TOML."""
    import tomllib
    out = subprocess.run([BIN, "check-config"], check=True, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_INGEST")},
                         cwd=REPO).stdout
    keys = set()

    def walk(prefix, table):
        for k, v in table.items():
            path = prefix + [k]
            if isinstance(v, dict) and path != ["kafka", "extra"]:
                walk(path, v)
            else:
                keys.add("DISPATCH_INGEST__" + "__".join(p.upper() for p in path))
    walk([], tomllib.loads(out))
    return keys


def check_config_accepts(env, label, config_text=None):
    """Run check-config with these variables (and optionally a config file)."""
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_INGEST")}
    run_env.update(env)
    with tempfile.TemporaryDirectory() as tmp:
        if config_text is not None:
            path = Path(tmp) / "config.toml"
            path.write_text(config_text)
            run_env["DISPATCH_INGEST_CONFIG"] = str(path)
        else:
            run_env.pop("DISPATCH_INGEST_CONFIG", None)
        r = subprocess.run([BIN, "check-config"], capture_output=True, text=True, env=run_env, cwd=REPO)
    if r.returncode != 0:
        err(f"{label}: check-config rejects it: {r.stderr.strip()}")
    else:
        ok(f"{label}: check-config accepts it")


def check_env_keys(env_names, keys, label):
    for name in sorted(env_names):
        if name.startswith("DISPATCH_INGEST__") and name not in keys:
            err(f"{label}: {name} is not a config key")
    ok(f"{label}: {len([n for n in env_names if n.startswith('DISPATCH_INGEST__')])} DISPATCH_INGEST__* variables are config keys")


def host_port(url, default_port):
    u = urlparse(url if "://" in url else "x://" + url)
    return u.hostname, u.port or default_port


def compose(keys):
    print("docker-compose.yml")
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    # The schema file only (importing compose.config would need docker-compose's dependencies).
    spec = Path(resources.files("compose").joinpath("config", "compose_spec.json"))
    schema = json.loads(spec.read_text())
    v = jsonschema.Draft7Validator(schema)
    bad = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    for e in bad:
        err(f"compose schema: {'/'.join(map(str, e.path))}: {e.message}")
    if not bad:
        ok("valid against the Compose specification schema")
    services = doc["services"]
    # Referenced files.
    for name, s in services.items():
        b = s.get("build")
        if b:
            ctx = REPO / b.get("context", ".")
            if not (ctx / b.get("dockerfile", "Dockerfile")).is_file():
                err(f"service {name}: Dockerfile {b.get('dockerfile')} not found")
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                if not (REPO / src).exists():
                    err(f"service {name}: mounted {src} does not exist")
        for dep in (s.get("depends_on") or {}):
            if dep not in services:
                err(f"service {name}: depends on unknown service {dep}")
    ok("build files, mounted files and dependencies exist")
    # Config keys, and check-config on the variables of each dispatch-ingest service.
    ours = {n: s for n, s in services.items() if s.get("image", "").startswith("dispatch-ingest")}
    for name, s in ours.items():
        env = {k: str(v) for k, v in (s.get("environment") or {}).items()}
        check_env_keys(env, keys, f"compose service {name}")
        check_config_accepts(env, f"compose service {name} environment")
        if s.get("user", "").split(":")[0] in ("", "0", "root"):
            err(f"compose service {name}: runs as root")
        if not s.get("read_only"):
            err(f"compose service {name}: root filesystem not read-only")
    # Ports and host names.
    env = ours["dispatch-ingest"]["environment"]
    h, p = host_port(env["DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS"], 9092)
    adv = services[h]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    if f"//{h}:{p}" not in adv:
        err(f"Kafka bootstrap {h}:{p} is not an advertised listener ({adv})")
    h, p = host_port(env["DISPATCH_INGEST__CLICKHOUSE__URL"], 8123)
    if h not in services or p != 8123:
        err(f"ClickHouse URL {h}:{p}: no such service or not the HTTP port 8123")
    ch_ports = [x.split(":")[-1] for x in services["clickhouse"].get("ports", [])]
    if "8123" not in ch_ports:
        err("clickhouse service does not publish 8123")
    h, p = host_port(env["DISPATCH_INGEST__SCHEMA_REGISTRY__URL"], 80)
    if h not in services:
        err(f"schema registry host {h} is not a service")
    else:
        lp = host_port(services[h]["environment"]["SCHEMA_REGISTRY_LISTENERS"], 80)[1]
        if lp != p:
            err(f"schema registry URL port {p} != its listener port {lp}")
    listen = host_port(env["DISPATCH_INGEST__TELEMETRY__LISTEN"], 9464)[1]
    published = [int(x.split(":")[-1]) for x in ours["dispatch-ingest"].get("ports", [])]
    if listen not in published:
        err(f"telemetry listens on {listen}, the service publishes {published}")
    prom = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for sc in prom["scrape_configs"] for st in sc.get("static_configs", []) for t in st["targets"]]
    if f"dispatch-ingest:{listen}" not in targets:
        err(f"Prometheus scrapes {targets}, not dispatch-ingest:{listen}")
    for rf in prom.get("rule_files", []):
        mounted = [v.split(":")[1] for v in services["prometheus"]["volumes"]]
        if str(Path("/etc/prometheus") / rf) not in mounted:
            err(f"Prometheus rule file {rf} is not mounted next to prometheus.yml")
    # The image's HEALTHCHECK probes the port telemetry listens on.
    dockerfile = (REPO / "deploy/Dockerfile").read_text()
    if f"127.0.0.1:{listen}/health" not in dockerfile:
        err(f"the Dockerfile HEALTHCHECK does not probe 127.0.0.1:{listen}/health")
    # Grafana: data sources point at the services and ports.
    ds = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/datasources.yml").read_text())
    for d in ds["datasources"]:
        if d["type"] == "prometheus":
            h, p = host_port(d["url"], 80)
            prom_ports = [int(x.split(":")[-1]) for x in services[h].get("ports", [])] if h in services else []
            if h not in services or p not in prom_ports:
                err(f"Grafana Prometheus data source {d['url']} does not match the prometheus service")
        elif d["type"] == "grafana-clickhouse-datasource":
            j = d["jsonData"]
            if j["host"] not in services or int(j["port"]) != 8123 or j.get("protocol") != "http":
                err(f"Grafana ClickHouse data source {j} does not match the clickhouse service (http 8123)")
    prov = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/dispatch-ingest.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    for p in prov["providers"]:
        src = mounts.get(p["options"]["path"])
        if not src or not (REPO / src).is_dir():
            err(f"Grafana dashboard provider path {p['options']['path']} is not a mounted directory")
    ok("ports and host names agree (Kafka, ClickHouse, registry, telemetry, Prometheus, Grafana)")


def k8s(keys):
    print("deploy/k8s")
    for f in sorted((REPO / "deploy/k8s").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        by_kind = {d["kind"]: d for d in docs}
        cm = by_kind["ConfigMap"]["data"]["dispatch-ingest.toml"]
        for kind in ("Deployment", "Job"):
            spec = by_kind[kind]["spec"]["template"]["spec"]
            for c in spec["containers"]:
                names = [e["name"] for e in c.get("env", [])]
                check_env_keys(names, keys, f"{f.name} {kind} {c['name']}")
                dummy = {e["name"]: e.get("value", "x") for e in c.get("env", [])
                         if e["name"].startswith("DISPATCH_INGEST__")}
                # The Kafka CA is a mounted Secret in the pod; here any readable PEM stands in.
                local_cm = cm.replace("/etc/dispatch-ingest/kafka-tls/ca.crt", "/etc/ssl/certs/ca-certificates.crt")
                check_config_accepts(dummy, f"{f.name} {kind} {c['name']} ConfigMap TOML + environment", local_cm)
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref is not None and ref.get("optional", False):
                        err(f"{kind} {c['name']}: secret {ref['name']}/{ref['key']} is optional")
                sc = c.get("securityContext", {})
                want = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True}
                for k, v in want.items():
                    if sc.get(k) != v:
                        err(f"{kind} {c['name']}: securityContext.{k} is not {v}")
                if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                    err(f"{kind} {c['name']}: capabilities are not dropped (ALL)")
                if spec.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
                    err(f"{kind}: seccompProfile is not RuntimeDefault")
                if kind == "Deployment":
                    if c["livenessProbe"]["httpGet"]["path"] != "/health":
                        err("liveness probe is not /health")
                    if c["readinessProbe"]["httpGet"]["path"] != "/ready":
                        err("readiness probe is not /ready")
                    if "limits" not in c.get("resources", {}):
                        err("Deployment has no resource limits")
        if "PodDisruptionBudget" not in by_kind:
            err(f"{f.name}: no PodDisruptionBudget")
    ok("k8s: probes, required secrets, restricted security context, PodDisruptionBudget")


def metric_names_in(text):
    return set(re.findall(r"\b(dispatch_ingest_[a-z0-9_]+)", text))


def base_name(n):
    for suf in ("_bucket", "_sum", "_count"):
        if n.endswith(suf):
            return n[: -len(suf)]
    return n


def metrics():
    print("metrics in dashboards and alerts")
    telemetry = (REPO / "src/telemetry.rs").read_text()
    defined = {n for n in re.findall(r'"(dispatch_ingest_[a-z0-9_]+)"', telemetry)}
    known = defined
    charted = set()
    dashboards = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
    for f in dashboards:
        d = json.loads(f.read_text())
        for p in d["panels"]:
            for t in p.get("targets", []):
                if "expr" in t:
                    for n in metric_names_in(t["expr"]):
                        charted.add(base_name(n))
                        if base_name(n) not in known:
                            err(f"{f.name} panel '{p['title']}': {n} is not a metric of src/telemetry.rs")
    for n in sorted(defined - charted):
        err(f"{n} (src/telemetry.rs) is charted on no dashboard")
    ok(f"{len(dashboards)} dashboards, {len(charted)} metrics charted, all defined")
    alerts = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    names = []
    for g in alerts["groups"]:
        for r in g["rules"]:
            names.append(r["alert"])
            for n in metric_names_in(r["expr"]):
                if base_name(n) not in known:
                    err(f"alert {r['alert']}: {n} is not a metric of src/telemetry.rs")
    tests = yaml.safe_load((REPO / "deploy/prometheus/alerts_test.yml").read_text())
    tested = {}
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            fired = bool(a.get("exp_alerts"))
            tested.setdefault(a["alertname"], set()).add(fired)
    for n in names:
        if tested.get(n) != {True, False}:
            err(f"alert {n}: no promtool test shows it both firing and not firing")
    ok(f"{len(names)} alerts, each with a promtool test that fires and resolves it")
    # Reports dashboard: ClickHouse panels use the ClickHouse data source and existing views.
    def tables(sub):
        return set(re.findall(r"\{db\}\.([a-z_]+)", "".join(
            p.read_text() for p in (REPO / "schemas/clickhouse" / sub).glob("*.sql"))))
    views = tables("migrations")
    public = tables("public")
    if not public:
        err("no table under schemas/clickhouse/public: the dashboards' published report has nothing to read")
    used = 0
    for f in dashboards:
        d = json.loads(f.read_text())
        for p in d["panels"]:
            for t in p.get("targets", []):
                if "rawSql" in t:
                    if p["datasource"]["type"] != "grafana-clickhouse-datasource":
                        err(f"{f.name} panel '{p['title']}': SQL on a non-ClickHouse data source")
                    for db, v in re.findall(r"\$\{(database|public_database)\}\.([a-z_]+)", t["rawSql"]):
                        used += 1
                        if v not in (views if db == "database" else public):
                            err(f"{f.name} panel '{p['title']}': {v} is not a table or view of schemas/clickhouse")
    ok(f"ClickHouse panels reference {used} existing tables or views")


def dashboard_sql_on_server():
    """Run every ClickHouse panel's SQL (and the year variable's) on the local ClickHouse, in a
    fresh migrated database (and the public tables, where schemas/clickhouse/public exists)."""
    url = os.environ.get("CLICKHOUSE_URL")
    if not url:
        err("CLICKHOUSE_URL is not set: the dashboards' SQL cannot be run on the local ClickHouse")
        return
    import urllib.error
    import urllib.request

    def q(sql):
        try:
            return urllib.request.urlopen(url + "/", data=sql.encode(), timeout=60).read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode()[:300]) from None

    print(f"dashboard SQL on {url}")
    tag = f"ci_dash_{os.getpid()}"
    db, pub = tag, tag + "_public"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_INGEST")}
    env.update({"DISPATCH_INGEST__CLICKHOUSE__URL": url, "DISPATCH_INGEST__CLICKHOUSE__DATABASE": db})
    try:
        subprocess.run([BIN, "migrate"], check=True, capture_output=True, env=env, cwd=REPO)
        public_sql = sorted((REPO / "schemas/clickhouse/public").glob("*.sql"))
        for f in public_sql:
            for st in f.read_text().replace("{db}", pub).split("-- statement-break"):
                st = "\n".join(l for l in st.splitlines() if not l.lstrip().startswith("--")).strip()
                if st:
                    q(st)
        n = 0
        for f in sorted((REPO / "deploy/grafana/dashboards").glob("*.json")):
            d = json.loads(f.read_text())
            sqls = [(p["title"], t["rawSql"]) for p in d["panels"] for t in p.get("targets", []) if "rawSql" in t]
            sqls += [(f"variable {v['name']}", v["query"]) for v in d.get("templating", {}).get("list", [])
                     if v.get("type") == "query" and v.get("datasource", {}).get("type") == "grafana-clickhouse-datasource"]
            for title, sql in sqls:
                sql = sql.replace("${database}", db).replace("${public_database}", pub).replace("${year}", "2024")
                try:
                    q(sql)
                    n += 1
                except RuntimeError as e:
                    err(f"{f.name} '{title}': ClickHouse rejects the SQL: {e}")
        ok(f"{n} dashboard queries run on the local ClickHouse")
    finally:
        q(f"DROP DATABASE IF EXISTS {db}")
        q(f"DROP DATABASE IF EXISTS {pub}")


keys = config_keys()
print(f"{len(keys)} config keys from `dispatch-ingest check-config`")
compose(keys)
k8s(keys)
metrics()
dashboard_sql_on_server()
if errors:
    print(f"deploy checks: {len(errors)} problem(s)", file=sys.stderr)
    sys.exit(1)
print("deploy checks: all passed")
