from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from mlcanary.local.report import (
    ACTION_COLORS,
    ARM_COLORS,
    PLOT_NAME,
    REPORT_NAME,
    SHADOW_COLOR,
    group_by_rollout,
    plot_rollouts,
    read_timeline,
    write_report,
)
from mlcanary.rollout.status import Action, Phase, Weights
from mlcanary.rollout.timeline import ArmSnapshot, ShadowSnapshot, TimelineSample

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(seconds=30)
STEP_1 = "step 1 of 2 (10% canary)"
STEP_2 = "step 2 of 2 (100% canary)"

# (phase, step_index, canary %, action, message,
#  stable (labeled, accuracy, requests, error rate, p95 ms), canary (the same))
Row = tuple[
    Phase,
    int,
    int,
    Action,
    str,
    tuple[float, float | None, float, float | None, float | None],
    tuple[float, float | None, float, float | None, float | None],
]

IDLE = (0.0, None, 0.0, None, None)

PROMOTION: list[Row] = [
    (Phase.PENDING, 0, 0, Action.HOLD, "rollout accepted: waiting for the first observation",
     IDLE, IDLE),
    (Phase.PROGRESSING, 0, 10, Action.HOLD, f"analysis of v2 against v1 started at {STEP_1}",
     IDLE, IDLE),
    (Phase.PROGRESSING, 0, 10, Action.HOLD,
     f"holding at {STEP_1} for 30s of 10m: waiting on accuracy, latency",
     (212.0, 0.9292, 1350.0, 0.0, 38.4), (18.0, None, 152.0, 0.0, 41.9)),
    (Phase.PROGRESSING, 0, 10, Action.HOLD,
     f"holding at {STEP_1} for 1m of 10m: waiting on accuracy",
     (431.0, 0.9327, 2702.0, 0.0, 38.9), (236.0, 0.9661, 301.0, 0.0, 43.2)),
    (Phase.PROGRESSING, 1, 100, Action.ADVANCE,
     f"advanced to {STEP_2}: every check passed at {STEP_1}",
     (655.0, 0.9313, 4049.0, 0.0, 39.1), (468.0, 0.9658, 449.0, 0.0022, 42.7)),
    (Phase.PROGRESSING, 1, 100, Action.HOLD,
     f"holding at {STEP_2} for 30s of 10m: waiting on accuracy",
     IDLE, (140.0, None, 1480.0, 0.0, 44.6)),
    (Phase.PROGRESSING, 1, 100, Action.HOLD,
     f"holding at {STEP_2} for 1m of 10m: waiting on accuracy",
     IDLE, (402.0, 0.9627, 2968.0, 0.0007, 45.3)),
    (Phase.SUCCEEDED, 1, 100, Action.PROMOTE, f"promoted: every check passed at {STEP_2}",
     IDLE, (688.0, 0.9636, 4411.0, 0.0005, 45.8)),
    (Phase.SUCCEEDED, 1, 100, Action.HOLD, "rollout finished (Succeeded): nothing to decide",
     IDLE, (688.0, 0.9636, 4411.0, 0.0005, 45.8)),
]  # fmt: skip

ROLLBACK_MESSAGE = (
    f"rolled back at {STEP_1}: accuracy: canary 87.12% against stable 93.40% on 287/652 labels: "
    "significantly lower (ratio 9.31 >= 6.39)"
)
ROLLBACK: list[Row] = [
    (Phase.PENDING, 0, 0, Action.HOLD, "rollout accepted: waiting for the first observation",
     IDLE, IDLE),
    (Phase.PROGRESSING, 0, 10, Action.HOLD, f"analysis of v3 against v1 started at {STEP_1}",
     IDLE, IDLE),
    (Phase.PROGRESSING, 0, 10, Action.HOLD,
     f"holding at {STEP_1} for 30s of 10m: waiting on accuracy, latency",
     (221.0, 0.9367, 1344.0, 0.0, 38.2), (25.0, None, 149.0, 0.0, 35.6)),
    (Phase.PROGRESSING, 0, 10, Action.HOLD,
     f"holding at {STEP_1} for 1m of 10m: waiting on accuracy",
     (440.0, 0.9341, 2690.0, 0.0, 38.7), (196.0, 0.8724, 298.0, 0.0, 35.1)),
    (Phase.ROLLED_BACK, 0, 0, Action.ROLLBACK, ROLLBACK_MESSAGE,
     (652.0, 0.9340, 4031.0, 0.0002, 38.8), (287.0, 0.8712, 446.0, 0.0, 34.9)),
]  # fmt: skip


def _arm(version: str, figures: tuple[float, float | None, float, float | None, float | None]):
    labeled, accuracy, requests, error_rate, p95_ms = figures
    return ArmSnapshot(
        version=version,
        labeled=labeled,
        accuracy=accuracy,
        requests=requests,
        error_rate=error_rate,
        p95_ms=p95_ms,
    )


