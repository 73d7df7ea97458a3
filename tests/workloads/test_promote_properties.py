"""Property: `reconcile promote` into an environment file written in any YAML style either changes exactly the
promoted pins, to exactly the source's values, and every other byte stays; or it fails with a reason and the
file is untouched.

The target file is generated: block or flow (on one line or over several) for the section, the images and
each pin; plain, single or double quotes; comments everywhere (holding `{`, `}`, `:` and `#`); two or four
spaces; LF or CRLF; anchors and aliases on pins; `${VAR:-default}` tags; digests before or after tags. The
source pins tags, digests or both. Promotion runs offline (`--skip-live-check`) on a small project.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler import service
from reconciler.cli import main
from reconciler.spec.editing import compose_yaml
from reconciler.systems.workloads.promotion import pins_of
from reconciler.systems.workloads.spec import ImageVersion

COMPONENTS = ("dbt", "ingestion", "analytics")
WORKLOADS = """components:
  dbt:
    repository: ghcr.io/acme/dbt-project
    carriers: [{kind: containerEnv, deployment: dagster-daemon, container: dagster-daemon, env: DBT_IMAGE}]
  ingestion:
    repository: ghcr.io/acme/dagster-ingestion
    carriers: [{kind: containerImage, deployment: dagster-user-code-ingestion, container: user-code}]
  analytics:
    repository: ghcr.io/acme/dagster-analytics
    carriers: [{kind: containerImage, deployment: dagster-user-code-analytics, container: user-code}]
