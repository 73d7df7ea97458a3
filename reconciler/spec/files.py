"""Spec loading, step 0: read the spec tree (`specs/`, `environments/`) from disk into texts.

The only file I/O of the spec layer; everything after it works on `{relative path: text}`.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import SpecError, SpecProblem

SPEC_ROOTS = ("specs", "environments")


def read_spec_tree(root: Path) -> dict[str, str]:
    """Every YAML file under `root/specs` and `root/environments`, keyed by POSIX relative path; hidden
    files and folders (`.superset.pull-x1y2/`, a pull being staged) are not specs."""
    texts: dict[str, str] = {}
    for top in SPEC_ROOTS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(base).parts)
            if path.is_file() and path.suffix in (".yaml", ".yml") and not hidden:
                relative = path.relative_to(root).as_posix()
                try:
                    texts[relative] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise SpecError([SpecProblem(relative, None, "", f"cannot read: {exc}")]) from exc
    if not any(name.startswith("environments/") for name in texts):
        raise SpecError([SpecProblem(str(root / "environments"), None, "", "no environment files found")])
    return texts
