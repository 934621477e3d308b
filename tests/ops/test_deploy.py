"""Deploy files: Dockerfile, compose stack, example configs, Kubernetes base, systemd unit, YAML.

Nothing here builds an image or starts a container (no engine on CI): each file is checked by
the real tool that would read it where one runs offline (hadolint, Compose v5's `config`,
kubernetes-validate, the prometheus-operator models, systemd-analyze, yamllint), plus checks
that the files agree with each other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from monitor.config import parse_settings

pytestmark = pytest.mark.ops

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "systemd" / "monitor.service"

Run = Callable[..., subprocess.CompletedProcess[str]]
COMPOSE_ENV = {"LLM_API_KEY": "test-key", "MONITOR_API_TOKEN": "test-token"}
CONFIG_ENV = {**COMPOSE_ENV, "MONITOR_DATABASE_URL": "postgresql+psycopg://monitor@db/monitor"}
CORE_KINDS = [
    "configmap.yaml",
    "deployment.yaml",
    "service.yaml",
    "dashboards-configmap.yaml",
    "secret.example.yaml",
]


def k8s_doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((K8S / name).read_text(encoding="utf-8"))
    return doc


# ------------------------------------------------------------------ Dockerfile


class TestDockerfile:
    def test_hadolint_is_clean(self, run: Run) -> None:
        """hadolint finds nothing in the Dockerfile, not even style findings."""
        result = run(["hadolint", "--failure-threshold", "style", DOCKERFILE])
        assert result.returncode == 0, result.stdout + result.stderr

    def test_image_contract(self) -> None:
        """Slim Python 3.11 base, pip install of the project, non-root user, port, entrypoint."""
        text = DOCKERFILE.read_text(encoding="utf-8")
        assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
        assert re.search(r"^RUN pip install --no-cache-dir \.", text, re.MULTILINE)
        users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
        assert users
        assert users[-1].split(":")[0] not in {"root", "0"}
        assert re.search(r"^EXPOSE 9464$", text, re.MULTILINE)
        assert re.search(
            r'^ENTRYPOINT \["monitor", "serve", "--config", "/etc/monitor/monitor.yaml"\]$',
            text,
            re.MULTILINE,
        )

    def test_healthcheck_probes_healthz_without_curl(self) -> None:
        """The health check uses Python's urllib on /healthz (the slim image has no curl)."""
        text = DOCKERFILE.read_text(encoding="utf-8")
        check = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (.+)$", text, re.MULTILINE)
        assert check is not None
        cmd = json.loads(check.group(1))
        assert cmd[:2] == ["python", "-c"]
        assert "urllib.request.urlopen('http://127.0.0.1:9464/healthz'" in cmd[2]
        assert "curl" not in text.split("HEALTHCHECK", 1)[1]


# ------------------------------------------------------------------ compose


def compose(
    run: Run, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV} | (env or {})
    return run(["docker-compose", "-f", COMPOSE, *args], env=full_env, cwd=ROOT)


