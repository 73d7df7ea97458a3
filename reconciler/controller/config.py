"""The controller's own configuration, `controller.yaml`: owned environments and their mode, drift rules, Slack.

Read once at start-up by `app.build`, with the project's YAML loader, so a mistake names its file,
line and field like any spec (`SpecError`); unknown keys are errors. Pure: text in, a model out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from reconciler.errors import SpecError, SpecProblem
from reconciler.spec.loader import Problems, validate_model
from reconciler.spec.yamlsource import LocatedMap, YamlSyntaxError, parse_yaml

Name = Annotated[str, StringConstraints(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class Mode(StrEnum):
    APPLY = "apply"
    PLAN_ONLY = "plan-only"


class Policy(StrEnum):
    ENFORCE = "enforce"
    ALERT = "alert"
    IGNORE = "ignore"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OwnedEnvironment(_Strict):
    name: Name
    mode: Mode = Mode.APPLY


class DriftRule(_Strict):
    """First match wins: `system` always, `kind` and `environment` when given."""

    system: Name
    kind: Name | None = None
    environment: Name | None = None
    policy: Policy = Policy.ALERT
    ignore: tuple[Annotated[str, StringConstraints(min_length=1)], ...] = ()
    """Dotted field paths as a plan shows them; a path ignores itself and everything below it."""


class DriftSettings(_Strict):
    default: Policy = Policy.ALERT
    rules: tuple[DriftRule, ...] = ()


class SlackSettings(BaseModel):
    """controller.yaml's `slack:` section."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    channel: str | None = Field(default=None, min_length=1, max_length=80)
    """Channel id (`C0123ABCD`) or name (`#data-platform`) the bot posts to; a webhook has its own channel."""
    notify_applied: bool = Field(default=False, alias="notifyApplied")
    """Post a short summary after each applied commit."""
    max_messages_per_cycle: int = Field(default=20, alias="maxMessagesPerCycle", ge=1, le=1000)
    """New messages one drift cycle of one environment may post; then one summary message."""

    @field_validator("channel")
    @classmethod
    def _one_word(cls, value: str | None) -> str | None:
        if value is not None and (value.strip() != value or " " in value):
            raise ValueError("a channel id or name has no spaces")
        return value


class ControllerConfig(_Strict):
    environments: tuple[OwnedEnvironment, ...] = ()
    drift: DriftSettings = DriftSettings()
    slack: SlackSettings = SlackSettings()

    def mode_of(self, environment: str) -> Mode:
        return next((owned.mode for owned in self.environments if owned.name == environment), Mode.APPLY)


def parse_config(text: str, file: str) -> ControllerConfig:
    """`controller.yaml`'s text -> its model; `SpecError` naming file, line and field for anything wrong."""
    try:
        tree = parse_yaml(text, file)
    except YamlSyntaxError as exc:
        raise SpecError([exc.problem]) from exc
    if tree is None:
        return ControllerConfig()
    if not isinstance(tree, LocatedMap):
        raise SpecError([SpecProblem(file, 1, "", f"expected a mapping, not {type(tree).__name__}")])
    problems = Problems()
    config = validate_model(ControllerConfig, tree, (), problems)
    if config is not None:
        names = [owned.name for owned in config.environments]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.at(tree, ("environments", index, "name"), f"environment {name} is listed twice")
    if problems.items or config is None:
        raise SpecError(problems.items)
    return config
