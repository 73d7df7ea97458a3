"""Core: promotion rewrites image pins in an environment file's text, touching only those lines.

Pure text surgery guided by the YAML parser's line numbers, so comments, key order, quoting
and formatting survive and the pull request shows one changed line per promoted image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reconciler.errors import ReconcilerError
from reconciler.spec.yamlsource import LocatedMap, parse_yaml
from reconciler.systems.workloads.spec import ImageVersion

_SCALAR = r"(?P<quote>[\"']?)(?P<value>[^\"',}\s#]+)(?P=quote)"


def _replace_scalar(line: str, key: str, value: str) -> str:
    pattern = re.compile(rf"(?P<head>\b{key}:\s*){_SCALAR}")
    match = pattern.search(line)
    if match is None:
        raise ReconcilerError(f"cannot find `{key}:` on line {line.strip()!r}")
    quote = match.group("quote")
    return line[: match.start()] + f"{match.group('head')}{quote}{value}{quote}" + line[match.end() :]


def _images_section(document: object, file: str) -> LocatedMap:
    workloads = document.get("workloads") if isinstance(document, LocatedMap) else None
    images = workloads.get("images") if isinstance(workloads, LocatedMap) else None
    if not isinstance(images, LocatedMap):
        raise ReconcilerError(f"{file} has no workloads.images section to promote into")
    return images


def rewrite_image_pins(text: str, file: str, pins: Mapping[str, ImageVersion]) -> str:
    """Set `workloads.images.<component>` to each pin; every other byte of the file is kept."""
    images = _images_section(parse_yaml(text, file), file)
    lines = text.splitlines(keepends=True)
    entries: list[tuple[LocatedMap, ImageVersion]] = []
    for component, version in pins.items():
        entry = images.get(component)
        if not isinstance(entry, LocatedMap) or "tag" not in entry:
            raise ReconcilerError(
                f"{file}: {component} is not pinned there (workloads.images.{component}.tag); "
                "add it by hand once, then promote"
            )
        entries.append((entry, version))
    # Bottom-up, so a line inserted for a digest never shifts the lines still to edit.
    for entry, version in sorted(entries, key=lambda item: -item[0].key_locs["tag"][1]):
        tag_index = entry.key_locs["tag"][1] - 1
        lines[tag_index] = _replace_scalar(lines[tag_index], "tag", version.tag)
        if "digest" in entry:
            digest_index = entry.key_locs["digest"][1] - 1
            if version.digest is not None:
                lines[digest_index] = _replace_scalar(lines[digest_index], "digest", version.digest)
            elif digest_index != tag_index:
                lines[digest_index] = ""
            else:
                lines[digest_index] = re.sub(r",\s*digest:\s*[^,}]+", "", lines[digest_index])
        elif version.digest is not None:
            line = lines[tag_index]
            if "{" in line:
                lines[tag_index] = re.sub(
                    r"(\btag:\s*[\"']?[^\"',}\s]+[\"']?)", rf"\1, digest: {version.digest}", lines[tag_index], count=1
                )
            else:
                indent = line[: len(line) - len(line.lstrip())]
                lines.insert(tag_index + 1, f"{indent}digest: {version.digest}\n")
    return "".join(lines)