class TestCompose:
    def test_compose_config_is_valid(self, run: Run) -> None:
        """The real Compose binary (v5) accepts the file: `config --quiet` exits 0."""
        result = compose(run, "config", "--quiet", env=COMPOSE_ENV)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_secrets_are_required(self, run: Run) -> None:
        """Without LLM_API_KEY the stack refuses to start, naming the variable."""
        result = compose(run, "config", "--quiet", env={"MONITOR_API_TOKEN": "x"})
        assert result.returncode != 0
        assert "LLM_API_KEY" in result.stderr

    def test_a_broken_file_is_rejected(self, run: Run, tmp_path: Path) -> None:
        """Compose validation can fail: a dependency on an undefined service is an error."""
        broken = COMPOSE.read_text(encoding="utf-8").replace(
            "      postgres:\n        condition: service_healthy",
            "      nosuch:\n        condition: service_healthy",
        )
        path = tmp_path / "docker-compose.yml"
        path.write_text(broken, encoding="utf-8")
        full_env = dict(os.environ) | COMPOSE_ENV
        result = run(["docker-compose", "-f", path, "config", "--quiet"], env=full_env)
        assert result.returncode != 0
        assert "nosuch" in result.stderr

    def test_stack_wiring(self, run: Run) -> None:
        """Five services, with the monitor config, rules, provisioning and dashboards mounted."""
        result = compose(run, "config", "--format", "json", env=COMPOSE_ENV)
        assert result.returncode == 0, result.stderr
        services = json.loads(result.stdout)["services"]
        assert {"monitor", "postgres", "prometheus", "alertmanager", "grafana"} <= set(services)

        def binds(service: str) -> dict[str, str]:
            volumes = services[service].get("volumes", [])
            return {v["target"]: v["source"] for v in volumes if v["type"] == "bind"}

        assert binds("monitor")["/etc/monitor/monitor.yaml"] == str(DEPLOY / "monitor.example.yaml")
        assert binds("prometheus")["/etc/prometheus"] == str(DEPLOY / "prometheus")
        assert binds("alertmanager")["/etc/alertmanager"] == str(DEPLOY / "alertmanager")
        assert binds("grafana")["/etc/grafana/provisioning"] == str(
            DEPLOY / "grafana" / "provisioning"
        )
        assert binds("grafana")["/etc/dashboards/monitor"] == str(ROOT / "dashboards")
        assert services["monitor"]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services["monitor"]["stop_grace_period"] == "45s"
        monitor_deps = services["monitor"]["depends_on"]
        assert monitor_deps["postgres"]["condition"] == "service_healthy"

    def test_grafana_provisioning_points_at_the_mounts(self) -> None:
        """The datasource is the compose Prometheus; the provider reads the mounted folder."""
        prov = DEPLOY / "grafana" / "provisioning"
        ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
        prom = next(d for d in ds["datasources"] if d["type"] == "prometheus")
        assert prom["url"] == "http://prometheus:9090"
        assert prom["isDefault"] is True
        boards = yaml.safe_load((prov / "dashboards" / "monitor.yml").read_text(encoding="utf-8"))
        assert boards["providers"][0]["options"]["path"] == "/etc/dashboards/monitor"


# ------------------------------------------------------------------ daemon configs


def configmap_config() -> str:
    text: str = k8s_doc("configmap.yaml")["data"]["monitor.yaml"]
    return text


