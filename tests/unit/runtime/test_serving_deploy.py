"""deploy/: the Kubernetes manifests agree with each other and with the entrypoint, and the entrypoint writes a
valid GPU repository and runs tritonserver with the ports the manifests name. No cluster runs here: this checks
structure and wiring (labels, ports, probes, metric names), not scheduling. That the Triton metrics the
autoscaler reads exist is checked against the real server in test_serving.py."""

from __future__ import annotations

import os
import shlex
import re
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml missing: pip install -e .[serve]")

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "kubernetes"


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def test_manifests_wire_together():
    dep, svc, hpa = _load("deployment.yaml"), _load("service.yaml"), _load("hpa.yaml")
    rules, mon = _load("prometheus-adapter-rules.yaml"), _load("servicemonitor.yaml")
    assert (dep["kind"], svc["kind"], hpa["kind"], mon["kind"]) == ("Deployment", "Service",
                                                                    "HorizontalPodAutoscaler", "ServiceMonitor")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == pod_labels
    assert svc["spec"]["selector"] == pod_labels
    assert mon["spec"]["selector"]["matchLabels"] == svc["metadata"]["labels"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == set(ports)
    assert {e["port"] for e in mon["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/dev/shm" in mounts
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])
    exposed = {r["name"]["as"] for r in rules["rules"]["custom"]}
    for m in hpa["spec"]["metrics"]:
        assert m["type"] == "Pods" and m["pods"]["metric"]["name"] in exposed


def adapter_metric_names() -> set[str]:
    """Every Triton metric (nv_*) the prometheus-adapter rules query."""
    text = (K8S / "prometheus-adapter-rules.yaml").read_text()
    return set(re.findall(r"\bnv_[a-z_]+\b", "\n".join(ln for ln in text.splitlines() if not ln.lstrip()
                                                         .startswith("#"))))


def test_entrypoint_writes_gpu_repository_and_runs_supervised_tritonserver(tmp_path):
    """The entrypoint writes the pod's repository and runs tritonserver under `hs-serve start` (HS_DRY_RUN=1: the
    command hs-serve would run is printed, nothing starts)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tritonserver").write_text("#!/bin/sh\nexit 3\n")
    (fake / "tritonserver").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               HS_REPO=str(tmp_path / "repo"), HS_CONFIG="tiny", HS_INSTANCES="2", HS_MAX_BATCH="4",
               HS_DRY_RUN="1")
    env.pop("HS_EXPORT_DIR", None)
    p = subprocess.run([str(ROOT / "deploy" / "entrypoint.sh")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    args = shlex.split(p.stdout.strip().splitlines()[-1])
    assert args[0] == str(fake / "tritonserver") and "--model-control-mode=explicit" in args
    assert "--http-address=0.0.0.0" in args or "--host" not in args, args
    assert f"--model-repository={tmp_path / 'repo'}" in args
    from hyperstyle_trt.runtime.serving.pools import repository_pools

    pools = repository_pools(tmp_path / "repo").flags()  # KIND_GPU: the sized pools reach tritonserver
    assert pools and all(f in args for f in pools)
    dep = _load("deployment.yaml")
    ports = {p["name"]: p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for name, port in ports.items():
        assert f"--{name}-port={port}" in args
    text = (tmp_path / "repo" / "hyperstyle" / "config.pbtxt").read_text()
    assert "kind: KIND_GPU, count: 2" in text and "max_batch_size: 4" in text
    from hyperstyle_trt.runtime.serving.repository import validate_config

    assert validate_config(text) is not None
