"""The image's pinned runtime dependencies: the closure of `reconciler`'s requirements (no extras) in this venv.

`make constraints` (`python -m tests.ship.pins > constraints.txt`) writes it from the current working set;
test_image.py checks the file still pins exactly that closure at the installed versions.
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# Pinned runtime dependencies of reconciler (the Dockerfile installs with --constraint constraints.txt).
# Generated from the working set by `make constraints`; tests/ship/test_image.py checks it is complete.
"""


def runtime_closure(root: str = "reconciler") -> dict[str, str]:
    """{canonical name: installed version} of every distribution `root` needs at run time, markers evaluated
    for this interpreter (the image's Python is the same minor version)."""
    found: dict[str, str] = {}
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while queue:
        name, extras = queue.pop()
        dist = metadata.distribution(name)
        key = canonicalize_name(dist.metadata["Name"])
        if name != root:
            found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            child = canonicalize_name(requirement.name)
            if child not in found:
                queue.append((child, frozenset(requirement.extras)))
    return dict(sorted(found.items()))


def constraints_text() -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in runtime_closure().items())


if __name__ == "__main__":
    sys.stdout.write(constraints_text())