"""
TAGS = ["1.9.0", "1.9.1", "2026.11.18", "v2", "1.10", "latest-ish", "7"]
DIGESTS = ["sha256:" + c * 64 for c in "0af"]
COMMENTS = ["# note", "# {brace", "# } and {", "# tag: 9.9.9", "# a: [b", "#", "# images: {dbt: {tag: x}}"]


@dataclass
class Pin:
    tag: str | None
    digest: str | None
    tag_quote: str  # "" (plain), "'" or '"'
    digest_quote: str
    digest_first: bool
    flow: bool
    multi_line: bool  # a flow pin over several lines
    variable: bool  # the tag written as ${PROD_X:-tag}
    comments: list[str] = field(default_factory=list)  # after each of its lines, "" for none

    def version(self) -> ImageVersion:
        return ImageVersion(tag=self.tag, digest=self.digest)


@dataclass
class Target:
    eol: str
    indent: int
    workloads_flow: bool
    images_style: str  # block, flow, flow-lines
    order: list[str]
    pins: dict[str, Pin]
    anchor: tuple[str, str] | None  # (anchored component, component that is an alias of it)
    comments: list[str]

    def loaded(self, name: str) -> ImageVersion:
        """The pin the loader reads for `name` (an alias reads its anchor's)."""
        if self.anchor is not None and name == self.anchor[1]:
            name = self.anchor[0]
        return self.pins[name].version()


def _scalar(value: str, quote: str) -> str:
    return f"{quote}{value}{quote}"


def _tag_text(pin: Pin, in_flow: bool) -> str:
    assert pin.tag is not None
    if pin.variable:
        text = "${PROD_" + "X" + ":-" + pin.tag + "}"
        return _scalar(text, pin.tag_quote or '"') if in_flow else _scalar(text, pin.tag_quote)
    return _scalar(pin.tag, pin.tag_quote)


def _fields(pin: Pin, in_flow: bool) -> list[str]:
    fields = []
    if pin.tag is not None:
        fields.append(f"tag: {_tag_text(pin, in_flow)}")
    if pin.digest is not None:
        fields.append(f"digest: {_scalar(pin.digest, pin.digest_quote)}")
    return fields[::-1] if pin.digest_first else fields


def _comment(comments: list[str], index: int) -> str:
    text = comments[index % len(comments)] if comments else ""
    return f"  {text}" if text else ""


def render(target: Target) -> str:
    """The environment file's text (LF; CRLF applied by the caller)."""
    step = " " * target.indent
    lines = ["# generated environment file " + _comment(target.comments, 0).strip(), "environment: prod"]
    alias_of = {target.anchor[1]: target.anchor[0]} if target.anchor else {}
    anchored = target.anchor[0] if target.anchor else None

    def flow_pin(name: str) -> str:
        if name in alias_of:
            return "*p"
        prefix = "&p " if name == anchored else ""
        return prefix + "{" + ", ".join(_fields(target.pins[name], True)) + "}"

    if target.workloads_flow:
        entries = ", ".join(f"{name}: {flow_pin(name)}" for name in target.order)
        lines.append(
            "workloads: {kubernetes: {namespace: prod}, images: {" + entries + "}}" + _comment(target.comments, 1)
        )
        return "\n".join(lines) + "\n"
    lines += ["workloads:" + _comment(target.comments, 1), f"{step}kubernetes:", f"{step * 2}namespace: prod"]
    if target.images_style == "flow":
        entries = ", ".join(f"{name}: {flow_pin(name)}" for name in target.order)
        lines.append(f"{step}images: {{{entries}}}" + _comment(target.comments, 2))
    elif target.images_style == "flow-lines":
        lines.append(f"{step}images: {{" + _comment(target.comments, 2))
        for index, name in enumerate(target.order):
            comma = "," if index < len(target.order) - 1 else ""
            pin = target.pins[name]
            if name not in alias_of and pin.multi_line:
                prefix = "&p " if name == anchored else ""
                lines.append(f"{step * 2}{name}: {prefix}{{" + _comment(pin.comments, 0))
                fields = _fields(pin, True)
                for position, text in enumerate(fields):
                    sep = "," if position < len(fields) - 1 else ""
                    lines.append(f"{step * 3}{text}{sep}" + (_comment(pin.comments, position + 1) if sep else ""))
                lines.append(f"{step * 2}}}{comma}" + (_comment(pin.comments, 3) if comma else ""))
            else:
                lines.append(
                    f"{step * 2}{name}: {flow_pin(name)}{comma}" + (_comment(pin.comments, 0) if comma else "")
                )
        lines.append(f"{step}}}")
    else:
        lines.append(f"{step}images:" + _comment(target.comments, 2))
        for index, name in enumerate(target.order):
            pin = target.pins[name]
            if index and _comment(target.comments, index + 3):
                lines.append(f"{step * 2}{_comment(target.comments, index + 3).strip()}")
            elif index and target.indent == 4:
                lines.append("")  # a blank line between pins
            if name in alias_of or pin.flow:
                lines.append(f"{step * 2}{name}: {flow_pin(name)}" + _comment(pin.comments, 0))
                continue
            prefix = " &p" if name == anchored else ""
            lines.append(f"{step * 2}{name}:{prefix}" + _comment(pin.comments, 0))
            for position, text in enumerate(_fields(pin, False)):
                if position and _comment(pin.comments, position + 2):  # a comment line between tag and digest
                    lines.append(f"{step * 3}{_comment(pin.comments, position + 2).strip()}")
                lines.append(f"{step * 3}{text}" + _comment(pin.comments, position + 1))
    lines.append("# the end " + _comment(target.comments, 5).strip())
    return "\n".join(lines) + "\n"


quotes = st.sampled_from(["", "'", '"'])
comment_lists = st.lists(st.sampled_from(["", *COMMENTS]), max_size=4)


@st.composite
def pins(draw: st.DrawFn) -> Pin:
    kind = draw(st.sampled_from(["tag", "tag", "both", "digest"]))
    tag = draw(st.sampled_from(TAGS)) if kind != "digest" else None
    digest = draw(st.sampled_from(DIGESTS)) if kind != "tag" else None
    return Pin(
        tag=tag,
        digest=digest,
        tag_quote=draw(quotes),
        digest_quote=draw(quotes),
        digest_first=draw(st.booleans()),
        flow=draw(st.booleans()),
        multi_line=draw(st.booleans()),
        variable=tag is not None and draw(st.integers(0, 5)) == 0,
        comments=draw(comment_lists),
    )


@st.composite
def targets(draw: st.DrawFn) -> Target:
    order = draw(st.permutations(COMPONENTS))
    anchor = None
    if draw(st.integers(0, 3)) == 0:
        first, second = draw(st.permutations(COMPONENTS))[:2]
        anchor = (first, second) if order.index(first) < order.index(second) else (second, first)
    return Target(
        eol=draw(st.sampled_from(["\n", "\r\n"])),
        indent=draw(st.sampled_from([2, 4])),
        workloads_flow=draw(st.integers(0, 5)) == 0,
        images_style=draw(st.sampled_from(["block", "flow", "flow-lines"])),
        order=list(order),
        pins={name: draw(pins()) for name in COMPONENTS},
        anchor=anchor,
        comments=draw(comment_lists),
    )


sources = st.fixed_dictionaries(
    {
        name: st.tuples(st.sampled_from([None, *TAGS]), st.sampled_from([None, *DIGESTS])).filter(
            lambda pin: pin != (None, None)
        )
        for name in COMPONENTS
    }
)


def source_file(pins: dict[str, tuple[str | None, str | None]]) -> str:
    lines = ["environment: qa", "workloads:", "  images:"]
    for name, (tag, digest) in pins.items():
        lines.append(f"    {name}:")
        lines += [f'      tag: "{tag}"'] if tag else []
        lines += [f"      digest: {digest}"] if digest else []
    return "\n".join(lines) + "\n"


def _own_lines_from(text: str, start: int) -> int:
    """Where a block pin's lines begin: back over its indent and the comment-only or blank lines above it (a comment
    between a dropped `tag` and the kept `digest` then sits above the pin, still the same bytes)."""
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start:start].strip(" \t"):
        return start  # something precedes it on its line (a flow mapping)
    while line_start > 0:
        previous = text.rfind("\n", 0, line_start - 1) + 1
        line = text[previous:line_start].strip()
        if line and not line.startswith("#"):
            break
        line_start = previous
    return line_start


