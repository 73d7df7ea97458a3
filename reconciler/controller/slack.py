"""The controller's Slack notifier: one message per alert, edited when it changes, resolved when it goes.

The loop hands each environment's drift (and its commits' outcomes) to a `Notifier`; this one
keeps, per environment, an `AlertStore` of which Slack message stands for which alert key
(`drift/<env>/<system>/<kind>/<name>`, `apply-failed/<env>`, `invalid/<env>`, `overflow/<env>`,
`applied/<env>`), so a restart or a new leader edits the same messages. It compares the digest
of what a message would say with the stored one and stays silent when they are equal; it saves
a record marked "posting" before each post and the message's ts right after, so a crash between two
posts cannot post one twice, and a crash between a post and its save is settled after the restart by
finding the post in the channel (by its alert key; needs the channel's id, which a channel given by name
has once a first message is on record).
What a message looks like is `render/slack.py`; how it reaches Slack (pacing, Retry-After, the
token) is `slack_api.py`.

Transitions, with a bot token (`RECONCILER_SLACK_TOKEN`):
- new drift: a message (at most `maxMessagesPerCycle` new ones per cycle, then one summary message
  "and N more", itself edited while it lasts; the others get theirs in the next cycles);
- changed drift: the message is edited (`chat.update`), no new message;
- drift gone: the message is edited to "resolved", then a thread reply says so (the reply is a new
  message, so it waits for the per-cycle budget; the record is dropped after it);
- drift back after being resolved: a new message (the resolved one stays resolved in the history);
- a message someone deleted (`message_not_found`) or that another app posted (`cant_update_message`):
  posted again.
With an incoming webhook (`RECONCILER_SLACK_WEBHOOK_URL`, degraded): the same transitions, each a
new post (a webhook cannot edit), still deduplicated through the AlertStore; it logs once that it is
degraded.
Every failure (a bad token, Slack down, a refused save) is logged and the loop carries on; what was
not said is said next cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from reconciler.controller.config import SlackSettings
from reconciler.controller.ports import (
    AlertRecord,
    AlertStore,
    AppliedCommit,
    DriftFinding,
    NoNotifier,
    Notifier,
)
from reconciler.controller.slack_api import (
    BotChannel,
    Clock,
    MessageCallback,
    RealClock,
    SlackChannel,
    SlackError,
    Stopped,
    WebhookChannel,
)
from reconciler.errors import PermanentError, ReconcilerError, redact_credentials
from reconciler.render import slack as render
from reconciler.render.slack import SlackMessage

log = structlog.get_logger("reconciler.controller.slack")

TOKEN_ENV = "RECONCILER_SLACK_TOKEN"
WEBHOOK_ENV = "RECONCILER_SLACK_WEBHOOK_URL"
API_URL_ENV = "RECONCILER_SLACK_API_URL"
"""Another Web API root (GovSlack's `https://slack-gov.com/api/`, or a local stand-in); default Slack's."""
GONE = frozenset({"message_not_found", "cant_update_message", "channel_not_found"})
"""Answers to an edit that mean the message cannot be edited any more: post a new one instead."""
REPLY_PENDING = "reply"
POST_PENDING = "posting"
"""In a record saved just before its post (its value: the ts of the message it replaces, or ""): a record
still marked so after a restart means the process died between the post and its save; the channel is
searched for the post (by its alert key) before anything is posted again."""


class _Alerts:
    """One environment's alert records for one call: saved after every change, so nothing said is said twice.

    When a save fails (a ConfigMap conflict, the API down), the records this process meant to save are kept
    as `unsaved` and used, and saved first, by the next call: a message posted but not yet recorded is
    edited next cycle, not posted again (a crash in between is settled by its "posting" mark, see `_settle`)."""

    def __init__(self, store: AlertStore, unsaved: dict[str, AlertRecord] | None) -> None:
        self._store = store
        self.unsaved = unsaved
        self.records = dict(unsaved) if unsaved is not None else store.load()

    def flush(self) -> None:
        """Save what an earlier call could not, before anything else is said."""
        if self.unsaved is not None:
            self._save()

    def _save(self) -> None:
        try:
            self._store.save(self.records)
        except BaseException:
            self.unsaved = dict(self.records)
            raise
        self.unsaved = None

    def put(self, record: AlertRecord) -> None:
        self.records[record.key] = record
        self._save()

    def restore(self, key: str, record: AlertRecord | None) -> None:
        if record is None:
            self.drop(key)
        else:
            self.put(record)

    def drop(self, key: str) -> None:
        if self.records.pop(key, None) is not None:
            self._save()


class SlackNotifier:
    """A `Notifier` posting to Slack through a `SlackChannel` (a bot token, or a degraded incoming webhook)."""

    def __init__(
        self,
        channel: SlackChannel,
        alert_store_for: Callable[[str], AlertStore],
        settings: SlackSettings | None = None,
    ) -> None:
        self._channel = channel
        self._stores = alert_store_for
        self._settings = settings or SlackSettings()
        self._lock = threading.Lock()
        self._warned_degraded = False
        self._unsaved: dict[str, dict[str, AlertRecord]] = {}
        """Per environment, the records a failed save left unsaved (see `_Alerts`)."""

    # --- the Notifier protocol ---

    def drift(self, environment: str, findings: Sequence[DriftFinding]) -> None:
        self._guarded("drift", environment, lambda alerts: self._drift(alerts, environment, findings))

    def applied(self, commit: AppliedCommit) -> None:
        self._guarded("applied", commit.environment, lambda alerts: self._applied(alerts, commit))

    def apply_failed(self, environment: str, revision: str, error: str) -> None:
        message = render.apply_failed_message(environment, revision, error)
        key = f"apply-failed/{environment}"
        self._guarded(
            "apply_failed", environment, lambda alerts: self._open(alerts, key, message, "Apply failed", revision)
        )

    def invalid_commit(self, environment: str, revision: str, problems: Sequence[str]) -> None:
        message = render.invalid_commit_message(environment, revision, problems)
        key = f"invalid/{environment}"
        title = "Invalid commit"
        self._guarded("invalid_commit", environment, lambda alerts: self._open(alerts, key, message, title, revision))

    def check(self) -> str | None:
        """Ask Slack whether it takes the credentials (at start-up): None when it does (or cannot tell), else
        the problem in words, logged as `slack.auth_failed`; the controller runs on either way."""
        try:
            self._channel.check()
        except SlackError as exc:
            log.error("slack.auth_failed", method=exc.method, error=exc.code)
            return str(exc)
        return None

    # --- plumbing ---

    def _guarded(self, what: str, environment: str, work: Callable[[_Alerts], None]) -> None:
        """Run `work` with the environment's records; log any failure and return (the loop must carry on)."""
        with self._lock:
            if not self._channel.can_update and not self._warned_degraded:
                self._warned_degraded = True
                log.warning(
                    "slack.degraded",
                    reason="incoming webhook: posts only, cannot edit; changes and resolutions are new messages",
                )
            alerts: _Alerts | None = None
            try:
                alerts = _Alerts(self._stores(environment), self._unsaved.pop(environment, None))
                for record in alerts.records.values():
                    self._channel.remember_channel_id(record.channel)
                alerts.flush()
                self._settle(alerts)
                work(alerts)
            except Stopped:
                log.warning(
                    "slack.stopped",
                    env=environment,
                    what=what,
                    note="shutting down; the rest is said by the next leader",
                )
            except SlackError as exc:
                log.error(
                    "slack.failed",
                    env=environment,
                    what=what,
                    method=exc.method,
                    error=exc.code,
                    retryable=exc.retryable,
                )
            except ReconcilerError as exc:
                log.error("slack.alert_state_failed", env=environment, what=what, error=str(exc))
            except Exception as exc:  # a bug must not stop the controller's loop either
                error = redact_credentials(str(exc))[:300]
                log.error("slack.unexpected", env=environment, what=what, error_type=type(exc).__name__, error=error)
            finally:
                if alerts is not None and alerts.unsaved is not None:
                    self._unsaved[environment] = alerts.unsaved

    def _post(self, alerts: _Alerts, key: str, message: SlackMessage, digest: str, extra: Mapping[str, str]) -> None:
        before = alerts.records.get(key)
        if self._channel.can_update:  # a webhook's post cannot be searched for: nothing to mark
            marked = {**extra, POST_PENDING: before.ts if before is not None else ""}
            alerts.put(AlertRecord(key, self._channel.channel, "", "", extra=marked))
        try:
            posted = self._channel.post(message, key=key)
        except BaseException:
            if self._channel.can_update:  # not posted (a lost answer was searched for): as it was before
                alerts.restore(key, before)
            raise
        alerts.put(AlertRecord(key, posted.channel, posted.ts, digest, extra=dict(extra)))
        log.info("slack.posted", key=key)

    def _settle(self, alerts: _Alerts) -> None:
        """Records marked as posting (the process died between a post and its save): the post found in the
        channel is recorded (its digest left empty, so the next step edits it to what it must say); not found,
        the record goes and the alert is posted as new."""
        for key, record in sorted(alerts.records.items()):
            if POST_PENDING not in record.extra:
                continue
            extra = {name: value for name, value in record.extra.items() if name != POST_PENDING}
            found = self._channel.find(key, after=record.extra[POST_PENDING])
            if found is None:
                alerts.drop(key)
                log.warning("slack.post_not_found", key=key)
            else:
                alerts.put(AlertRecord(key, found.channel, found.ts, "", extra=extra))
                log.info("slack.post_found", key=key)

    def _edit(self, record: AlertRecord, message: SlackMessage) -> bool:
        """Edit the record's message; False when it cannot be (a webhook's, deleted, another app's)."""
        if not self._channel.can_update or not record.ts:
            return False
        try:
            self._channel.update(record.channel, record.ts, message)
        except SlackError as exc:
            if exc.code not in GONE:
                raise
            log.warning("slack.message_gone", key=record.key, error=exc.code)
            return False
        log.info("slack.updated", key=record.key)
        return True

    def _open(self, alerts: _Alerts, key: str, message: SlackMessage, title: str, revision: str) -> None:
        """An alert that lasts until resolved: posted once, edited when what it says changes."""
        record = alerts.records.get(key)
        extra = {"revision": revision, "title": f"{title} at {render.short_revision(revision)}"}
        if record is not None and not record.resolved:
            if record.digest == message.digest:
                return
            if self._edit(record, message):
                alerts.put(replace(record, digest=message.digest, extra=extra))
                return
        self._post(alerts, key, message, message.digest, extra)

    def _resolve(self, alerts: _Alerts, record: AlertRecord, message: SlackMessage, reply: SlackMessage) -> None:
        """Mark an alert resolved: edit, save, thread reply, drop (a webhook: one new post); a crash between
        the save and the reply leaves a resolved record whose reply the next cycle posts."""
        if not record.resolved:
            if not self._channel.can_update:
                self._channel.post(message, key=record.key)
                alerts.drop(record.key)
                return
            if not self._edit(record, message):
                alerts.drop(record.key)  # the message is gone: nothing left to mark or reply under
                return
            record = replace(record, resolved=True, digest=message.digest, extra={**record.extra, REPLY_PENDING: "1"})
            alerts.put(record)
        self._channel.post(reply, thread_ts=record.ts, key=f"{record.key}#resolved")  # keyed: a lost answer is found
        alerts.drop(record.key)
        log.info("slack.resolved", key=record.key)

    # --- drift ---

    def _drift(self, alerts: _Alerts, environment: str, findings: Sequence[DriftFinding]) -> None:
        budget = self._settings.max_messages_per_cycle
        found = {finding.alert_key: finding for finding in findings if finding.environment == environment}
        posted, overflow = 0, 0
        for key in sorted(found):
            finding = found[key]
            message = render.drift_message(finding)
            digest = message.digest if self._channel.can_update else self._webhook_digest(finding)
            record = alerts.records.get(key)
            extra = {
                "environment": finding.environment,
                "system": finding.system,
                "kind": finding.kind,
                "name": finding.name,
                "revision": finding.revision,
            }
            if record is not None and not record.resolved:
                if record.digest == digest:
                    continue
                if self._edit(record, message):
                    alerts.put(replace(record, digest=digest, extra=extra))
                    continue
            if posted >= budget:
                overflow += 1
                continue
            changed = record is not None and not record.resolved and not self._channel.can_update
            shown = render.drift_message(finding, changed=True) if changed else message
            self._post(alerts, key, shown, digest, extra)
            posted += 1
        self._overflow(alerts, environment, overflow, budget)
        prefix = f"drift/{environment}/"
        for key, record in sorted(alerts.records.items()):
            if key.startswith(prefix) and key not in found:
                posted += self._drift_gone(alerts, record, environment, can_post=posted < budget)

    @staticmethod
    def _webhook_digest(finding: DriftFinding) -> str:
        """What a webhook's dedupe compares: the drift without its revision, since every post is a notification
        and a new commit that leaves the drift as it was is no news (an edit, with a bot token, shows it)."""
        return render.drift_message(replace(finding, revision="")).digest

    def _drift_gone(self, alerts: _Alerts, record: AlertRecord, environment: str, *, can_post: bool) -> int:
        """Resolve a drift no longer found; the messages it posted (0 or 1). Without budget left to post,
        the edit happens now (edits have a budget of their own) and the reply waits for the next cycle."""
        if not can_post and (record.resolved or not self._channel.can_update):
            return 0  # its post waits for the next cycle's budget; nothing is lost
        facts = record.extra
        system, kind, name = facts.get("system", "?"), facts.get("kind", "?"), facts.get("name", "?")
        resolved = render.drift_resolved_message(environment, system, kind, name, facts.get("revision", ""))
        if can_post:
            reply = render.resolved_reply(f"{system}/{kind}/{name} in {environment} matches the specs again")
            self._resolve(alerts, record, resolved, reply)
            return 1
        if self._edit(record, resolved):
            marked = {**record.extra, REPLY_PENDING: "1"}
            alerts.put(replace(record, resolved=True, digest=resolved.digest, extra=marked))
        else:
            alerts.drop(record.key)
        return 0

    def _overflow(self, alerts: _Alerts, environment: str, more: int, limit: int) -> None:
        """The one summary message for drift beyond the per-cycle limit: posted once, edited, resolved."""
        key = f"overflow/{environment}"
        record = alerts.records.get(key)
        if more:
            message = render.overflow_message(environment, more, limit)
            if record is None:
                self._post(alerts, key, message, message.digest, {})
            elif record.digest != message.digest and self._edit(record, message):
                alerts.put(replace(record, digest=message.digest))
        elif record is not None:
            self._edit(record, render.overflow_resolved_message(environment))
            alerts.drop(key)

    # --- commits ---

    def _applied(self, alerts: _Alerts, commit: AppliedCommit) -> None:
        environment = commit.environment
        for key in (f"apply-failed/{environment}", f"invalid/{environment}"):
            record = alerts.records.get(key)
            if record is None:
                continue
            title = record.extra.get("title", key)
            message = render.commit_resolved_message(title, environment, commit.revision)
            reply = render.resolved_reply(f"{title}: {render.short_revision(commit.revision)} applied since")
            self._resolve(alerts, record, message, reply)
        if not self._settings.notify_applied:
            return
        counts = (
            ("created", commit.created),
            ("updated", commit.updated),
            ("replaced", commit.replaced),
            ("deleted", commit.deleted),
        )
        summary = render.applied_message(environment, commit.revision, counts, plan_only=commit.mode == "plan-only")
        key = f"applied/{environment}"
        record = alerts.records.get(key)
        if record is not None and record.digest == summary.digest:
            return  # this commit's summary was posted already (a restart calls applied again)
        posted = self._channel.post(summary, key=key)
        alerts.put(AlertRecord(key, posted.channel, posted.ts, summary.digest, resolved=True))


def notifier_from(
    settings: SlackSettings | None,
    environ: Mapping[str, str],
    alert_store_for: Callable[[str], AlertStore],
    *,
    on_message: MessageCallback | None = None,
    stop: threading.Event | None = None,
    clock: Clock | None = None,
) -> Notifier:
    """The notifier the environment asks for: a bot token (`RECONCILER_SLACK_TOKEN`, needs `slack.channel`)
    wins over an incoming webhook (`RECONCILER_SLACK_WEBHOOK_URL`, degraded); neither is `NoNotifier`.

    Raises `PermanentError` for a token without a channel (a setup mistake the controller must refuse
    to start with). `stop` cuts a rate-limit wait short on shutdown; `on_message(method, result)` counts
    each Slack call for `reconciler_slack_messages_total`.
    """
    token = environ.get(TOKEN_ENV, "").strip()
    webhook = environ.get(WEBHOOK_ENV, "").strip()
    pacing = clock or RealClock(stop)
    if token:
        if settings is None or not settings.channel:
            raise PermanentError(f"{TOKEN_ENV} is set but controller.yaml has no slack.channel to post to")
        options: dict[str, Any] = {"clock": pacing, "on_message": on_message}
        base_url = environ.get(API_URL_ENV, "").strip()
        if base_url:
            options["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
        return SlackNotifier(BotChannel(token, settings.channel, **options), alert_store_for, settings)
    if webhook:
        if not webhook.startswith(("https://", "http://")):
            raise PermanentError(f"{WEBHOOK_ENV} is not an http(s) URL (its value is not shown)")
        channel = WebhookChannel(webhook, clock=pacing, on_message=on_message)
        return SlackNotifier(channel, alert_store_for, settings)
    return NoNotifier()
