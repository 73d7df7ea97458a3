"""Promotion: image pins written into an environment file in place, through the one spec-file editor.

`spec.editing` round-trips the file with ruamel.yaml, so comments, key order, quoting, flow
style and indentation survive and the pull request shows one changed line per promoted image
(two when a digest is added under a tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.spec.editing import edit_yaml_text
from reconciler.systems.workloads.spec import ImageVersion


def _same_style(old: Any, new: str) -> Any:
    """`new` written the way `old` was (a quoted scalar stays quoted with the same quotes)."""
    from ruamel.yaml.scalarstring import ScalarString

    return type(old)(new) if isinstance(old, ScalarString) else new


def _images(document: Any, file: str) -> Any:
    workloads = document.get("workloads") if isinstance(document, dict) else None
    images = workloads.get("images") if isinstance(workloads, dict) else None
    if not isinstance(images, dict):
        raise ReconcilerError(f"{file} has no workloads.images section to promote into")
    return images


def rewrite_image_pins(text: str, file: str, pins: Mapping[str, ImageVersion]) -> str:
    """Set `workloads.images.<component>` to each pin; every other line of the file is kept."""

    def change(document: Any) -> bool:
        images = _images(document, file)
        for component, version in pins.items():
            entry = images.get(component)
            if not isinstance(entry, dict) or "tag" not in entry:
                raise ReconcilerError(
                    f"{file}: {component} is not pinned there (workloads.images.{component}.tag); "
                    "add it by hand once, then promote"
                )
            entry["tag"] = _same_style(entry["tag"], version.tag)
            if version.digest is not None:
                if "digest" in entry:
                    entry["digest"] = _same_style(entry["digest"], version.digest)
                else:
                    commented: Any = entry  # ruamel's CommentedMap: inserted right under its tag
                    commented.insert(list(entry).index("tag") + 1, "digest", version.digest)
            elif "digest" in entry:
                del entry["digest"]
        return bool(pins)

    return edit_yaml_text(text, change)