def masked(text: str, names: list[str]) -> str:
    """`text` with the pins of `names` (their whole YAML nodes) replaced by a marker."""
    root = compose_yaml(text, "prod.yaml")
    workloads = next(v for k, v in root.value if k.value == "workloads")
    images = next(v for k, v in workloads.value if k.value == "images")
    spans = sorted(
        (_own_lines_from(text, v.start_mark.index), v.end_mark.index, k.value)
        for k, v in images.value
        if k.value in names
    )
    out, at = [], 0
    for start, end, name in spans:
        out += [text[at:start], f"<{name}>"]
        at = end
    return "".join(out) + text[at:]


def run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--root", str(root), *args], env={"PROD_X": ""}, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


PLAIN_FLOW = Target(
    eol="\r\n",
    indent=2,
    workloads_flow=False,
    images_style="flow-lines",
    order=list(COMPONENTS),
    pins={
        "dbt": Pin("1.9.0", DIGESTS[0], "", "", True, True, True, False, ["# {", "# }"]),
        "ingestion": Pin("2026.11.18", None, "'", "", False, False, False, False, ["# a: [b"]),
        "analytics": Pin("1.10", None, '"', "", False, True, False, False, []),
    },
    anchor=None,
    comments=["# {brace"],
)


@settings(
    max_examples=40,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(target=targets(), source=sources, chosen=st.lists(st.sampled_from(COMPONENTS), max_size=2, unique=True))
@example(target=PLAIN_FLOW, source={n: ("1.9.1", None) for n in COMPONENTS}, chosen=[])
def test_promote_changes_exactly_the_promoted_pins_or_fails_leaving_the_file_untouched(
    target: Target, source: dict[str, tuple[str | None, str | None]], chosen: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "specs").mkdir()
        (root / "environments").mkdir()
        (root / "specs" / "workloads.yaml").write_text(WORKLOADS)
        (root / "environments" / "qa.yaml").write_text(source_file(source))
        before = render(target).replace("\n", target.eol).encode()
        path = root / "environments" / "prod.yaml"
        path.write_bytes(before)
        valid, _ = run(root, "validate")

        flags = [flag for name in chosen for flag in ("--component", name)]
        code, output = run(root, "promote", "--from", "qa", "--to", "prod", "--skip-live-check", *flags)
        after = path.read_bytes()

        promoted = chosen or list(COMPONENTS)
        wanted = {name: ImageVersion(tag=source[name][0], digest=source[name][1]) for name in promoted}
        moving = [name for name in promoted if wanted[name] != target.loaded(name)]
        shared = set(target.anchor or ())
        refusable = any(name in shared or target.pins[name].variable for name in moving)
        if code != 0:
            assert after == before, output
            assert output.startswith("Error: ") and len(output) > 20 and "Traceback" not in output
            assert valid != 0 or refusable, f"refused a plain promotion:\n{output}\n{before.decode()}"
            return
        assert valid == 0 and not refusable, f"promoted what it should refuse:\n{before.decode()}\n{after.decode()}"
        loaded = pins_of(service.validate(root, {}, "prod")["prod"])
        assert loaded == {name: wanted.get(name, target.loaded(name)) for name in COMPONENTS}
        text_before, text_after = before.decode(), after.decode()
        assert masked(text_before, moving) == masked(text_after, moving), f"{text_before}\n---\n{text_after}"
        if target.eol == "\r\n":
            assert text_after.count("\n") == text_after.count("\r\n")
        else:
            assert "\r" not in text_after