def _timeline(rollout: str, canary: str, rows: list[Row]) -> list[TimelineSample]:
    return [
        TimelineSample(
            at=START + index * TICK,
            rollout=rollout,
            phase=phase,
            step_index=step,
            weights=Weights.canary_percent(percent),
            action=action,
            message=message,
            stable=_arm("v1", stable),
            canary=_arm(canary, canary_figures),
        )
        for index, (phase, step, percent, action, message, stable, canary_figures) in enumerate(
            rows
        )
    ]


@pytest.fixture
def timelines() -> dict[str, list[TimelineSample]]:
    return {
        "digits-v2": _timeline("digits-v2", "v2", PROMOTION),
        "digits-v3": _timeline("digits-v3", "v3", ROLLBACK),
    }


def _write_jsonl(path: Path, samples: list[TimelineSample]) -> None:
    path.write_text("".join(sample.model_dump_json() + "\n" for sample in samples))


def _table_row(markdown: str, first_cell: str) -> str:
    """The one table row whose first cell is `first_cell`."""
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, rows
    return rows[0]


def _pixels(image: np.ndarray, color: str) -> int:
    """How many pixels of `image` (RGB floats) have exactly the hex `color`, give or take 2%."""
    wanted = np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(image - wanted).max(axis=-1) < 0.02).sum())


def _section(markdown: str, rollout: str) -> str:
    match = re.search(rf"^## {rollout}\n(.*?)(?=^## )", markdown, flags=re.MULTILINE | re.DOTALL)
    assert match is not None
    return match.group(1)


def test_timeline_round_trips_through_json_lines(tmp_path: Path, timelines) -> None:
    path = tmp_path / "timeline.jsonl"
    samples = timelines["digits-v2"] + timelines["digits-v3"]
    _write_jsonl(path, samples)

    read = read_timeline(path)

    assert read == samples
    assert read[2].canary.accuracy is None
    assert read[4].weights == Weights(stable=0, canary=100)
    assert read[4].at == START + 4 * TICK
    assert '"p95Ms":42.7' in path.read_text().splitlines()[4]  # the controller's camelCase
    assert group_by_rollout(read) == timelines


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("{not json", "Invalid JSON"),
        ("", "EOF while parsing"),
        ('{"at": "2025-06-01T12:00:00Z"}', "rollout: Field required"),
    ],
)
def test_bad_line_is_named_by_number(tmp_path: Path, timelines, bad_line: str, problem) -> None:
    path = tmp_path / "timeline.jsonl"
    good = [sample.model_dump_json() for sample in timelines["digits-v3"]]
    path.write_text("\n".join([good[0], good[1], bad_line, good[2]]) + "\n")

    with pytest.raises(ValueError, match=r"line 3: not a timeline sample") as raised:
        read_timeline(path)

    assert str(path) in str(raised.value)
    assert problem in str(raised.value)


def test_weights_that_do_not_add_up_are_refused_with_their_line(tmp_path: Path, timelines) -> None:
    path = tmp_path / "timeline.jsonl"
    good = timelines["digits-v3"][0].model_dump_json()
    path.write_text(good + "\n" + good.replace('"canary":0}', '"canary":20}', 1) + "\n")

    with pytest.raises(ValueError, match=r"line 2: .*weights: .*must add up to 100, not 120"):
        read_timeline(path)


def test_report_writes_a_readable_plot(tmp_path: Path, timelines) -> None:
    markdown, png = write_report(timelines, tmp_path / "report")

    assert (markdown, png) == (tmp_path / "report" / REPORT_NAME, tmp_path / "report" / PLOT_NAME)
    image = matplotlib.image.imread(png)
    height, width, channels = image.shape
    assert (width, height) == (1600, 1000)
    assert channels in (3, 4)
    promotion, rollback = image[:, :800, :3], image[:, 800:, :3]
    for color in ARM_COLORS.values():  # stable and canary drawn in both columns, same colors
        assert _pixels(promotion, color) > 500, color
        assert _pixels(rollback, color) > 500, color
    promote, roll_back = ACTION_COLORS[Action.PROMOTE], ACTION_COLORS[Action.ROLLBACK]
    assert _pixels(promotion, promote) > 20  # the dashed line is thin and antialiased
    assert _pixels(rollback, promote) == 0
    assert _pixels(rollback, roll_back) > 20
    assert _pixels(promotion, roll_back) == 0


def test_report_does_not_depend_on_sample_order(tmp_path: Path, timelines) -> None:
    in_order = write_report(timelines, tmp_path / "in-order")[0].read_text()
    shuffled = {name: samples[::-1] for name, samples in timelines.items()}

    assert write_report(shuffled, tmp_path / "shuffled")[0].read_text() == in_order


