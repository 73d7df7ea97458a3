"""The Kubernetes stand-in, driven through the official `kubernetes` client: verbs, patches, rollouts, faults.

Every request goes through the official client, which also validates each answer against its
models; assertions then read the answer as the API's JSON (`plain`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.sandbox.kube_server import KubeStandIn
from tests.kube.conftest import NAMESPACE, StandInClock, as_deployment, dep_path, deployment, plain

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def status_of(error: ApiException) -> dict[str, Any]:
    body = json.loads(error.body or "{}")
    assert body["kind"] == "Status" and body["status"] == "Failure"
    return dict(body)


def containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj["status"].get("conditions", [])}


def config_map(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def image_patch(image: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "code-server", "image": image}]}}}}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Polls until `predicate` holds; `timeout` only guards against a hang (a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def read(apps: client.AppsV1Api, name: str = "ingestion") -> dict[str, Any]:
    return plain(apps.read_namespaced_deployment(name, NAMESPACE))


# --- verbs -----------------------------------------------------------------------------------


def test_create_get_list_and_replace(core: client.CoreV1Api) -> None:
    created = plain(core.create_namespaced_config_map(NAMESPACE, config_map("dbt", {"image": "dbt:1"}, {"team": "a"})))
    core.create_namespaced_config_map(NAMESPACE, config_map("other", {}, {"team": "b"}))
    assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
    assert "generation" not in created["metadata"]  # ConfigMaps have no spec, so no generation

    got = plain(core.read_namespaced_config_map("dbt", NAMESPACE))
    assert got["data"] == {"image": "dbt:1"} and rv(got) == rv(created)

    listed = plain(core.list_namespaced_config_map(NAMESPACE, label_selector="team=a"))
    assert [cm["metadata"]["name"] for cm in listed["items"]] == ["dbt"]
    assert rv(listed) >= rv(created)
    others = plain(core.list_namespaced_config_map(NAMESPACE, label_selector="team!=a"))
    assert [cm["metadata"]["name"] for cm in others["items"]] == ["other"]
    assert plain(core.list_namespaced_config_map("elsewhere"))["items"] == []

    got["data"]["image"] = "dbt:2"
    replaced = plain(core.replace_namespaced_config_map("dbt", NAMESPACE, client.V1ConfigMap.model_validate(got)))
    assert replaced["data"] == {"image": "dbt:2"}
    assert rv(replaced) > rv(created) and replaced["metadata"]["uid"] == created["metadata"]["uid"]


def test_stale_resource_version_on_replace_is_a_409_conflict(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map(NAMESPACE, config_map("state", {"a": "1"}))
    core.patch_namespaced_config_map("state", NAMESPACE, {"data": {"a": "2"}})  # someone else writes

    first.data = {"a": "3"}
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("state", NAMESPACE, first)
    status = status_of(caught.value)
    assert (caught.value.status, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "state": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert plain(core.read_namespaced_config_map("state", NAMESPACE))["data"] == {"a": "2"}


def test_create_twice_is_already_exists_and_missing_is_not_found(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment()))
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment()))
    assert (exists.value.status, status_of(exists.value)["reason"]) == (409, "AlreadyExists")
    assert status_of(exists.value)["message"] == 'deployments.apps "ingestion" already exists'

    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("x", NAMESPACE)
    assert status_of(missing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "x" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "x", "group": "apps", "kind": "deployments"},
    }


def test_delete_answers_a_success_status(core: client.CoreV1Api) -> None:
    created = plain(core.create_namespaced_config_map(NAMESPACE, config_map("gone", {})))
    status = plain(core.delete_namespaced_config_map("gone", NAMESPACE))  # this client types it as a plain object
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"] == {"name": "gone", "kind": "configmaps", "uid": created["metadata"]["uid"]}
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map("gone", NAMESPACE)
    assert caught.value.status == 404


def test_requests_without_the_bearer_token_are_401(standin: KubeStandIn) -> None:
    answer = httpx.get(f"{standin.url}/api/v1/namespaces/{NAMESPACE}/configmaps")
    assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"
    wrong = client.Configuration(host=standin.url, api_key={"BearerToken": "Bearer nope"})
    with client.ApiClient(wrong) as api, pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_namespaced_config_map(NAMESPACE)
    assert caught.value.status == 401
    assert httpx.get(f"{standin.url}/version").json()["major"] == "1"  # public, as on a real cluster


def test_discovery_answers_for_the_served_groups(api_client: client.ApiClient) -> None:
    assert plain(client.CoreApi(api_client).get_api_versions())["versions"] == ["v1"]
    groups = {g["name"] for g in plain(client.ApisApi(api_client).get_api_versions())["groups"]}
    assert groups == {"apps", "coordination.k8s.io"}
    resources = plain(client.AppsV1Api(api_client).get_api_resources())["resources"]
    assert "deployments" in {r["name"] for r in resources}


def test_secret_string_data_folds_into_base64_data(core: client.CoreV1Api) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="warehouse"), data={"user": "YWRtaW4="}, string_data={"password": "s3cret"}
    )
    created = plain(core.create_namespaced_secret(NAMESPACE, body))
    assert created["data"] == {"user": "YWRtaW4=", "password": "czNjcmV0"}
    assert "stringData" not in created and created["type"] == "Opaque"
    bad = client.V1Secret(metadata=client.V1ObjectMeta(name="bad"), data={"k": "not base64!"})
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_secret(NAMESPACE, bad)
    assert caught.value.status == 400


# --- patches -----------------------------------------------------------------------------------


def test_strategic_merge_patch_changes_one_container_and_keeps_the_rest(apps: client.AppsV1Api) -> None:
    before = plain(apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment())))
    after = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, image_patch("ingestion:2.0")))

    by_name = containers(after)
    assert by_name["code-server"]["image"] == "ingestion:2.0"
    assert by_name["log-shipper"]["image"] == "registry.example/fluent-bit:3.0"
    assert [e["name"] for e in by_name["code-server"]["env"]] == ["DAGSTER_HOME", "DBT_IMAGE"]
    assert by_name["code-server"]["ports"] == [{"containerPort": 3030, "name": "grpc"}]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1

    env = [{"name": "DBT_IMAGE", "value": "dbt:2"}, {"name": "DAGSTER_HOME", "$patch": "delete"}]
    env_patch = {"spec": {"template": {"spec": {"containers": [{"name": "code-server", "env": env}]}}}}
    after = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, env_patch))
    assert containers(after)["code-server"]["env"] == [{"name": "DBT_IMAGE", "value": "dbt:2"}]
    assert containers(after)["code-server"]["image"] == "ingestion:2.0"


def test_metadata_only_changes_do_not_bump_generation(apps: client.AppsV1Api) -> None:
    before = plain(apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment())))
    labels = {"metadata": {"labels": {"owner": "data"}}}
    after = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, labels))
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert rv(after) > rv(before)


def test_merge_patch_follows_rfc_7386(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    core.create_namespaced_config_map(NAMESPACE, config_map("cfg", {"a": "1", "b": "2"}))
    patch = {"data": {"a": None, "c": "3"}}
    patched = plain(core.patch_namespaced_config_map("cfg", NAMESPACE, patch, _content_type=MERGE))
    assert patched["data"] == {"b": "2", "c": "3"}

    apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment()))
    lone = {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x:1"}]}}}}
    replaced = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, lone, _content_type=MERGE))
    assert list(containers(replaced)) == ["only"]  # lists are replaced whole


def test_json_patch_applies_and_a_failed_test_op_is_422_invalid(apps: client.AppsV1Api) -> None:
    before = plain(apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment())))
    image = "/spec/template/spec/containers/0/image"
    ops = [
        {"op": "test", "path": image, "value": "registry.example/ingestion:1.0"},
        {"op": "replace", "path": image, "value": "ingestion:2.0"},
    ]
    after = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, ops, _content_type=JSON_PATCH))
    assert containers(after)["code-server"]["image"] == "ingestion:2.0"

    with pytest.raises(ApiException) as caught:  # the test op now fails: the image changed
        apps.patch_namespaced_deployment("ingestion", NAMESPACE, ops, _content_type=JSON_PATCH)
    status = status_of(caught.value)
    assert (caught.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == "the server rejected our request due to an error in our request"
    current = read(apps)
    assert containers(current)["code-server"]["image"] == "ingestion:2.0"
    assert current["metadata"]["generation"] == before["metadata"]["generation"] + 1


def test_patch_carrying_a_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    created = plain(core.create_namespaced_config_map(NAMESPACE, config_map("cfg", {"a": "1"})))
    core.patch_namespaced_config_map("cfg", NAMESPACE, {"data": {"a": "2"}})
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"a": "3"}}
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_config_map("cfg", NAMESPACE, stale)
    assert caught.value.status == 409


def test_server_side_apply_creates_tracks_owners_and_needs_force_to_take_a_field(
    standin: KubeStandIn, apps: client.AppsV1Api
) -> None:
    with pytest.raises(ApiException) as no_manager:
        apps.patch_namespaced_deployment("ingestion", NAMESPACE, deployment(), _content_type=APPLY)
    assert no_manager.value.status == 422 and "fieldManager" in status_of(no_manager.value)["message"]

    created = plain(
        apps.patch_namespaced_deployment(
            "ingestion", NAMESPACE, deployment(), field_manager="helm", _content_type=APPLY
        )
    )
    assert created["metadata"]["generation"] == 1
    assert [(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]] == [("helm", "Apply")]

    # The official client sends apply bodies as JSON; kubectl sends YAML, so send that raw.
    yaml_body = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ingestion\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: code-server\n        image: ingestion:9.9\n"
    )
    url = f"{standin.url}{dep_path()}"
    headers = {"Authorization": f"Bearer {standin.token}", "Content-Type": APPLY}
    conflict = httpx.patch(url, params={"fieldManager": "rogue"}, headers=headers, content=yaml_body)
    assert conflict.status_code == 409
    assert conflict.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "helm" using apps/v1: '
        '.spec.template.spec.containers[name="code-server"].image'
    )

    forced = httpx.patch(url, params={"fieldManager": "rogue", "force": "true"}, headers=headers, content=yaml_body)
    assert forced.status_code == 200
    live = read(apps)
    assert containers(live)["code-server"]["image"] == "ingestion:9.9"
    assert containers(live)["log-shipper"]["image"] == "registry.example/fluent-bit:3.0"
    owners = {
        m["manager"]: m["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        for m in live["metadata"]["managedFields"]
    }
    assert owners["rogue"] == {'k:{"name":"code-server"}': {".": {}, "f:name": {}, "f:image": {}}}
    assert "f:image" not in owners["helm"]['k:{"name":"code-server"}']  # taken by the forced apply
    assert "f:image" in owners["helm"]['k:{"name":"log-shipper"}']  # helm still owns the sidecar's image

    with pytest.raises(ApiException) as back:  # helm re-applying its old image now conflicts with rogue
        apps.patch_namespaced_deployment(
            "ingestion", NAMESPACE, deployment(), field_manager="helm", _content_type=APPLY
        )
    assert back.value.status == 409 and 'conflict with "rogue"' in status_of(back.value)["message"]


def test_updates_record_their_field_manager(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment()), field_manager="helm")
    patch = image_patch("ingestion:2.0")
    after = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, patch, field_manager="reconciler"))
    entries = {m["manager"]: m for m in after["metadata"]["managedFields"]}
    assert set(entries) == {"helm", "reconciler"} and entries["reconciler"]["operation"] == "Update"
    owned = entries["reconciler"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert owned == {'k:{"name":"code-server"}': {".": {}, "f:image": {}}}


# --- rollouts ------------------------------------------------------------------------------------


def test_rollout_moves_status_like_the_controller(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    created = plain(apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment(replicas=2))))
    assert created["status"]["observedGeneration"] == 1 and "availableReplicas" not in created["status"]
    wait_until(
        lambda: (
            plain(apps.read_namespaced_deployment_status("ingestion", NAMESPACE))["status"].get("availableReplicas")
            == 2
        )
    )

    patched = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, image_patch("ingestion:2.0")))
    status = patched["status"]
    assert patched["metadata"]["generation"] == 2 and status["observedGeneration"] == 2
    assert (status["updatedReplicas"], status["availableReplicas"], status["replicas"]) == (2, 2, 4)
    assert conditions(patched)["Progressing"]["reason"] == "ReplicaSetUpdated"
    assert patched["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    def done() -> bool:
        s = read(apps)["status"]
        return (s["replicas"], s["updatedReplicas"], s.get("readyReplicas"), s.get("availableReplicas")) == (2, 2, 2, 2)

    wait_until(done)
    final = read(apps)
    assert {k: (c["status"], c["reason"]) for k, c in conditions(final).items()} == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    assert "unavailableReplicas" not in final["status"]

    pods = plain(core.list_namespaced_pod(NAMESPACE, label_selector="app=ingestion,component=user-code"))["items"]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"ingestion:2.0"}
    assert all(p["metadata"]["labels"]["pod-template-hash"] in p["metadata"]["name"] for p in pods)
    assert plain(core.list_namespaced_pod(NAMESPACE, label_selector="app=other"))["items"] == []


def test_a_failing_image_never_becomes_available_and_rollback_recovers(
    standin: KubeStandIn, clock: StandInClock, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    clock.freeze()  # moved by hand: a loaded machine cannot pass the 1 s deadline behind the test's back
    standin.fail_images("*:broken-*")
    apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment(deadline_s=1)))
    clock.advance(0.3)  # longer than a rollout takes
    assert read(apps)["status"].get("availableReplicas") == 1

    apps.patch_namespaced_deployment("ingestion", NAMESPACE, image_patch("ingestion:broken-1"))
    clock.advance(0.4)  # longer than a rollout takes, shorter than the deadline
    status = read(apps)["status"]
    assert (status["updatedReplicas"], status["availableReplicas"], status["unavailableReplicas"]) == (1, 1, 1)
    assert conditions(read(apps))["Progressing"]["reason"] == "ReplicaSetUpdated"

    pods = plain(core.list_namespaced_pod(NAMESPACE, label_selector="app=ingestion"))["items"]
    waiting = [
        (s["name"], s["state"]["waiting"]["reason"], s["state"]["waiting"]["message"])
        for p in pods
        for s in p["status"]["containerStatuses"]
        if "waiting" in s["state"]
    ]
    assert waiting == [("code-server", "ImagePullBackOff", 'Back-off pulling image "ingestion:broken-1"')]
    assert sorted(p["status"]["phase"] for p in pods) == ["Pending", "Running"]  # the old pod keeps serving

    clock.advance(0.7)  # past the deadline, counted from the rollout's start
    progressing = conditions(read(apps))["Progressing"]
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    assert progressing["status"] == "False" and progressing["message"].endswith("has timed out progressing.")

    rolled_back = plain(apps.patch_namespaced_deployment("ingestion", NAMESPACE, image_patch(deployment_image())))
    status = rolled_back["status"]
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (1, 1, 1)  # pods were up
    assert conditions(rolled_back)["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert rolled_back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def deployment_image() -> str:
    return str(deployment()["spec"]["template"]["spec"]["containers"][0]["image"])


def test_crash_looping_pods_report_their_reason(
    standin: KubeStandIn, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    standin.fail_images("*:crash", reason="CrashLoopBackOff")
    apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment(image="ingestion:crash")))
    (pod,) = plain(core.list_namespaced_pod(NAMESPACE, label_selector="app=ingestion"))["items"]
    crashed = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "code-server")
    assert crashed["state"]["waiting"]["reason"] == "CrashLoopBackOff" and crashed["restartCount"] > 0
    assert crashed["state"]["waiting"]["message"].startswith("back-off 5m0s restarting failed container=code-server")


# --- test hooks ---------------------------------------------------------------------------------


def test_force_conflicts_answers_409_to_writes_carrying_a_resource_version(
    standin: KubeStandIn, core: client.CoreV1Api
) -> None:
    created = plain(core.create_namespaced_config_map(NAMESPACE, config_map("cfg", {"a": "1"})))
    standin.force_conflicts(1)
    core.patch_namespaced_config_map("cfg", NAMESPACE, {"data": {"a": "2"}})  # no resourceVersion: not affected
    fresh = core.read_namespaced_config_map("cfg", NAMESPACE)
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("cfg", NAMESPACE, fresh)
    assert caught.value.status == 409
    again = core.read_namespaced_config_map("cfg", NAMESPACE)
    assert rv(plain(again)) > rv(plain(fresh)) > rv(created)  # "someone else" wrote
    assert plain(core.replace_namespaced_config_map("cfg", NAMESPACE, again))["data"] == {"a": "2"}


def test_edit_is_a_write_that_stats_do_not_count(standin: KubeStandIn, apps: client.AppsV1Api) -> None:
    created = plain(apps.create_namespaced_deployment(NAMESPACE, as_deployment(deployment())))
    standin.stats.reset()

    def hand_edit(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "hand-edited:1"

    standin.edit(dep_path(), hand_edit)
    assert standin.stats.total == 0
    edited = standin.get_object(dep_path())
    assert edited["metadata"]["generation"] == 2 and rv(edited) > rv(created)
    assert "kubectl-edit" in {m["manager"] for m in edited["metadata"]["managedFields"]}


def test_stats_count_requests_writes_and_routes(standin: KubeStandIn, core: client.CoreV1Api) -> None:
    standin.stats.reset()
    core.create_namespaced_config_map(NAMESPACE, config_map("cfg", {}))
    core.read_namespaced_config_map("cfg", NAMESPACE)
    core.patch_namespaced_config_map("cfg", NAMESPACE, {"data": {"a": "1"}})
    assert (standin.stats.total, standin.stats.writes) == (3, 2)
    assert standin.stats.by_route == {"POST configmaps": 1, "GET configmaps/{name}": 1, "PATCH configmaps/{name}": 1}


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "kube.json"
    config_map_path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/cfg"
    with KubeStandIn(rollout_seconds=0.0, state_file=state) as first:
        seeded = first.seed(deployment())
        first.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": NAMESPACE}})
    with KubeStandIn(rollout_seconds=0.0, state_file=state) as second:
        again = second.get_object(dep_path())
        assert again["metadata"]["uid"] == seeded["metadata"]["uid"]
        assert again["status"]["availableReplicas"] == 1
        assert second.get_object(config_map_path)["metadata"]["name"] == "cfg"
        later = second.seed(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": NAMESPACE}}
        )
        assert rv(later) > rv(again)
