"""Core rules for workload images: each (component, carrier) pair is one resource whose fields are `image`
and `health`.

Pure. A carrier is a place in Kubernetes that holds an image reference; reconciler changes
that one field and nothing else (it never creates or deletes workloads: Helm owns those).
`health` is the component's: "healthy" when every rollout of its carriers completed and its
Dagster code location loaded, else "degraded: why". The spec always wants "healthy", so a
degraded component is never "unchanged": the plan shows it and apply finishes the job (waits,
gates, rolls back to the last image that passed, kept in the records' memo as `lastGood`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.model import DesiredResource, ResourceKey
from reconciler.systems.workloads.loading import WorkloadsSelection
from reconciler.systems.workloads.spec import Carrier, ConfigMapKey, ContainerImage

SYSTEM = "workloads"
KIND = "image"
HEALTHY = "healthy"
CURRENT_IMAGE_ENV = "DAGSTER_CURRENT_IMAGE"
"""The env var Dagster's Helm chart sets, in a user-code container, to the image it deploys; the code server
reports it as the image it serves. Written with the container's image, or the gate would see the old one."""
LAST_GOOD = "lastGood"
"""The memo entry of a carrier's record: the component's last image that passed the health gate on every carrier."""


def degraded(problems: list[str]) -> str:
    """The `health` value of a component with these problems ("healthy" with none)."""
    return "degraded: " + "; ".join(problems) if problems else HEALTHY


@dataclass(frozen=True)
class CarrierRef:
    """A carrier with its namespace resolved, and the component it belongs to."""

    component: str
    namespace: str
    carrier: Carrier
    dagster_location: str | None

    @property
    def place(self) -> str:
        """Where in its object the image sits: `deployment/NAME/CONTAINER[/env/VAR]` or `configmap/NAME/KEY`."""
        return self.carrier.place

    @property
    def label(self) -> str:
        """The place with its namespace, for messages."""
        return f"{self.namespace}: {self.place}"

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(SYSTEM, KIND, f"{self.component}@{self.place}")

    @property
    def rolls_out(self) -> bool:
        """Changing it restarts pods of a Deployment (a ConfigMap key does not by itself)."""
        return not isinstance(self.carrier, ConfigMapKey)


def component_of(key: ResourceKey) -> str:
    """The component a workloads key belongs to (`dbt@deployment/...` -> `dbt`)."""
    return key.name.partition("@")[0]


def carriers(selection: WorkloadsSelection) -> list[CarrierRef]:
    default_namespace = selection.settings.kubernetes.namespace
    found: list[CarrierRef] = []
    for name, component in sorted(selection.components.items()):
        for carrier in component.carriers:
            namespace = carrier.namespace or default_namespace
            found.append(CarrierRef(name, namespace, carrier, component.dagster_location))
    return found


def desired_resources(selection: WorkloadsSelection) -> list[DesiredResource]:
    resources = []
    for ref in carriers(selection):
        component = selection.components[ref.component]
        image = selection.images[ref.component].reference(component.repository)
        resources.append(DesiredResource(ref.key, {"image": image, "health": HEALTHY}))
    return resources


def _container(deployment: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return next((c for c in containers if c.get("name") == name), None)


def live_image(ref: CarrierRef, obj: Mapping[str, Any]) -> str | None:
    """The image reference a live object carries for this carrier (None if the slot is missing)."""
    c = ref.carrier
    if isinstance(c, ConfigMapKey):
        value = (obj.get("data") or {}).get(c.key)
        return str(value) if value is not None else None
    container = _container(obj, c.container)
    if container is None:
        return None
    if isinstance(c, ContainerImage):
        return str(container.get("image")) if container.get("image") else None
    for item in container.get("env") or []:
        if item.get("name") == c.env:
            if item.get("value") is not None:
                return str(item["value"])
            return value_from_label(item.get("valueFrom"))
    return None


def holds_image(value: str) -> bool:
    """Whether a carrier's live value is an image reference (not what `value_from_label` shows instead)."""
    return bool(value) and not value.startswith("(")


def value_from_label(value_from: Any) -> str:
    """An env var set with `valueFrom` (or with no value at all) holds no image yet: what it holds instead, for the
    plan's "old" side (a reference's kind and name, never what it resolves to)."""
    if not isinstance(value_from, Mapping) or not value_from:
        return "(empty)"
    kind, ref = next(iter(sorted(value_from.items())))
    if isinstance(ref, Mapping) and ref.get("name"):
        return f"(valueFrom {kind} {ref.get('name')}/{ref.get('key', '')})"
    if isinstance(ref, Mapping) and (ref.get("fieldPath") or ref.get("resource")):
        return f"(valueFrom {kind} {ref.get('fieldPath') or ref.get('resource')})"
    return f"(valueFrom {kind})"


def split_image(reference: str) -> tuple[str, str]:
    """`repo:tag@digest` -> (`repo`, `tag@digest`), for one-line "old -> new" displays."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :] + (f"@{digest}" if digest else "")
    return name, "latest" + (f"@{digest}" if digest else "")
