"""reconciler's KubeClient against the stand-in: one-field writes, conflict retries, rollouts, leases, errors."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.clients.kube.client import KubeClient, KubeConflict, KubeError, KubeNotFound, RolloutProgress
from reconciler.sandbox.kube_server import KubeStandIn
from tests.kube.conftest import NAMESPACE, dep_path, deployment


def image_of(kube: KubeClient, container: str, name: str = "ingestion") -> str:
    live = kube.get_deployment(NAMESPACE, name)
    return str(next(c for c in live["spec"]["template"]["spec"]["containers"] if c["name"] == container)["image"])


def test_set_container_image_retries_through_conflicts_and_touches_one_field(
    standin: KubeStandIn, kube: KubeClient
) -> None:
    standin.seed(deployment())
    # The seeded Deployment rolls out for a moment, and each status change bumps its resourceVersion (a
    # real 409 to a patch read before it): let it settle, so the only conflicts are the two forced ones.
    assert kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=10, poll_s=0.05).ready
    standin.stats.reset()
    standin.force_conflicts(2)

    assert kube.set_container_image(NAMESPACE, "ingestion", "code-server", "ingestion:2.0") is True

    assert standin.stats.by_route["PATCH deployments/{name}"] == 3  # two 409s, then success
    assert standin.stats.by_route["GET deployments/{name}"] == 3  # re-read before each try
    live = standin.get_object(dep_path())
    code_server, shipper = live["spec"]["template"]["spec"]["containers"]
    assert code_server["image"] == "ingestion:2.0" and len(code_server["env"]) == 2
    assert shipper["image"] == "registry.example/fluent-bit:3.0"
    owned = next(m for m in live["metadata"]["managedFields"] if m["manager"] == "reconciler")
    assert json.dumps(owned["fieldsV1"]).count("f:image") == 1


def test_setting_the_current_value_writes_nothing(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(deployment())
    standin.seed(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NAMESPACE}, "data": {"k": "v"}}
    )
    standin.stats.reset()
    assert kube.set_container_image(NAMESPACE, "ingestion", "code-server", "registry.example/ingestion:1.0") is False
    assert (
        kube.set_container_env(NAMESPACE, "ingestion", "code-server", "DBT_IMAGE", "registry.example/dbt:1.0") is False
    )
    assert kube.set_config_map_key(NAMESPACE, "c", "k", "v") is False
    assert standin.stats.writes == 0


def test_conflicts_beyond_the_retry_budget_raise_kube_conflict(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(deployment())
    standin.force_conflicts(50)
    with pytest.raises(KubeConflict, match="still conflicting after 5 attempts"):
        kube.set_container_image(NAMESPACE, "ingestion", "code-server", "ingestion:2.0")


def test_unknown_deployment_or_container_is_kube_not_found(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(deployment())
    with pytest.raises(KubeNotFound, match=r'deployments\.apps "nope" not found'):
        kube.set_container_image(NAMESPACE, "nope", "code-server", "x:1")
    with pytest.raises(KubeNotFound, match=r"has no container 'dagster' \(containers: code-server, log-shipper\)"):
        kube.set_container_image(NAMESPACE, "ingestion", "dagster", "x:1")
    assert standin.stats.writes == 0  # a strategic merge would have added a container


def test_set_container_env_adds_replaces_and_overrides_value_from(standin: KubeStandIn, kube: KubeClient) -> None:
    manifest = deployment()
    env = manifest["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}})
    standin.seed(manifest)

    assert kube.set_container_env(NAMESPACE, "ingestion", "code-server", "DBT_IMAGE", "dbt:2") is True
    assert kube.set_container_env(NAMESPACE, "ingestion", "code-server", "NEW_VAR", "x") is True
    assert kube.set_container_env(NAMESPACE, "ingestion", "code-server", "FROM_CM", "literal") is True

    container = standin.get_object(dep_path())["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "DAGSTER_HOME", "value": "/opt/dagster"},
        {"name": "DBT_IMAGE", "value": "dbt:2"},
        {"name": "FROM_CM", "value": "literal"},
        {"name": "NEW_VAR", "value": "x"},
    ]


def test_set_config_map_key_changes_only_that_key(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NAMESPACE}, "data": {"a": "1"}}
    )
    assert kube.set_config_map_key(NAMESPACE, "c", "dbt_image", "dbt:2") is True
    assert kube.get_config_map(NAMESPACE, "c")["data"] == {"a": "1", "dbt_image": "dbt:2"}


def test_read_secret_key_decodes(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": NAMESPACE},
            "stringData": {"pw": "hé"},
        }
    )
    assert kube.read_secret_key(NAMESPACE, "s", "pw") == "hé"
    with pytest.raises(KubeNotFound, match="no key 'user'"):
        kube.read_secret_key(NAMESPACE, "s", "user")


def test_list_pods_by_selector(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(deployment(replicas=2))
    standin.seed(deployment("analytics"))
    pods = kube.list_pods(NAMESPACE, {"app": "ingestion"})
    assert len(pods) == 2 and all(p["metadata"]["labels"]["app"] == "ingestion" for p in pods)


# --- rollouts ------------------------------------------------------------------------------------


def test_wait_for_rollout_reports_progress_until_ready(standin: KubeStandIn, kube: KubeClient) -> None:
    standin.seed(deployment(replicas=2))
    assert kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=5, poll_s=0.05).ready
    kube.set_container_image(NAMESPACE, "ingestion", "code-server", "ingestion:2.0")
    seen: list[RolloutProgress] = []

    result = kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=5, poll_s=0.05, on_progress=seen.append)

    assert result.ready and result.reason is None
    assert (result.progress.updated, result.progress.available, result.progress.total) == (2, 2, 2)
    assert seen[0].total > seen[0].updated  # old pods were still there at first
    assert "old replicas pending termination" in str(seen[0])


def test_wait_for_rollout_fails_with_deadline_and_pod_reasons_then_rollback_recovers(
    standin: KubeStandIn, kube: KubeClient
) -> None:
    standin.fail_images("*:missing")
    standin.seed(deployment(deadline_s=1))
    assert kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=5, poll_s=0.05).ready

    kube.set_container_image(NAMESPACE, "ingestion", "code-server", "ingestion:missing")
    failed = kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=5, poll_s=0.1)

    assert not failed.ready and failed.deadline_exceeded
    assert failed.reason is not None
    assert "ProgressDeadlineExceeded" in failed.reason
    assert 'ImagePullBackOff: Back-off pulling image "ingestion:missing"' in failed.reason
    assert [(p.container, p.reason) for p in failed.pod_problems] == [("code-server", "ImagePullBackOff")]

    kube.set_container_image(NAMESPACE, "ingestion", "code-server", "registry.example/ingestion:1.0")
    recovered = kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=5, poll_s=0.05)
    assert recovered.ready


def test_wait_for_rollout_times_out_before_the_deadline_with_the_pods_reason(
    standin: KubeStandIn, kube: KubeClient
) -> None:
    standin.fail_images("*:bad", reason="ErrImagePull")
    standin.seed(deployment(image="ingestion:bad"))  # deadline 600 s: only our timeout can end the wait
    result = kube.wait_for_rollout(NAMESPACE, "ingestion", timeout_s=0.3, poll_s=0.1)
    assert not result.ready and not result.deadline_exceeded
    assert result.reason is not None and "not complete after 0.3 s" in result.reason
    assert 'ErrImagePull: failed to pull and unpack image "ingestion:bad"' in result.reason


# --- leases ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def test_lease_acquire_renew_refuse_takeover_and_release(standin: KubeStandIn, kubeconfig: Path) -> None:
    clock = FakeClock()
    one = KubeClient.from_kubeconfig(str(kubeconfig))
    two = KubeClient.from_kubeconfig(str(kubeconfig))
    one._now = two._now = clock  # both replicas share a wall clock we control

    assert one.acquire_or_renew_lease(NAMESPACE, "reconciler-leader", "pod-1", 15) is True  # created
    assert two.acquire_or_renew_lease(NAMESPACE, "reconciler-leader", "pod-2", 15) is False  # held
    clock.now += datetime.timedelta(seconds=10)
    assert one.acquire_or_renew_lease(NAMESPACE, "reconciler-leader", "pod-1", 15) is True  # renewed
    clock.now += datetime.timedelta(seconds=10)
    assert two.acquire_or_renew_lease(NAMESPACE, "reconciler-leader", "pod-2", 15) is False  # renewal counted
    clock.now += datetime.timedelta(seconds=6)
    assert two.acquire_or_renew_lease(NAMESPACE, "reconciler-leader", "pod-2", 15) is True  # expired: taken over

    lease = standin.get_object(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/reconciler-leader")
    assert lease["spec"]["holderIdentity"] == "pod-2" and lease["spec"]["leaseTransitions"] == 1
    assert one.release_lease(NAMESPACE, "reconciler-leader", "pod-1") is False  # not the holder
    assert two.release_lease(NAMESPACE, "reconciler-leader", "pod-2") is True
    assert one.acquire_or_renew_lease(NAMESPACE, "reconciler-leader", "pod-1", 15) is True  # released: free


def test_lease_write_conflict_means_not_acquired(standin: KubeStandIn, kube: KubeClient) -> None:
    assert kube.acquire_or_renew_lease(NAMESPACE, "leader", "pod-1", 15) is True
    standin.force_conflicts(1)  # another replica renews between our read and our write
    assert kube.acquire_or_renew_lease(NAMESPACE, "leader", "pod-1", 15) is False
    assert kube.acquire_or_renew_lease(NAMESPACE, "leader", "pod-1", 15) is True


# --- a ConfigMap as a state store --------------------------------------------------------------------


def test_config_map_state_store_uses_optimistic_concurrency(kube: KubeClient) -> None:
    assert kube.read_config_map_data(NAMESPACE, "reconciler-state") is None
    first = kube.write_config_map_data(NAMESPACE, "reconciler-state", {"state.json": "{}"}, None)
    second = kube.write_config_map_data(NAMESPACE, "reconciler-state", {"state.json": '{"n": 1}'}, first)
    assert int(second) > int(first)
    assert kube.read_config_map_data(NAMESPACE, "reconciler-state") == {"state.json": '{"n": 1}'}
    assert kube.read_config_map_versioned(NAMESPACE, "reconciler-state") == ({"state.json": '{"n": 1}'}, second)
    with pytest.raises(KubeConflict, match="the object has been modified"):
        kube.write_config_map_data(NAMESPACE, "reconciler-state", {"state.json": "stale"}, first)
    with pytest.raises(KubeConflict, match="already exists"):
        kube.write_config_map_data(NAMESPACE, "reconciler-state", {}, None)


# --- no kubernetes exception leaks -------------------------------------------------------------------


def test_failures_leave_as_kube_errors_only(standin: KubeStandIn, tmp_path: Path) -> None:
    wrong_token = tmp_path / "wrong"
    wrong_token.write_text(standin.write_kubeconfig(tmp_path / "right").read_text().replace("sandbox-token", "nope"))
    with pytest.raises(KubeError, match=r"Unauthorized \(HTTP 401\)") as caught:
        KubeClient.from_kubeconfig(str(wrong_token)).get_deployment(NAMESPACE, "x")
    assert type(caught.value) is KubeError

    with pytest.raises(KubeError, match="cannot load kubeconfig"):
        KubeClient.from_kubeconfig(str(tmp_path / "missing"))

    unreachable = KubeClient.from_kubeconfig(str(standin.write_kubeconfig(tmp_path / "down")))
    standin.stop()
    calls: list[Callable[[], object]] = [
        lambda: unreachable.get_deployment(NAMESPACE, "x"),
        lambda: unreachable.set_container_image(NAMESPACE, "x", "c", "i"),
        lambda: unreachable.wait_for_rollout(NAMESPACE, "x", timeout_s=0.1, poll_s=0.05),
        lambda: unreachable.acquire_or_renew_lease(NAMESPACE, "l", "me", 5),
        lambda: unreachable.write_config_map_data(NAMESPACE, "s", {}, None),
    ]
    for call in calls:
        with pytest.raises(KubeError) as error:
            call()
        assert type(error.value) is KubeError
        assert str(error.value).startswith(("read ", "create ")) and "Connection refused" in str(error.value)


def test_from_environment_goes_in_cluster_only_inside_a_pod(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert KubeClient.from_environment(str(kubeconfig)).read_config_map_data(NAMESPACE, "none") is None
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(KubeError, match="in-cluster"):
        KubeClient.from_environment(None)  # no service-account token on this machine
    assert KubeClient.from_environment(str(kubeconfig)).read_config_map_data(NAMESPACE, "none") is None
