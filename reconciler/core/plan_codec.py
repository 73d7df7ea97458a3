"""Core: the plan's JSON form, a documented and stable shape (`formatVersion` 1).

```
{"formatVersion": 1, "environment": "qa", "observedDigest": "<sha256>",
 "summary": {"create": 1, "update": 0, "replace": 0, "delete": 0, "unchanged": 4},
 "actions": [{"action": "create", "resource": "airbyte.source/x", "system": "airbyte",
              "kind": "source", "name": "x", "id": null, "reason": "...",
              "changes": [{"path": "configuration.host", "old": null, "new": "db"},
                          {"path": "configuration.password", "secret": true, "new": "(secret set)"}],
              "desired": {"fields": {...},
                          "secrets": [{"path": "...", "ref": "env:X", "fingerprint": "hmac-sha256:..."}],
                          "dependsOn": [...], "replaceOn": [...], "exact": [...]}}],
 "unchanged": [...], "adopted": [...], "forgotten": [...], "liveIds": {"airbyte.source/x": "<id>"},
 "liveDigests": {"airbyte.source/x": "<sha256 of what was observed>"},
 "warnings": [...]}
```
Secret values never appear: a secret change shows only a label and a keyed fingerprint.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.diff import FieldChange
from reconciler.core.model import DesiredResource, ResourceKey, SecretSlot, dotted
from reconciler.core.plan import Action, ActionKind, Plan
from reconciler.errors import PlanError

FORMAT_VERSION = 1


def _change(change: FieldChange) -> dict[str, Any]:
    body: dict[str, Any] = {"path": change.name}
    if change.secret:
        body["secret"] = True
        body["new"] = change.new
    else:
        body["old"] = change.old
        body["new"] = change.new
    return body


def _desired(desired: DesiredResource) -> dict[str, Any]:
    return {
        "fields": desired.fields,
        "secrets": [
            {"path": dotted(slot.path), "ref": slot.ref, "fingerprint": slot.fingerprint} for slot in desired.secrets
        ],
        "dependsOn": [str(key) for key in desired.depends_on],
        "replaceOn": list(desired.replace_on),
        "exact": [dotted(path) for path in desired.exact],
    }


def action_to_json(action: Action) -> dict[str, Any]:
    return {
        "action": action.kind.value,
        "resource": str(action.key),
        "system": action.key.system,
        "kind": action.key.kind,
        "name": action.key.name,
        "id": action.live_id,
        "reason": action.reason,
        "changes": [_change(change) for change in action.changes],
        "desired": _desired(action.desired) if action.desired else None,
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "environment": plan.environment,
        "observedDigest": plan.observed_digest,
        "systems": list(plan.systems),
        "summary": plan.summary(),
        "actions": [action_to_json(action) for action in plan.actions],
        "unchanged": [str(key) for key in plan.unchanged],
        "adopted": [str(key) for key in plan.adopted],
        "forgotten": [str(key) for key in plan.forgotten],
        "liveIds": {str(key): value for key, value in plan.live_ids.items()},
        "liveDigests": {str(key): value for key, value in plan.live_digests.items()},
        "warnings": list(plan.warnings),
    }


def _path(text: str) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


def _desired_from(key: ResourceKey, body: dict[str, Any]) -> DesiredResource:
    return DesiredResource(
        key=key,
        fields=body["fields"],
        secrets=tuple(SecretSlot(_path(s["path"]), s["ref"], s["fingerprint"]) for s in body.get("secrets", [])),
        depends_on=tuple(ResourceKey.parse(k) for k in body.get("dependsOn", [])),
        replace_on=tuple(body.get("replaceOn", [])),
        exact=tuple(_path(p) for p in body.get("exact", [])),
    )


def plan_from_json(body: Any) -> Plan:
    """Rebuild a saved plan; raises `PlanError` for anything that is not one."""
    try:
        if body.get("formatVersion") != FORMAT_VERSION:
            raise ValueError(f"unsupported formatVersion {body.get('formatVersion')!r}")
        actions = []
        for item in body["actions"]:
            key = ResourceKey.parse(item["resource"])
            for part, value in (("system", key.system), ("kind", key.kind), ("name", key.name)):
                if part in item and item[part] != value:  # what a reader sees must be what runs
                    raise ValueError(f"the action on {key} gives its {part} as {item[part]!r}")
            changes = tuple(
                FieldChange(_path(c["path"]), c.get("old"), c.get("new"), bool(c.get("secret", False)))
                for c in item.get("changes", [])
            )
            desired = _desired_from(key, item["desired"]) if item.get("desired") else None
            actions.append(
                Action(ActionKind(item["action"]), key, item.get("id"), changes, desired, item.get("reason", ""))
            )
        plan = Plan(
            environment=str(body["environment"]),
            actions=tuple(actions),
            unchanged=tuple(ResourceKey.parse(k) for k in body.get("unchanged", [])),
            warnings=tuple(body.get("warnings", [])),
            live_ids={ResourceKey.parse(k): str(v) for k, v in body.get("liveIds", {}).items()},
            live_digests={ResourceKey.parse(k): str(v) for k, v in body.get("liveDigests", {}).items()},
            adopted=tuple(ResourceKey.parse(k) for k in body.get("adopted", [])),
            forgotten=tuple(ResourceKey.parse(k) for k in body.get("forgotten", [])),
            systems=tuple(body.get("systems", [])),
        )
        if str(body["observedDigest"]) != plan.observed_digest:
            raise ValueError("its observedDigest is not the digest of its liveDigests")
        if "summary" in body and body["summary"] != plan.summary():
            raise ValueError(f"its summary {body['summary']!r} does not count its actions {plan.summary()!r}")
        return plan
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"not a reconciler plan file: {exc}") from exc
