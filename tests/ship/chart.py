"""Test helpers for the Helm chart: render it with real Helm (helm-python-sdk), split and parse the manifests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
CHART = REPO / "charts" / "reconciler"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
RELEASE, NAMESPACE = "rec", "platform"
MONITORING = "monitoring.coreos.com/v1"

REQUIRED = {
    "git": {"repo": "https://github.com/acme/data-platform.git"},
    "environments": [{"name": "qa"}],
    "fingerprintKey": {"secret": {"name": "reconciler-fingerprint", "key": "fingerprint-key"}},
}
"""The values the chart cannot default (the defaults are refused without them)."""


@dataclass(frozen=True)
class Rendered:
    notes: str
    manifests: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.of_kind(kind)
        return found


def render(values: dict[str, Any] | None, *, api_versions: tuple[str, ...] = (), release: str = RELEASE) -> Rendered:
    """`helm template <release: rec> charts/reconciler -n platform [--api-versions ...] -f values`, by Helm itself.

    `Chart.render` has no `--api-versions`; the library's render call takes them in its options (what
    `helm template --api-versions` sets), so the ServiceMonitor's capability check runs for real.
    """
    import helm_python
    from helm_python import _native

    with helm_python.Chart.load(CHART) as chart:
        options = {"name": release, "namespace": NAMESPACE, "is_install": True, "api_versions": list(api_versions)}
        raw = _native.call_string("helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options))
    files: dict[str, str] = json.loads(raw)
    manifests: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        manifests += [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(notes, manifests)


def load_example(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge values layers, later wins (lists replaced), like several `-f` files."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out
