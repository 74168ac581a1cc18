"""Notifications in the core: which decisions are told, what the body says, the spec's rules, and
the controller handing them over only once its decision is saved."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from mlcanary.rollout.commands import Command
from mlcanary.rollout.notifications.base import NotifierGroup, event_of
from mlcanary.rollout.notifications.memory import RecordingNotifier
from mlcanary.rollout.notifications.spec import EVENTS, SecretKeyRef
from mlcanary.rollout.spec import SpecError, parse_spec
from mlcanary.rollout.status import Phase, RolloutStatus, Verdict, Weights
from mlcanary.rollout.store.memory import MemoryStatusStore
from tests.rollout.test_controller import SPEC, make, stream

from .test_controller import ConflictingStore


def status(phase: Phase, step: int = 0, canary: str | None = "v2") -> RolloutStatus:
    return RolloutStatus(phase=phase, step_index=step, stable_version="v1", canary_version=canary)


@pytest.mark.parametrize(
    ("before", "after", "aborted", "event"),
    [
        (RolloutStatus(), status(Phase.PROGRESSING), False, "Started"),
        (status(Phase.PROGRESSING), status(Phase.PROGRESSING), False, None),  # a hold
        (status(Phase.PROGRESSING), status(Phase.PROGRESSING, step=1), False, "Advanced"),
        (status(Phase.PROGRESSING), status(Phase.PAUSED), False, "Paused"),
        (status(Phase.PAUSED), status(Phase.PAUSED), False, None),
        (status(Phase.PAUSED), status(Phase.PROGRESSING), False, "Resumed"),
        (status(Phase.PROGRESSING, step=1), status(Phase.SUCCEEDED, step=1), False, "Promoted"),
        (status(Phase.PROGRESSING), status(Phase.ROLLED_BACK), False, "RolledBack"),
        (status(Phase.PROGRESSING), status(Phase.ROLLED_BACK), True, "Aborted"),
        (status(Phase.PAUSED), status(Phase.ROLLED_BACK), True, "Aborted"),
        (status(Phase.PROGRESSING), status(Phase.FAILED), False, "Failed"),
        # A new canary version starts over, even from the same phase and a later step.
        (status(Phase.PROGRESSING, 1, "v2"), status(Phase.PROGRESSING, 0, "v3"), False, "Started"),
        (status(Phase.ROLLED_BACK, 0, "v2"), status(Phase.PROGRESSING, 0, "v3"), False, "Started"),
        (status(Phase.PAUSED, 0, "v2"), status(Phase.PROGRESSING, 0, "v3"), False, "Started"),
        (status(Phase.SUCCEEDED), status(Phase.SUCCEEDED), False, None),
    ],
)
def test_which_decisions_are_told(before, after, aborted, event) -> None:
    assert event_of(before, after, aborted=aborted) == event


def test_every_phase_but_pending_can_be_told_and_named_in_a_spec() -> None:
    told = {
        event_of(status(Phase.PROGRESSING), status(phase), aborted=False)
        for phase in Phase
        if phase not in {Phase.PENDING, Phase.PROGRESSING}
    }
    assert told <= set(EVENTS)
    assert None not in told


def _worse_rollout_notifications() -> RecordingNotifier:
    notifier = RecordingNotifier()
    controller = make(stream(60, 0.85))
    controller.notifier = notifier
    controller.run()
    controller.close()
    assert notifier.closed
    return notifier


def test_a_rolled_back_canary_is_told_started_then_rolled_back_with_its_reasons() -> None:
    notifier = _worse_rollout_notifications()
    assert notifier.events == ["Started", "RolledBack"]
    started, rolled_back = notifier.notifications
    assert (started.phase, started.previous_phase) == (Phase.PROGRESSING, Phase.PENDING)
    assert started.weights == Weights(stable=90, canary=10)
    assert rolled_back.severity == "warning"
    assert (rolled_back.phase, rolled_back.previous_phase) == (
        Phase.ROLLED_BACK,
        Phase.PROGRESSING,
    )
    assert rolled_back.weights == Weights(stable=100, canary=0)
    accuracy = next(r for r in rolled_back.reasons if r.metric == "accuracy")
    assert accuracy.verdict is Verdict.FAIL
    assert accuracy.canary is not None
    assert accuracy.stable is not None
    assert "SPRT" in accuracy.rule
    assert "accuracy" in rolled_back.message
    assert "rolled back" in rolled_back.headline


def test_the_body_is_camel_case_json_with_the_documented_fields() -> None:
    rolled_back = _worse_rollout_notifications().notifications[-1]
    body = json.loads(rolled_back.model_dump_json())
    assert set(body) == {
        "apiVersion", "kind", "event", "severity", "at", "rollout", "model", "stableVersion",
        "canaryVersion", "phase", "previousPhase", "stepIndex", "steps", "weights", "action",
        "message", "reasons",
    }  # fmt: skip
    assert body["kind"] == "RolloutNotification"
    assert body["rollout"] == {"name": "digits-v2", "namespace": None}
    assert (body["stableVersion"], body["canaryVersion"], body["steps"]) == ("v1", "v2", [10, 100])
    assert body["action"] == "rollback"
    # The status's reasons as they are (a reason the engine extends carries its new fields).
    assert set(body["reasons"][0]) >= {
        "metric", "verdict", "canary", "stable", "threshold", "rule", "message"
    }  # fmt: skip


def test_a_promoted_canary_is_told_started_advanced_promoted() -> None:
    notifier = RecordingNotifier()
    controller = make(stream(60, 0.97))
    controller.notifier = notifier
    controller.run()
    assert notifier.events == ["Started", "Advanced", "Promoted"]
    assert [n.weights.canary for n in notifier.notifications] == [10, 100, 100]
    assert notifier.notifications[-1].severity == "info"


@pytest.mark.parametrize(
    ("command", "event"),
    [(Command.ABORT, "Aborted"), (Command.PAUSE, "Paused"), (Command.PROMOTE, "Promoted")],
)
def test_a_persons_command_is_told(command, event) -> None:
    store = MemoryStatusStore()
    notifier = RecordingNotifier()
    controller = make(stream(10, 0.97, rate=50.0), store=store)
    controller.notifier = notifier
    controller.tick()
    store.request("digits-v2", command)
    controller.tick()
    assert notifier.events == ["Started", event]


def test_a_conflicted_tick_tells_nothing_and_the_retry_tells_once() -> None:
    store = ConflictingStore()
    notifier = RecordingNotifier()
    controller = make(stream(10, 0.97), store=store)
    controller.notifier = notifier
    store.refuse_next = True
    controller.tick()
    assert notifier.events == []
    controller.tick()
    assert notifier.events == ["Started"]


class BrokenNotifier(RecordingNotifier):
    def notify(self, notification) -> None:
        raise RuntimeError("a notifier bug")


def test_a_broken_notifier_changes_no_decision() -> None:
    broken = make(stream(60, 0.85))
    broken.notifier = NotifierGroup([BrokenNotifier()])
    quiet = make(stream(60, 0.85))
    assert broken.run() == quiet.run()


def _spec_with(notifications: object) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(yaml.safe_dump(SPEC))
    document["spec"]["notifications"] = notifications
    return document


@pytest.mark.parametrize(
    ("notifications", "path", "words"),
    [
        ([{"type": "email", "url": "http://127.0.0.1:1"}], "[0].type", "unknown notification"),
        ([{"type": "webhook"}], "[0]", "set one of url and urlFrom"),
        (
            [{"type": "webhook", "url": "http://a", "urlFrom": {"env": "A"}}],
            "[0]",
            "set one of url and urlFrom",
        ),
        ([{"type": "webhook", "url": "ftp://a"}], "[0].url", "should match pattern"),
        (
            [{"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}],
            "[0].url",
            "credential",
        ),
        ([{"type": "teams", "url": "https://example.logic.azure.com/x"}], "[0].url", "credential"),
        ([{"type": "slack", "urlFrom": {}}], "[0].urlFrom", "set one of env and secretKeyRef"),
        ([{"type": "slack", "urlFrom": {"env": "1BAD"}}], "[0].urlFrom.env", "pattern"),
        (
            [{"type": "slack", "urlFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "url"}}}],
            "[0].urlFrom.secretKeyRef.name",
            "pattern",
        ),
        (
            [{"type": "webhook", "url": "http://a", "events": ["RolledBack", "Exploded"]}],
            "[0].events[1]",
            "unknown event 'Exploded'",
        ),
        (
            [{"type": "webhook", "url": "http://a", "events": ["RolledBack", "RolledBack"]}],
            "[0].events",
            "named twice",
        ),
        ([{"type": "webhook", "url": "http://a", "events": []}], "[0].events", "at least 1"),
        ([{"type": "webhook", "url": "http://a", "colour": "red"}], "[0].colour", "Extra inputs"),
        ([{"type": "webhook", "url": "http://a"}] * 11, "", "at most 10"),
    ],
)
def test_a_bad_target_is_refused_naming_its_field(notifications, path, words) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(_spec_with(notifications))
    [(field, problem)] = error.value.problems
    assert field == f"spec.notifications{path}"
    assert words in problem


def test_good_targets_are_read() -> None:
    rollout = parse_spec(
        _spec_with(
            [
                {"type": "webhook", "url": "http://127.0.0.1:9/hook", "events": ["RolledBack"]},
                {"type": "slack", "urlFrom": {"env": "SLACK_URL"}},
                {"type": "teams", "urlFrom": {"secretKeyRef": {"name": "alerts", "key": "teams"}}},
            ]
        )
    )
    webhook, slack, teams = rollout.spec.notifications
    assert webhook.wants("RolledBack")
    assert not webhook.wants("Started")
    assert slack.wants("Started")
    assert teams.url_from is not None
    assert teams.url_from.secret_key_ref == SecretKeyRef(name="alerts", key="teams")


def test_a_secrets_variable_is_readable_and_unique() -> None:
    name = SecretKeyRef(name="alerts", key="teams-url").env_name
    assert name.startswith("NOTIFY_ALERTS_TEAMS_URL_")
    assert SecretKeyRef(name="alerts", key="teams_url").env_name != name
