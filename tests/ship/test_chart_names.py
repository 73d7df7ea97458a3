"""The chart's rendered names under the names platform teams give: a release name with dots or a leading digit,
long or odd nameOverride / fullnameOverride. Every name must be one the API server accepts for its kind."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ship.chart import REQUIRED, merged, render

helm_python = pytest.importorskip("helm_python")

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def invalid_names(manifests: list[dict[str, Any]]) -> list[str]:
    """What the API server would refuse: a Service's name is a DNS-1035 label (apimachinery
    ValidateServiceName), the rest DNS-1123 subdomains, a Deployment's a DNS-1123 label (Kubernetes' docs: its
    pods' hostnames come from it); label values at most 63 characters of [-A-Za-z0-9_.]."""
    bad = []
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        rule, limit = {"Service": (DNS_1035_LABEL, 63), "Deployment": (DNS_1123_LABEL, 63)}.get(
            kind, (DNS_1123_SUBDOMAIN, 253)
        )
        if not rule.match(name) or len(name) > limit:
            bad.append(f"{kind} {name!r}")
        for key, value in (manifest["metadata"].get("labels") or {}).items():
            if len(str(value)) > 63 or not LABEL_VALUE.match(str(value)):
                bad.append(f"{kind} {name}: label {key}={value!r}")
    return bad


@pytest.mark.parametrize(
    ("release", "patch"),
    [
        pytest.param("rec", {}, id="plain"),
        pytest.param("data.platform", {}, id="release-with-dots"),
        pytest.param("rec", {"fullnameOverride": "a" * 63}, id="fullname-63"),
        pytest.param("rec", {"nameOverride": "n" * 63}, id="name-63"),
        pytest.param("r" * 53, {}, id="longest-release"),
    ],
)
def test_every_rendered_name_is_one_the_api_server_accepts(release: str, patch: dict[str, Any]) -> None:
    assert invalid_names(render(merged(REQUIRED, patch), release=release).manifests) == []


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        pytest.param({"fullnameOverride": "Reconciler_Prod"}, "/fullnameOverride", id="fullname-not-dns"),
        pytest.param({"nameOverride": "my.name"}, "/nameOverride", id="name-not-dns"),
    ],
)
def test_overrides_that_make_no_valid_name_are_refused_with_their_path(patch: dict[str, Any], path: str) -> None:
    values = merged(REQUIRED, patch)
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(values)
    assert f"'{path}'" in str(refused.value), str(refused.value)


def test_a_release_name_starting_with_a_digit_asks_for_fullname_override() -> None:
    with pytest.raises(helm_python.HelmRenderError, match="must start with a letter: set fullnameOverride"):
        render(REQUIRED, release="2026-reconciler")
    assert (
        invalid_names(render(merged(REQUIRED, {"fullnameOverride": "reconciler"}), release="2026-rec").manifests) == []
    )


def test_large_numbers_render_as_integers_not_floats() -> None:
    """Helm reads values as float64 and prints a large one as 1e+06: OpenShift's namespace UID ranges
    (1000650000) and long intervals must reach the pod as the integers they are."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    patch = {"runAsUser": 1000650000, "controller": {"pollIntervalSeconds": 1000000, "driftIntervalSeconds": 86400000}}
    deployment = render(merged(REQUIRED, patch)).one("Deployment")
    kubernetes_validate.validate(deployment, "1.31.0", strict=True)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 1000650000
    assert isinstance(pod["securityContext"]["runAsUser"], int)
    assert {pod["securityContext"][k] for k in ("runAsGroup", "fsGroup")} == {1000650000}
    assert "polls git every 1000000 s" in render(merged(REQUIRED, patch)).notes
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["RECONCILER_POLL_INTERVAL"] == "1000000"
    assert env["RECONCILER_DRIFT_INTERVAL"] == "86400000"