class TestMonitorConfigs:
    def test_compose_config_is_a_valid_monitor_config(self) -> None:
        """deploy/monitor.example.yaml passes the daemon's own validation."""
        text = (DEPLOY / "monitor.example.yaml").read_text(encoding="utf-8")
        settings = parse_settings(text, source="monitor.example.yaml", environ=COMPOSE_ENV)
        assert settings.storage.url == "postgresql+psycopg://monitor@postgres/monitor"
        assert settings.server.port == 9464
        assert settings.endpoints[0].headers["Authorization"] == "Bearer test-key"
        assert "test-key" in settings.secrets
        assert "${LLM_API_KEY}" in text

    def test_compose_config_passes_check_config_with_its_mounts(self, tmp_path: Path) -> None:
        """`monitor check-config` accepts the compose config laid out as compose mounts it."""
        etc = tmp_path / "etc-monitor"
        etc.mkdir()
        (etc / "monitor.yaml").write_text(
            (DEPLOY / "monitor.example.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
        (etc / "examples").symlink_to(ROOT / "examples")  # ../examples:/etc/monitor/examples
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "monitor"),
                "check-config",
                str(etc / "monitor.yaml"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=dict(os.environ) | COMPOSE_ENV,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_kubernetes_config_is_a_valid_monitor_config(self) -> None:
        """The configmap's monitor.yaml passes the daemon's own validation."""
        settings = parse_settings(configmap_config(), source="configmap.yaml", environ=CONFIG_ENV)
        assert settings.storage.url == CONFIG_ENV["MONITOR_DATABASE_URL"]
        assert settings.server.port == 9464

    def test_kubernetes_config_env_comes_from_the_secret(self) -> None:
        """Every ${VAR} of the configmap is set from the Secret, and the Secret has each key."""
        used = set(re.findall(r"\$\{(\w+)", configmap_config()))
        container = k8s_doc("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert used <= set(env)
        secret = k8s_doc("secret.example.yaml")
        for ref in env.values():
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"]


# ------------------------------------------------------------------ Kubernetes


def unknown_keys(data: Any, dumped: Any, path: str = "") -> Iterator[str]:
    """Keys of `data` that the validated model dropped: pydantic ignores unknown keys."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(dumped, dict) or key not in dumped:
                yield f"{path}.{key}".lstrip(".")
            else:
                yield from unknown_keys(value, dumped[key], f"{path}.{key}")
    elif isinstance(data, list) and isinstance(dumped, list):
        for i, (a, b) in enumerate(zip(data, dumped, strict=False)):
            yield from unknown_keys(a, b, f"{path}[{i}]")


def crd_problems(doc: dict[str, Any]) -> list[str]:
    """Validate a prometheus-operator resource: types and required fields, then unknown keys."""
    try:
        from cloudcoil.models.prometheus_operator import v1  # noqa: PLC0415 - slow import
        from pydantic import ValidationError  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - CI installs it
        pytest.fail(f"cloudcoil-models-prometheus-operator is not installed: {exc}")
    model = getattr(v1, doc["kind"])
    try:
        parsed = model.model_validate(doc)
    except ValidationError as exc:
        return [str(exc)]
    dumped = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"unknown key {key}" for key in unknown_keys(doc, dumped)]


class TestKubernetes:
    def test_core_kinds_pass_strict_schema_validation(self, run: Run) -> None:
        """kubernetes-validate --strict accepts every core-kind manifest (unknown fields fail)."""
        result = run(["kubernetes-validate", "--strict", *(K8S / f for f in CORE_KINDS)])
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Couldn't find schema" not in output
        assert output.count("passed for resource") == len(CORE_KINDS)

    def test_strict_validation_rejects_a_typo(self, run: Run, tmp_path: Path) -> None:
        """--strict rejects an unknown field, so the validation above can fail."""
        doc = k8s_doc("service.yaml")
        doc["spec"]["ports"][0]["nmae"] = doc["spec"]["ports"][0].pop("name")
        path = tmp_path / "service.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        result = run(["kubernetes-validate", "--strict", path])
        assert result.returncode != 0

    @pytest.mark.parametrize("name", ["servicemonitor.yaml", "prometheusrule.yaml"])
    def test_operator_resources_are_valid(self, name: str) -> None:
        """ServiceMonitor and PrometheusRule match the operator's models, with no unknown key."""
        assert crd_problems(k8s_doc(name)) == []

    def test_operator_validation_catches_wrong_types_and_unknown_keys(self) -> None:
        """The CRD check fails on a wrong type and on a misspelled key."""
        doc = k8s_doc("servicemonitor.yaml")
        doc["spec"]["endpoints"][0]["interval"] = 30
        assert "interval" in crd_problems(doc)[0]
        doc = k8s_doc("servicemonitor.yaml")
        doc["spec"]["endpoints"][0]["honorLabel"] = doc["spec"]["endpoints"][0].pop("honorLabels")
        assert crd_problems(doc) == ["unknown key spec.endpoints[0].honorLabel"]

    def test_generated_manifests_are_in_sync(self, k8s_generator: ModuleType) -> None:
        """prometheusrule.yaml and dashboards-configmap.yaml equal the generator's output."""
        for name, text in k8s_generator.render_all().items():
            assert (K8S / name).read_text(encoding="utf-8") == text, f"{name}: run generate.py"

    def test_prometheus_rule_holds_the_rules_file(self) -> None:
        """The PrometheusRule's groups are exactly those of the Prometheus rules file."""
        rules = yaml.safe_load(
            (DEPLOY / "prometheus" / "rules" / "monitor.rules.yml").read_text(encoding="utf-8")
        )
        assert k8s_doc("prometheusrule.yaml")["spec"]["groups"] == rules["groups"]

    def test_dashboards_configmap_holds_the_dashboards(self) -> None:
        """The dashboards ConfigMap carries every dashboard JSON for Grafana's sidecar."""
        doc = k8s_doc("dashboards-configmap.yaml")
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        files = {
            p.name: p.read_text(encoding="utf-8") for p in (ROOT / "dashboards").glob("*.json")
        }
        assert doc["data"] == files

    def test_kustomization_lists_every_manifest_but_the_secret(self) -> None:
        """Every manifest is a resource of the base, except the example Secret."""
        resources = k8s_doc("kustomization.yaml")["resources"]
        manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        assert set(resources) == manifests - {"secret.example.yaml"}
        assert all((K8S / r).is_file() for r in resources)

    def test_scrape_path_is_consistent(self) -> None:
        """Service, ServiceMonitor and container agree on the port; the job is `monitor`."""
        service = k8s_doc("service.yaml")
        monitor = k8s_doc("servicemonitor.yaml")
        pod = k8s_doc("deployment.yaml")["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert service["metadata"]["name"] == "monitor"  # job label of up{job="monitor"}
        assert service["spec"]["ports"][0]["port"] == 9464
        assert container["ports"][0] == {
            "name": "http-metrics",
            "containerPort": 9464,
            "protocol": "TCP",
        }
        endpoint = monitor["spec"]["endpoints"][0]
        assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "http-metrics"
        assert endpoint["honorLabels"] is True  # keep the metrics' own `endpoint` label
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()

    def test_pod_is_hardened_and_drains_on_sigterm(self) -> None:
        """Non-root, read-only root filesystem, no capabilities, 45 s grace, probes."""
        spec = k8s_doc("deployment.yaml")["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["terminationGracePeriodSeconds"] == 45
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


# ------------------------------------------------------------------ YAML style


def test_yamllint_relaxed_finds_nothing_but_long_lines(run: Run) -> None:
    """yamllint's relaxed profile passes every YAML file under deploy/ (long lines allowed)."""
    files = sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml"))
    result = run(["yamllint", "-d", "relaxed", "-f", "parsable", *files])
    findings = [line for line in result.stdout.splitlines() if "(line-length)" not in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert findings == []


# ------------------------------------------------------------------ systemd


def unit_entries() -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) pairs; a key may repeat (SystemCallFilter=...)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
        else:
            key, sep, value = line.partition("=")
            assert sep, f"not key=value: {raw!r}"
            sections[current].append((key.strip(), value.strip()))
    return sections


class TestSystemdUnit:
    def test_required_settings(self) -> None:
        """Hardened service that drains on SIGTERM, reloads on SIGHUP and restarts on failure."""
        sections = unit_entries()
        service = dict(sections["Service"])
        assert service.get("DynamicUser") == "yes" or service.get("User") == "monitor"
        assert service["ProtectSystem"] == "strict"
        assert service["StateDirectory"] == "monitor"
        assert service["Restart"] == "on-failure"
        assert service["KillSignal"] == "SIGTERM"
        assert service["TimeoutStopSec"] == "45"
        assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
        assert service["ExecStart"].endswith(" serve --config /etc/monitor/monitor.yaml")
        assert service["NoNewPrivileges"] == "yes"
        assert dict(sections["Install"])["WantedBy"] == "multi-user.target"

    def test_systemd_analyze_verify(self, tmp_path: Path) -> None:
        """systemd-analyze verify accepts the unit (the binary path swapped for this venv's)."""
        if shutil.which("systemd-analyze") is None:
            # allowed: hosts without systemd get the key checks above only
            assert unit_entries()["Service"]
            return
        ok, output = verify_unit(UNIT.read_text(encoding="utf-8"), tmp_path)
        assert ok, output

    def test_systemd_analyze_catches_an_unknown_key(self, tmp_path: Path) -> None:
        """A misspelled setting fails the verification (systemd only warns about it)."""
        if shutil.which("systemd-analyze") is None:
            return
        text = UNIT.read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSytem=")
        ok, output = verify_unit(text, tmp_path)
        assert not ok
        assert "Unknown key 'ProtectSytem'" in output


def verify_unit(text: str, tmp_path: Path) -> tuple[bool, str]:
    """Run systemd-analyze verify on a copy of the unit that starts this venv's `monitor`."""
    binary = Path(sys.executable).parent / "monitor"
    assert binary.exists(), "the monitor console script is not installed in this venv"
    unit = tmp_path / "monitor.service"
    unit.write_text(text.replace("/opt/monitor/venv/bin/monitor", str(binary)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    bad = re.search(r"Unknown (key|section)|Invalid|Failed to parse|not executable", output)
    return result.returncode == 0 and bad is None, output
