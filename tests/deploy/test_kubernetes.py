"""The Kubernetes manifests: every overlay renders, every object passes the Kubernetes JSON schema
(strict: an unknown or misspelt field fails), and the objects fit together and fit the daemon.

No cluster runs here. The rendering is tests/deploy/kustomize.py (the subset of kustomize deploy/k8s
uses); the schemas are the ones kubernetes-validate ships, offline.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import kubernetes_validate
import pytest

from daemon.settings import Settings
from tests.deploy.kustomize import KustomizeError, render

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
KUBERNETES_VERSION = "1.30.0"
SETTING_NAMES = {f.metadata["env"] for f in fields(Settings)}


def _one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.fixture(params=["base", *OVERLAYS])
def docs(request: pytest.FixtureRequest) -> list[dict]:
    path = K8S / "base" if request.param == "base" else K8S / "overlays" / request.param
    return render(path)


def test_there_are_overlays_to_deploy():
    assert {"staging", "production"} <= set(OVERLAYS)


def test_every_object_passes_the_kubernetes_schema(docs):
    for doc in docs:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # a CRD: checked against the operator's required fields below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_service_monitor_scrapes_the_services_metrics_port(docs):
    monitor, service = _one(docs, "ServiceMonitor"), _one(docs, "Service")
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http", "/metrics")]
    assert monitor["spec"]["endpoints"][0]["port"] in port_names


def test_the_deployment_runs_two_or_more_probed_non_root_daemons(docs):
    deployment = _one(docs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "bastiond"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert _selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])


def test_the_grace_period_outlasts_the_preStop_pause_the_drain_and_the_shutdown_timeout(docs):
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    config = _one(docs, "ConfigMap")["data"]
    (container,) = pod["containers"]
    pause = 0
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if command[:1] == ["sleep"]:
        pause = int(command[1])
    settings = Settings.from_env(config)
    assert pod["terminationGracePeriodSeconds"] > pause + settings.shutdown_drain_s + settings.shutdown_timeout_s
    # While it drains, /readyz fails: the probe must see that before the drain ends.
    probe = container["readinessProbe"]
    assert probe["periodSeconds"] * probe.get("failureThreshold", 3) < settings.shutdown_drain_s


def test_the_pods_environment_holds_only_real_settings_with_valid_values(docs):
    config = _one(docs, "ConfigMap")["data"]
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    from_secrets = {e["name"]: "from-a-secret" for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    assert set(config) | set(from_secrets) <= SETTING_NAMES, (set(config) | set(from_secrets)) - SETTING_NAMES
    settings = Settings.from_env({**config, **from_secrets})  # raises SettingsError naming a bad value
    assert settings.port == 8420
    assert settings.redis_sentinels and settings.database_read_url and settings.vault_addr
    if settings.vector_backend == "pinecone":  # else the daemon refuses to start
        assert settings.pinecone_api_key and settings.pinecone_host


def test_the_container_listens_where_the_config_and_probes_say(docs):
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = _one(docs, "ConfigMap")["data"]
    assert container["envFrom"] == [{"configMapRef": {"name": _one(docs, "ConfigMap")["metadata"]["name"]}}]
    assert [p["containerPort"] for p in container["ports"] if p["name"] == "http"] == [int(config["BASTION_PORT"])]


def test_vault_agent_writes_the_token_file_the_daemon_reads(docs):
    template = _one(docs, "Deployment")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    config = _one(docs, "ConfigMap")["data"]
    assert annotations["vault.hashicorp.com/agent-inject"] == "true"
    assert annotations["vault.hashicorp.com/agent-inject-token"] == "true"
    assert annotations["vault.hashicorp.com/role"]
    assert config["BASTION_VAULT_TOKEN_FILE"] == "/vault/secrets/token"  # where the injector puts it
    assert template["spec"]["serviceAccountName"] == _one(docs, "ServiceAccount")["metadata"]["name"]


def test_service_pdb_and_hpa_point_at_the_deployment(docs):
    deployment = _one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(_one(docs, "Service")["spec"]["selector"], pod_labels)
    pdb = _one(docs, "PodDisruptionBudget")
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    hpa = _one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"]


def test_the_ingress_routes_to_the_service_and_keeps_websockets_open(docs):
    ingress, service = _one(docs, "Ingress"), _one(docs, "Service")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    # A WebSocket idles between events; the controller's default 60 s read timeout would cut it.
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert ingress["spec"]["tls"]


def test_overlays_set_their_namespace_and_a_pinned_image():
    for overlay in OVERLAYS:
        docs = render(K8S / "overlays" / overlay)
        assert len({d["metadata"]["namespace"] for d in docs}) == 1
        (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert container["image"].startswith("registry.example.com/bastion:")
        assert not container["image"].endswith(":latest")


def test_the_staging_patch_changes_its_keys_and_keeps_the_rest():
    base = _one(render(K8S / "base"), "ConfigMap")["data"]
    staging = _one(render(K8S / "overlays" / "staging"), "ConfigMap")["data"]
    assert staging["BASTION_LOG_LEVEL"] == "debug" and base["BASTION_LOG_LEVEL"] == "info"
    assert {k: v for k, v in staging.items() if k not in ("BASTION_LOG_LEVEL", "BASTION_VAULT_PATH")} == {
        k: v for k, v in base.items() if k not in ("BASTION_LOG_LEVEL", "BASTION_VAULT_PATH")
    }


def test_production_runs_three_and_keeps_its_container_settings():
    docs = render(K8S / "overlays" / "production")
    deployment = _one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert _one(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"] == "1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # the patch merged, not replaced


def test_a_schema_violation_is_caught():
    """The validation above can fail: a misspelt field in a Deployment is reported."""
    deployment = _one(render(K8S / "base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: prod-\n")
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path)
