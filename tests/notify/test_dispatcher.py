"""Delivery to real HTTP servers on loopback: the webhook's body, Slack's and Teams' messages,
retries, refusals, slow and absent servers, a full queue, and a controller whose tick never
waits for any of them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest

from mlcanary.notify.counts import DeliveryCounts
from mlcanary.notify.dispatcher import DeliveryRules, Dispatcher, dispatcher_for
from mlcanary.rollout.notifications.base import Notification, RolloutRef
from mlcanary.rollout.spec import ModelRollout, parse_spec
from mlcanary.rollout.status import Action, Phase, Reason, Verdict, Weights
from mlcanary.serving.launcher import free_port
from tests.notify.receiver import Receiver, receiving
from tests.rollout.test_controller import SPEC, make, stream

# Fast enough for a test, the same rules otherwise.
RULES = DeliveryRules(timeout_s=2.0, attempts=3, backoff_s=0.01, queue_size=100, flush_s=30.0)
NAME = "digits-v2"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def rollout_with(*targets: dict[str, object]) -> ModelRollout:
    document = copy.deepcopy(SPEC)
    document["spec"]["notifications"] = list(targets)  # type: ignore[index]
    return parse_spec(document)


def notification(event: str = "RolledBack", message: str = "accuracy regressed") -> Notification:
    return Notification(
        event=event,
        severity="warning",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        rollout=RolloutRef(name=NAME),
        model="digits",
        stable_version="v1",
        canary_version="v2",
        phase=Phase.ROLLED_BACK,
        previous_phase=Phase.PROGRESSING,
        step_index=0,
        steps=(10, 100),
        weights=Weights(stable=100, canary=0),
        action=Action.ROLLBACK,
        message=message,
        reasons=(
            Reason(
                metric="accuracy",
                verdict=Verdict.FAIL,
                canary=0.85,
                stable=0.97,
                threshold=0.03,
                rule="SPRT: roll back at a log-likelihood ratio >= 4.61",
                message="canary 0.850 vs stable 0.970",
            ),
        ),
    )


def dispatcher(
    counts: DeliveryCounts,
    *targets: dict[str, object],
    rules: DeliveryRules = RULES,
    env: dict[str, str] | None = None,
) -> Dispatcher:
    return dispatcher_for(rollout_with(*targets), counts, rules, env or {})


def outcomes(counts: DeliveryCounts, index: int = 0) -> dict[str, int]:
    return counts.outcomes(NAME, f"notifications[{index}]")


def test_the_webhook_gets_the_notification_as_json(receiver: Receiver) -> None:
    counts = DeliveryCounts()
    sent = notification()
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url("/mlcanary")})
    notifier.notify(sent)
    notifier.close()
    [got] = receiver.wait_for(1)
    assert got.path == "/mlcanary"
    assert got.headers["content-type"] == "application/json"
    assert got.json() == sent.model_dump(mode="json")
    assert Notification.model_validate(got.json()) == sent
    assert outcomes(counts) == {"delivered": 1, "failed": 0, "dropped": 0, "retries": 0}


def test_failed_attempts_are_retried_and_counted(receiver: Receiver) -> None:
    receiver.answers.extend([500, 503])
    counts = DeliveryCounts()
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url()})
    notifier.notify(notification())
    notifier.close()
    assert len(receiver.wait_for(3)) == 3
    assert outcomes(counts) == {"delivered": 1, "failed": 0, "dropped": 0, "retries": 2}


def test_a_failing_server_gets_a_bounded_number_of_attempts(receiver: Receiver) -> None:
    receiver.answers.extend([500] * 10)
    counts = DeliveryCounts()
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url()})
    notifier.notify(notification())
    notifier.close()
    assert len(receiver.received) == RULES.attempts
    assert outcomes(counts) == {"delivered": 0, "failed": 1, "dropped": 0, "retries": 2}


@pytest.mark.parametrize(("status", "attempts"), [(404, 1), (400, 1), (429, 3)])
def test_a_refusal_is_not_retried_but_too_many_requests_is(
    receiver: Receiver, status: int, attempts: int
) -> None:
    receiver.answers.extend([status] * 10)
    counts = DeliveryCounts()
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url()})
    notifier.notify(notification())
    notifier.close()
    assert len(receiver.received) == attempts
    assert outcomes(counts)["failed"] == 1
    assert outcomes(counts)["retries"] == attempts - 1


def test_a_server_too_slow_to_answer_times_out_and_is_retried(receiver: Receiver) -> None:
    receiver.hold()
    counts = DeliveryCounts()
    rules = DeliveryRules(timeout_s=0.5, attempts=2, backoff_s=0.01, flush_s=30.0)
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url()}, rules=rules)
    notifier.notify(notification())
    notifier.close()
    assert len(receiver.wait_for(2)) == 2
    assert outcomes(counts) == {"delivered": 0, "failed": 1, "dropped": 0, "retries": 1}
    receiver.release()


def test_no_server_at_all_fails_after_the_attempts() -> None:
    counts = DeliveryCounts()
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    notifier = dispatcher(counts, {"type": "webhook", "url": url})
    notifier.notify(notification())
    notifier.close()
    assert outcomes(counts) == {"delivered": 0, "failed": 1, "dropped": 0, "retries": 2}


def test_a_full_queue_drops_and_counts_the_new_notification(receiver: Receiver) -> None:
    receiver.hold()
    counts = DeliveryCounts()
    rules = DeliveryRules(timeout_s=30.0, attempts=1, queue_size=2, flush_s=30.0)
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url()}, rules=rules)
    notifier.notify(notification(message="first"))
    receiver.wait_for(1)  # the sender thread now waits on the first; the queue is empty
    for message in ("second", "third", "fourth"):
        notifier.notify(notification(message=message))
    assert outcomes(counts)["dropped"] == 1  # counted at once, while the others still wait
    receiver.release()
    notifier.close()
    assert [r.json()["message"] for r in receiver.wait_for(3)] == ["first", "second", "third"]
    assert outcomes(counts) == {"delivered": 3, "failed": 0, "dropped": 1, "retries": 0}


def test_a_hung_target_holds_up_no_other_target() -> None:
    with receiving() as hung, receiving() as fine:
        hung.hold()
        counts = DeliveryCounts()
        notifier = dispatcher(
            counts,
            {"type": "webhook", "url": hung.url()},
            {"type": "webhook", "url": fine.url()},
            rules=DeliveryRules(timeout_s=30.0, attempts=1, flush_s=30.0),
        )
        notifier.notify(notification(message="first"))
        notifier.notify(notification(message="second"))
        hung.wait_for(1)
        assert [r.json()["message"] for r in fine.wait_for(2)] == ["first", "second"]
        assert hung.answered == 0  # all that while, the hung one still held its first
        hung.release()
        notifier.close()
        assert outcomes(counts, 0)["delivered"] == 2
        assert outcomes(counts, 1)["delivered"] == 2


def test_a_controller_tick_returns_while_the_webhook_is_still_held(receiver: Receiver) -> None:
    receiver.hold()
    counts = DeliveryCounts()
    controller = make(stream(10, 0.97))
    controller.rollout = rollout_with({"type": "webhook", "url": receiver.url()})
    controller.notifier = dispatcher_for(controller.rollout, counts, RULES, {})
    report = controller.tick()
    assert report.status.phase is Phase.PROGRESSING
    [got] = receiver.wait_for(1)
    assert receiver.answered == 0  # the tick returned with its request still unanswered
    assert got.json()["event"] == "Started"
    receiver.release()
    controller.close()
    assert outcomes(counts)["delivered"] == 1


def test_only_the_events_a_target_asks_for_are_sent(receiver: Receiver) -> None:
    counts = DeliveryCounts()
    notifier = dispatcher(
        counts, {"type": "webhook", "url": receiver.url(), "events": ["RolledBack", "Aborted"]}
    )
    for event in ("Started", "Advanced", "RolledBack", "Promoted"):
        notifier.notify(notification(event=event))
    notifier.close()
    assert [r.json()["event"] for r in receiver.received] == ["RolledBack"]


def test_slack_gets_a_block_kit_message_through_slacks_sdk(receiver: Receiver) -> None:
    counts = DeliveryCounts()
    env = {"SLACK_URL": receiver.url("/services/T000/B000/XXXX")}
    notifier = dispatcher(counts, {"type": "slack", "urlFrom": {"env": "SLACK_URL"}}, env=env)
    notifier.notify(notification())
    notifier.close()
    [got] = receiver.wait_for(1)
    assert got.path == "/services/T000/B000/XXXX"
    body = got.json()
    assert body["text"].startswith("digits-v2 rolled back: digits v1 -> v2")
    header, message, reasons = body["blocks"]
    assert (header["type"], header["text"]["text"]) == ("header", body["text"])
    assert message["text"]["type"] == "mrkdwn"
    assert "accuracy regressed" in message["text"]["text"]
    assert reasons["text"]["text"] == "• fail accuracy: canary 0.850 vs stable 0.970"
    assert outcomes(counts)["delivered"] == 1


def test_slack_markup_in_a_message_is_escaped(receiver: Receiver) -> None:
    env = {"SLACK_URL": receiver.url()}
    notifier = dispatcher(
        DeliveryCounts(), {"type": "slack", "urlFrom": {"env": "SLACK_URL"}}, env=env
    )
    notifier.notify(notification(message="p95 <b> & >= 2x stable <!channel>"))
    notifier.close()
    text = receiver.wait_for(1)[0].json()["blocks"][1]["text"]["text"]
    assert "p95 &lt;b&gt; &amp; &gt;= 2x stable &lt;!channel&gt;" in text


def test_teams_gets_an_adaptive_card(receiver: Receiver) -> None:
    counts = DeliveryCounts()
    env = {"TEAMS_URL": receiver.url("/workflows/abc/triggers/manual/paths/invoke?sig=x")}
    notifier = dispatcher(counts, {"type": "teams", "urlFrom": {"env": "TEAMS_URL"}}, env=env)
    notifier.notify(notification())
    notifier.close()
    [got] = receiver.wait_for(1)
    assert got.path == "/workflows/abc/triggers/manual/paths/invoke?sig=x"
    body = got.json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    title, message, facts = card["body"]
    assert title["text"].startswith("digits-v2 rolled back")
    assert title["color"] == "Attention"
    assert message["text"] == "accuracy regressed"
    assert facts["facts"] == [{"title": "accuracy", "value": "fail: canary 0.850 vs stable 0.970"}]
    assert outcomes(counts)["delivered"] == 1


def test_a_url_that_cannot_be_read_drops_each_notification_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts = DeliveryCounts()
    secret = {"secretKeyRef": {"name": "alerts", "key": "slack"}}
    notifier = dispatcher(
        counts,
        {"type": "slack", "urlFrom": {"env": "NOT_SET_ANYWHERE"}},
        {"type": "slack", "urlFrom": secret},
    )
    notifier.notify(notification())
    notifier.close()
    assert outcomes(counts, 0)["dropped"] == outcomes(counts, 1)["dropped"] == 1
    assert "urlFrom.env names NOT_SET_ANYWHERE" in caplog.text
    assert "urlFrom.secretKeyRef alerts/slack reaches the controller as NOTIFY_ALERTS_SLACK_" in (
        caplog.text
    )


def test_the_counters_are_prometheus_text_without_the_url(receiver: Receiver) -> None:
    counts = DeliveryCounts()
    receiver.answers.append(500)
    notifier = dispatcher(counts, {"type": "webhook", "url": receiver.url("/secret-path")})
    notifier.notify(notification())
    notifier.close()
    text = generate_latest(counts.registry).decode()
    assert (
        'mlcanary_notifications_total{outcome="delivered",rollout="digits-v2",'
        'target="notifications[0]",type="webhook"} 1.0'
    ) in text
    assert (
        'mlcanary_notification_retries_total{rollout="digits-v2",'
        'target="notifications[0]",type="webhook"} 1.0'
    ) in text
    assert "secret-path" not in text


@pytest.mark.parametrize(
    "rules",
    [
        {"timeout_s": 0},
        {"attempts": 0},
        {"queue_size": 0},
        {"backoff_s": -1},
    ],
)
def test_rules_out_of_range_are_refused(rules: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        DeliveryRules(**rules)  # type: ignore[arg-type]
