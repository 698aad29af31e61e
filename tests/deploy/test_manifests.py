"""The Kubernetes manifests, the KServe runtime and the Dockerfile, checked offline.

Core resources are validated against Kubernetes' own OpenAPI schemas, strictly (unknown fields
refused), with ``kubernetes-validate`` (the schemas ship in the package: no cluster, no
network). Custom resources (KServe's ServingRuntime and InferenceService, the Prometheus
Operator's ServiceMonitor) have no schema there: their containers and volumes are validated as
a core Pod's, the rest is checked here field by field. Then what ties the files together: the
probes hit routes the server has, the grace period outlasts the stop, selectors match, the
project file is one modelpilot accepts. Nothing here ran on a cluster (docs/scale-out.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import kubernetes_validate
import pytest
import yaml

from modelpilot.server._health import HealthRoutes
from modelpilot.server._state import ServerState
from modelpilot.spec import parse_project

ROOT = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = ROOT / "kubernetes"
KSERVE = ROOT / "kserve"
VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for
#: uvicorn's graceful shutdown limit (``timeout_graceful_shutdown`` in server/_serve.py).
GRACEFUL_S = 30.0
#: What committing the log and giving the leases up may take at the end.
FLUSH_S = 5.0
CORE = ["secret", "configmap", "pvc", "deployment", "service", "hpa", "pdb"]


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return {name: load(KUBERNETES / f"{name}.yaml") for name in CORE}


def health_paths() -> set[str]:
    routes = HealthRoutes(cast(ServerState, None)).routes()
    return {route.path for route in routes}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", CORE)
def test_core_resources_are_valid_kubernetes(name: str) -> None:
    kubernetes_validate.validate(load(KUBERNETES / f"{name}.yaml"), VERSION, strict=True)


def test_kustomization_lists_every_core_resource() -> None:
    listed = load(KUBERNETES / "kustomization.yaml")["resources"]
    assert sorted(listed) == sorted(f"{name}.yaml" for name in CORE)


def test_a_pod_is_one_probed_worker_that_outlasts_its_drain(
    manifests: dict[str, dict[str, Any]],
) -> None:
    pod = manifests["deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[0] == "serve" and args[args.index("--workers") + 1] == "1"
    paths = health_paths()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
    assert container["readinessProbe"]["failureThreshold"] == 1  # out at the first 503
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    project = parse_project(manifests["configmap"]["data"]["modelpilot.yaml"])
    assert project.serving.workers == 1
    needed = float(pre_stop[1]) + project.serving.drain_s + GRACEFUL_S + FLUSH_S
    assert pod["terminationGracePeriodSeconds"] > needed
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The replicas' credentials come from the Secret, under the names the server reads.
    assert container["envFrom"] == [
        {"secretRef": {"name": manifests["secret"]["metadata"]["name"]}}
    ]
    assert set(manifests["secret"]["stringData"]) == {
        "MODELPILOT_DATABASE_URL",
        "MODELPILOT_PREDICT_TOKEN",
        "MODELPILOT_ADMIN_TOKEN",
    }
    assert manifests["deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_service_autoscaler_and_budget_point_at_the_deployment(
    manifests: dict[str, dict[str, Any]],
) -> None:
    deployment = manifests["deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert manifests["service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["pdb"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = manifests["hpa"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert manifests["hpa"]["spec"]["minReplicas"] >= 2  # losing a pod loses nothing
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_service_monitor_scrapes_every_pod_of_the_service(
    manifests: dict[str, dict[str, Any]],
) -> None:
    monitor = load(KUBERNETES / "servicemonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    )
    service = manifests["service"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_kserve_runtime_serves_the_open_inference_protocol() -> None:
    runtime = load(KSERVE / "servingruntime.yaml")
    assert (runtime["apiVersion"], runtime["kind"]) == (
        "serving.kserve.io/v1alpha1",
        "ServingRuntime",
    )
    spec = runtime["spec"]
    assert spec["protocolVersions"] == ["v2"]
    # The pod part of the runtime is a core Pod's: validated as one.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "modelpilot"},
        "spec": {"containers": spec["containers"], "volumes": spec["volumes"]},
    }
    kubernetes_validate.validate(pod, VERSION, strict=True)
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"  # the name KServe expects
    port = container["ports"][0]["containerPort"]
    args = container["args"]
    assert args[args.index("--port") + 1] == str(port)
    assert args[args.index("--workers") + 1] == "1"
    paths = health_paths()
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready" in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live" in paths
    formats = {f["name"] for f in spec["supportedModelFormats"]}

    service = load(KSERVE / "inferenceservice.yaml")
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == (
        "RawDeployment"
    )
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in formats
    assert model["protocolVersion"] == "v2"


def test_the_image_is_slim_non_root_and_runs_one_server_worker() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(maxsplit=1)
        for line in re.sub(r"\\\n\s*", " ", text).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    bases = [args for keyword, args in instructions if keyword == "FROM"]
    assert bases and all("-slim" in base.split()[0] for base in bases), bases
    user = [args for keyword, args in instructions if keyword == "USER"][-1]
    assert user.strip() not in ("root", "0")
    entrypoint = yaml.safe_load([a for k, a in instructions if k == "ENTRYPOINT"][-1])
    command = yaml.safe_load([a for k, a in instructions if k == "CMD"][-1])
    assert entrypoint[0] == "modelpilot" and command[0] == "serve"
    assert command[command.index("--workers") + 1] == "1"
    # The Deployment's arguments replace CMD: the same command.
    deployment = load(KUBERNETES / "deployment.yaml")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == command