def test_report_markdown_holds_decisions_phases_and_figures(tmp_path: Path, timelines) -> None:
    markdown = write_report(timelines, tmp_path)[0].read_text()
    promotion, rollback = _section(markdown, "digits-v2"), _section(markdown, "digits-v3")

    assert "Final phase: **Succeeded**" in promotion
    assert "Final phase: **RolledBack**" in rollback
    assert "stable `v1`, canary `v2`" in promotion
    assert "Final weights: stable 0%, canary 100%" in promotion
    assert "Final weights: stable 100%, canary 0%" in rollback
    assert "Duration: 4m (2025-06-01T12:00:00+00:00 to 2025-06-01T12:04:00+00:00), 9 ticks" in (
        promotion
    )
    assert "Duration: 2m (" in rollback
    assert ", 5 ticks" in rollback

    # Decision log: every non-hold action, the hold that first sent the canary traffic, the last.
    assert _table_row(promotion, "+30") == (
        f"| +30 | hold | 1 | 90% / 10% | analysis of v2 against v1 started at {STEP_1} |"
    )
    assert _table_row(promotion, "+120") == (
        f"| +120 | advance | 2 | 0% / 100% | advanced to {STEP_2}: every check passed at {STEP_1} |"
    )
    assert _table_row(promotion, "+210") == (
        f"| +210 | promote | 2 | 0% / 100% | promoted: every check passed at {STEP_2} |"
    )
    assert _table_row(promotion, "+240") == (
        "| +240 | hold (last) | 2 | 0% / 100% | rollout finished (Succeeded): nothing to decide |"
    )
    assert _table_row(rollback, "+120") == (
        f"| +120 | rollback (last) | 1 | 100% / 0% | {ROLLBACK_MESSAGE} |"
    )
    assert "waiting on accuracy" not in markdown  # plain holds stay out of the log
    assert "rollout accepted" not in markdown

    # Each version's figures at its rollout's last sample.
    assert (
        _table_row(promotion, "`v2`")
        == "| `v2` | canary | 688 | 0 | 0.9636 | 4,411 | 0.0005 | 45.8 |"
    )
    assert _table_row(promotion, "`v1`") == "| `v1` | stable | 0 | 0 | n/a | 0 | n/a | n/a |"
    assert _table_row(rollback, "`v3`") == "| `v3` | canary | 287 | 0 | 0.8712 | 446 | 0 | 34.9 |"
    assert (
        _table_row(rollback, "`v1`")
        == "| `v1` | stable | 652 | 0 | 0.9340 | 4,031 | 0.0002 | 38.8 |"
    )
    assert markdown.index("## digits-v2") < markdown.index("## digits-v3")
    assert f"]({PLOT_NAME})" in markdown.split("## Plot", 1)[1]


def test_message_with_a_pipe_keeps_its_table_row(tmp_path: Path, timelines) -> None:
    last = timelines["digits-v3"][-1]
    odd = last.model_copy(update={"message": "rolled back | query\nfailed"})
    markdown = write_report({"odd": [*timelines["digits-v3"][:-1], odd]}, tmp_path)[0]

    row = next(line for line in markdown.read_text().splitlines() if line.startswith("| +120 |"))
    assert row.endswith(r"| rolled back \| query failed |")


def test_nothing_to_report_is_an_error(tmp_path: Path, timelines) -> None:
    with pytest.raises(ValueError, match="no rollouts"):
        plot_rollouts({}, tmp_path / "empty.png")
    with pytest.raises(ValueError, match="'digits-v4' has no samples"):
        write_report({**timelines, "digits-v4": []}, tmp_path)
    assert not (tmp_path / "empty.png").exists()
    assert not (tmp_path / REPORT_NAME).exists()


def test_a_shadow_steps_comparison_is_in_the_report_and_the_plot(tmp_path: Path) -> None:
    """A canary rolled back at its shadow step: its agreement drawn beside the accuracies, the
    last comparison and its flips in the markdown; a rollout without one draws none."""
    samples = _timeline("digits-v9", "v9", ROLLBACK)
    shadowed = [
        sample.model_copy(
            update={
                "shadow": ShadowSnapshot(
                    compared=240.0 * i, agreement=0.1, lost=3.0, top_flips={"3\u21924": 30.0 * i}
                )
            }
        )
        if i
        else sample
        for i, sample in enumerate(samples)
    ]
    markdown, png = write_report({"digits-v9": shadowed}, tmp_path / "shadowed")
    text = _section(markdown.read_text(), "digits-v9")
    assert (
        "Shadow step: 960 rows answered by both versions, agreement 10.00%, 3 copies never "
        "compared; most frequent flips (stable class\u2192canary class): 3\u21924 (120)."
    ) in text
    assert _pixels(matplotlib.image.imread(png)[:, :, :3], SHADOW_COLOR) > 20

    plain_markdown, plain = write_report({"digits-v3": samples}, tmp_path / "plain")
    assert _pixels(matplotlib.image.imread(plain)[:, :, :3], SHADOW_COLOR) == 0
    assert "Shadow step" not in plain_markdown.read_text()
