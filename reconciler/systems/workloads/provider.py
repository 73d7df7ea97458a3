"""Workloads provider: image versions of dbt and Dagster code locations on Kubernetes, health-gated.

Observe reads each carrier object once (Deployments and ConfigMaps), and asks Dagster once for
every code location: a component whose rollout is not complete or whose location does not load
is degraded (`rules.degraded`), so the plan shows it even when its images match the specs. Apply
patches only the one field it owns, then gates the whole component: waits for the rollouts of
its Deployments (observed generation, updated and available replicas), checks the carriers still
hold what it wrote, asks Dagster whether the code location loaded and which image it serves. A
component moves as a unit: the image to go back to is recorded before the first write (the
records' memo, `lastGood`), and a failed gate puts every carrier of the component back to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from reconciler.clients.kube.client import KubeClient, KubeError, KubeNotFound, cluster_client
from reconciler.core.model import DesiredResource, LiveResource, OwnershipRecord, ResourceKey
from reconciler.core.plan import Action, ActionKind
from reconciler.errors import ApiError, CancelledError, SpecError, SpecProblem
from reconciler.providers.base import ApplyContext, ApplyOutcome, Observation
from reconciler.secrets import SecretResolver
from reconciler.spec.loader import Environment
from reconciler.spec.secrets import SecretRef
from reconciler.systems.workloads import rules
from reconciler.systems.workloads.dagster import DagsterClient, DagsterError, LocationStatus
from reconciler.systems.workloads.health import ComponentState, HealthRow, location_problem, rollout_problem
from reconciler.systems.workloads.loading import WorkloadsSelection
from reconciler.systems.workloads.spec import ConfigMapKey, ContainerEnv, ContainerImage

_Cache = dict[tuple[str, str, str], dict[str, Any]]


class WorkloadsProvider:
    """Images in one environment's cluster."""

    system = rules.SYSTEM
    prune = False  # reconciler changes image fields; it never deletes workloads

    def __init__(self, kube: KubeClient, dagster: DagsterClient | None, selection: WorkloadsSelection) -> None:
        self.kube = kube
        self.dagster = dagster
        self.selection = selection
        self._carriers = {ref.key: ref for ref in rules.carriers(selection)}

    def close(self) -> None:
        if self.dagster is not None:
            self.dagster.close()

    def desired(self, fingerprints: Callable[[SecretRef], str]) -> list[DesiredResource]:
        return rules.desired_resources(self.selection)

    def _component(self, name: str) -> list[rules.CarrierRef]:
        return [ref for ref in self._carriers.values() if ref.component == name]

    # ---- observe ------------------------------------------------------------------------

    def _read(self, ref: rules.CarrierRef, cache: _Cache | None = None) -> dict[str, Any]:
        cache = {} if cache is None else cache
        c = ref.carrier
        if isinstance(c, ConfigMapKey):
            ident = ("configmap", ref.namespace, c.config_map)
        else:
            ident = ("deployment", ref.namespace, c.deployment)
        if ident not in cache:
            try:
                if ident[0] == "configmap":
                    cache[ident] = self.kube.get_config_map(ref.namespace, ident[2])
                else:
                    cache[ident] = self.kube.get_deployment(ref.namespace, ident[2])
            except KubeNotFound as exc:
                raise ApiError(
                    self.system,
                    f"{ident[0]} {ref.namespace}/{ident[2]} (carrier of {ref.component}) does not exist; reconciler "
                    "sets image versions but does not create workloads: deploy it first (e.g. with Helm)",
                ) from exc
            except KubeError as exc:
                raise ApiError(self.system, str(exc), status=exc.status, transient=exc.retryable) from exc
        return cache[ident]

    def _live(self, ref: rules.CarrierRef, cache: _Cache | None = None) -> str:
        image = rules.live_image(ref, self._read(ref, cache))
        if image is None:
            raise ApiError(self.system, f"{ref.label}: the container, env var or key is missing")
        return image

    def _locations(self) -> tuple[dict[str, LocationStatus] | None, str | None]:
        """Every code location's status when a pinned component has one (None and why not when Dagster failed)."""
        if self.dagster is None or not any(c.dagster_location for c in self.selection.components.values()):
            return {}, None
        try:
            return {status.name: status for status in self.dagster.location_statuses()}, None
        except DagsterError as exc:
            return None, f"cannot tell whether Dagster's code locations loaded: {exc}"

    def _rollout_problems(
        self, refs: Sequence[rules.CarrierRef], cache: _Cache, moved: Callable[[rules.CarrierRef], set[str]]
    ) -> list[str]:
        """Each of these carriers' Deployments whose rollout is not complete, unless other components on it moved
        off their last good image while these did not: then the rollout is theirs (`moved`: the components on a
        carrier's Deployment that moved), and finishing it, or rolling it back, is their job."""
        problems: list[str] = []
        for ref in refs:
            problem = rollout_problem(self._read(ref, cache)) if ref.rolls_out else None
            culprits = moved(ref) if problem is not None else set()
            if culprits and ref.component not in culprits:
                continue
            if problem is not None and problem not in problems:
                problems.append(problem)
        return problems

    def _moved(
        self, images: Mapping[ResourceKey, str], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Callable[[rules.CarrierRef], set[str]]:
        """For a carrier: the components on its Deployment whose images there are not their recorded last good."""

        def deployment(ref: rules.CarrierRef) -> tuple[str, str] | None:
            c = ref.carrier
            return None if isinstance(c, ConfigMapKey) else (ref.namespace, c.deployment)

        def last_good(component: str) -> str | None:
            memos = [records[r.key].memo.get(rules.LAST_GOOD) for r in self._component(component) if r.key in records]
            return next((memo for memo in memos if memo), None)

        def moved(ref: rules.CarrierRef) -> set[str]:
            here = deployment(ref)
            return {
                other.component
                for other in self._carriers.values()
                if here is not None
                and deployment(other) == here
                and other.key in images
                and (good := last_good(other.component)) is not None
                and images[other.key] != good
            }

        return moved

    def observe(
        self, desired: Sequence[DesiredResource], records: Mapping[ResourceKey, OwnershipRecord]
    ) -> Observation:
        cache: _Cache = {}
        images = {resource.key: self._live(self._carriers[resource.key], cache) for resource in desired}
        statuses, unknown = self._locations()
        components: dict[str, ComponentState] = {}
        moved = self._moved(images, records)
        for name, spec in sorted(self.selection.components.items()):
            refs = self._component(name)
            problems = self._rollout_problems(refs, cache, moved)
            if spec.dagster_location and statuses is not None and self.dagster is not None:
                problem = location_problem(spec.dagster_location, statuses)
                problems += [problem] if problem else []
            memos = [records[ref.key].memo.get(rules.LAST_GOOD) for ref in refs if ref.key in records]
            components[name] = ComponentState(
                {ref.key: images[ref.key] for ref in refs if ref.key in images},
                tuple(problems),
                known=statuses is not None or not spec.dagster_location,
                last_good=next((memo for memo in memos if memo), None),
            )
        live = {
            key: LiveResource(
                key,
                self._carriers[key].label,
                {"image": image, "health": rules.degraded(list(components[rules.component_of(key)].problems))},
            )
            for key, image in images.items()
        }
        return Observation(live, warnings=(unknown,) if unknown else (), payload=components)

    # ---- apply --------------------------------------------------------------------------

    def _write(self, ref: rules.CarrierRef, image: str) -> bool:
        c = ref.carrier
        try:
            if isinstance(c, ContainerImage):
                return self.kube.set_container_image(
                    ref.namespace, c.deployment, c.container, image, mirror_env=rules.CURRENT_IMAGE_ENV
                )
            if isinstance(c, ContainerEnv):
                return self.kube.set_container_env(ref.namespace, c.deployment, c.container, c.env, image)
            assert isinstance(c, ConfigMapKey)
            return self.kube.set_config_map_key(ref.namespace, c.config_map, c.key, image)
        except KubeError as exc:
            raise ApiError(self.system, f"{ref.label}: {exc}", status=exc.status, transient=exc.retryable) from exc

    def _rollout(self, ref: rules.CarrierRef, context: ApplyContext) -> str | None:
        """Wait for the Deployment; None when it became available, else why not."""
        if not ref.rolls_out:
            return None
        assert not isinstance(ref.carrier, ConfigMapKey)
        settings = self.selection.settings.rollout
        try:
            result = self.kube.wait_for_rollout(
                ref.namespace,
                ref.carrier.deployment,
                timeout_s=settings.timeout_seconds,
                poll_s=settings.poll_seconds,
                on_progress=lambda progress: context.report(str(progress)),
                cancellation=context.cancellation,
            )
        except KubeError as exc:
            return f"the rollout of {ref.label} could not be watched: {exc}"
        return None if result.ready else result.reason

    def _rollouts(self, refs: Sequence[rules.CarrierRef], context: ApplyContext) -> str | None:
        """Wait for every Deployment of these carriers (each once); the first failure, or None."""
        seen: set[tuple[str, str]] = set()
        for ref in refs:
            if isinstance(ref.carrier, ConfigMapKey) or (ref.namespace, ref.carrier.deployment) in seen:
                continue
            seen.add((ref.namespace, ref.carrier.deployment))
            failure = self._rollout(ref, context)
            if failure is not None:
                return failure
        return None

    def _health(self, ref: rules.CarrierRef, new: str, moved: bool, context: ApplyContext) -> str | None:
        """Ask Dagster whether the code location loaded, and (once every carrier holds `new`) whether it serves
        `new`; None when healthy, else the error."""
        if ref.dagster_location is None or self.dagster is None:
            return None
        location = ref.dagster_location
        timeout = self.selection.settings.dagster.timeout_seconds if self.selection.settings.dagster else 120.0
        try:
            self.dagster.reload_location(location)
            status = self.dagster.wait_until_loaded(
                location, timeout_s=timeout, poll_s=1.0, cancellation=context.cancellation
            )
        except DagsterError as exc:
            return f"Dagster health check failed: {exc}"
        context.report(f"dagster location {location}: {describe(status)}")
        if status.error is not None:
            return f"code location {location} failed to load: {status.error}"
        if not moved:
            return None
        if status.image is None:
            context.report(
                f"dagster location {location}: cannot tell which image it serves (Dagster reports none; set "
                "DAGSTER_CURRENT_IMAGE on its code server): loaded, but not confirmed to run " + new
            )
        elif status.image != new:
            return f"code location {location} serves {status.image}, not {new}, the image this apply rolled out"
        else:
            context.report(f"dagster location {location}: serves {new}")
        return None

    def _gate(self, ref: rules.CarrierRef, new: str, context: ApplyContext) -> str | None:
        """The component's gate after writing `new` to `ref`: its rollouts, its carriers, its code location."""
        refs = self._component(ref.component)
        failure = self._rollouts(refs, context)
        if failure is not None:
            return failure
        live = {other.key: self._live(other) for other in refs}
        if live[ref.key] != new:
            return (
                f"{ref.label} now holds {live[ref.key]}, not {new}, the image this apply rolled out (someone else "
                "changed it meanwhile): cannot confirm the rollout"
            )
        return self._health(ref, new, all(image == new for image in live.values()), context)

    def _state(self, context: ApplyContext, component: str) -> ComponentState:
        payload = context.observation.payload
        if isinstance(payload, dict) and isinstance(payload.get(component), ComponentState):
            state: ComponentState = payload[component]
            return state
        return ComponentState({}, (), known=False, last_good=None)

    def apply(self, action: Action, context: ApplyContext) -> ApplyOutcome:
        if action.kind != ActionKind.UPDATE or action.desired is None:
            raise ApiError(self.system, f"cannot {action.kind.value} {action.key}: only image updates are supported")
        ref = self._carriers[action.key]
        state = self._state(context, ref.component)
        new = str(action.desired.fields["image"])
        old = state.images.get(ref.key) or next((c.old for c in action.changes if c.path == ("image",)), None)
        held = str(old) if old and rules.holds_image(str(old)) else None  # never "(valueFrom ...)" as an image
        target = self._rollback_target(ref, state, held, new, context)
        if self._write(ref, new):
            context.report(f"{ref.label}: {old} -> {new}")
        else:
            context.report(f"{ref.label}: {new} is live, but {ref.component} is degraded: finishing its gate")
        try:
            failure = self._gate(ref, new, context)
        except CancelledError as exc:
            raise CancelledError(
                f"{ref.label}: {exc} while waiting for {new}; it is written but its rollout and health gate were "
                "not confirmed (a re-run shows it degraded and finishes the job)"
            ) from None
        if failure is None:
            return ApplyOutcome(ref.label, memo=self._passed(ref, new, context))
        self._fail(ref, failure, new, target, context)

    def _rollback_target(
        self, ref: rules.CarrierRef, state: ComponentState, old: str | None, new: str, context: ApplyContext
    ) -> str | None:
        """The image to put back if the gate fails, recorded (`lastGood`) before the first write.

        What every carrier ran when the plan saw the component healthy; when it was degraded (a killed or failed
        apply, a hand edit), the last image recorded as passing; without either, what the carrier held.
        """
        if state.healthy and old and set(state.images.values()) == {old}:
            if state.last_good != old:
                for other in self._component(ref.component):
                    context.remember(other.key, {rules.LAST_GOOD: old})
            return old if old != new else None
        target = state.last_good or old
        return target if target != new else None

    def _passed(self, ref: rules.CarrierRef, new: str, context: ApplyContext) -> Mapping[str, str] | None:
        """`new` is the component's last good image once every carrier holds it (then recorded on each)."""
        refs = self._component(ref.component)
        if any(self._live(other) != new for other in refs):
            return None  # the component is half-way: the rest of its carriers come next
        for other in refs:
            if other.key != ref.key:
                context.remember(other.key, {rules.LAST_GOOD: new})
        return {rules.LAST_GOOD: new}

    def _live_now(self, refs: Sequence[rules.CarrierRef]) -> str:
        found = []
        for ref in refs:
            try:
                found.append(f"{ref.label} = {self._live(ref)}")
            except ApiError as exc:
                found.append(f"{ref.label} = unknown ({exc})")
        return "; ".join(found)

    def _fail(
        self, ref: rules.CarrierRef, failure: str, new: str, target: str | None, context: ApplyContext
    ) -> NoReturn:
        """Put every carrier of the component back to `target` (the last image that passed) and raise why."""
        if not self.selection.settings.rollout.rollback_on_failure:
            raise ApiError(self.system, f"{ref.label}: {failure} (rollback disabled; {new} left in place)")
        if target is None:
            raise ApiError(
                self.system,
                f"{ref.label}: {failure} (no other image of {ref.component} is known to have passed the health "
                f"gate, so there is nothing to roll back to: {new} left in place, and the next plan shows it "
                "degraded)",
            )
        refs = self._component(ref.component)
        context.report(f"rolling back {ref.component} to {target} ({len(refs)} carrier(s))")
        errors: list[str] = []
        kept: list[str] = []
        written = 0
        for other in refs:
            try:
                live = self._live(other)
                if live == target:
                    continue
                if live != new:
                    kept.append(f"{other.label} holds {live}, not this apply's {new}: left as is")
                    continue
                self._write(other, target)
                written += 1
                context.report(f"rolling back {other.label} to {target}")
            except ApiError as exc:
                errors.append(str(exc))
        if errors:
            raise ApiError(
                self.system,
                f"{ref.component}: the health gate failed: {failure}. The rollback to {target} failed too: "
                f"{'; '.join(errors)}. Live now: {self._live_now(refs)}. The next plan shows {ref.component} "
                "degraded; fix the cause and run apply again",
            )
        if kept and not written:
            raise ApiError(self.system, f"{ref.label}: {failure} (not rolled back to {target}: {'; '.join(kept)})")
        undo = self._rollouts(refs, context)
        note = "rolled back" if undo is None else f"rollback did not become available either: {undo}"
        extra = f"; {'; '.join(kept)}" if kept else ""
        raise ApiError(self.system, f"{ref.label}: {failure} ({note} to {target}{extra})")

    def health(self) -> list[LocationStatus]:
        """Every code location's status."""
        if self.dagster is None:
            raise ApiError(self.system, "no workloads.dagster.url configured for this environment")
        try:
            return self.dagster.location_statuses()
        except DagsterError as exc:
            raise ApiError("dagster", str(exc), transient=exc.retryable) from exc

    def health_report(self) -> list[HealthRow]:
        """`reconcile health`: every code location, pinned ones Dagster does not list, and each rollout that is
        not complete, from the same reads the plan makes (so the two agree)."""
        rows: list[HealthRow] = []
        statuses = {status.name: status for status in self.health()}
        for name, status in sorted(statuses.items()):
            rows.append(HealthRow(f"code location {name}", describe(status), status.healthy))
        for component, spec in sorted(self.selection.components.items()):
            location = spec.dagster_location
            if location and location not in statuses:
                absent = f"ABSENT: {component} pins it, but Dagster lists no such code location"
                rows.append(HealthRow(f"code location {location}", absent, False))
        cache: _Cache = {}
        seen: set[str] = set()
        for ref in self._carriers.values():
            if not ref.rolls_out:
                continue
            assert not isinstance(ref.carrier, ConfigMapKey)
            what = f"deployment {ref.namespace}/{ref.carrier.deployment}"
            if what in seen:
                continue
            seen.add(what)
            problem = rollout_problem(self._read(ref, cache), detailed=True)
            rows.append(HealthRow(what, problem or "rolled out", problem is None))
        return rows


def describe(status: LocationStatus) -> str:
    if status.error is not None:
        return f"FAILED ({status.error_class}): {status.error}"
    if status.loading:
        return "LOADING: Dagster is still loading its code (not healthy yet)"
    return f"healthy ({status.load_status})"


def connect(root: Path, env: Environment, resolver: SecretResolver) -> WorkloadsProvider:
    """The provider of an environment with a `workloads:` section: its cluster, and Dagster when set."""
    selection = env.section(rules.SYSTEM, WorkloadsSelection)
    if selection is None:
        raise SpecError([SpecProblem(env.file, None, rules.SYSTEM, "no workloads section")])
    settings = selection.settings
    dagster = DagsterClient(settings.dagster.url) if settings.dagster else None
    return WorkloadsProvider(cluster_client(root, settings.kubernetes, rules.SYSTEM), dagster, selection)
