"""The rollout report: a markdown summary and a PNG plot drawn from controller timelines alone.

Why from the JSON-lines timeline and nothing else: a report must be redrawable after the servers
and Prometheus are gone, and must show what the controller saw when it decided, not what a later
query would say. Every figure printed is a field of some sample, or the time between two samples;
nothing is recomputed, so the report can never disagree with the decisions it explains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, PercentFormatter
from pydantic import ValidationError

from mlcanary.rollout.spec import format_duration
from mlcanary.rollout.status import Action
from mlcanary.rollout.timeline import ArmSnapshot, TimelineSample

__all__ = [
    "PLOT_NAME",
    "REPORT_NAME",
    "group_by_rollout",
    "plot_rollouts",
    "read_timeline",
    "write_report",
]

REPORT_NAME = "report.md"
PLOT_NAME = "rollouts.png"

Arm = Literal["stable", "canary"]
ARM_COLORS: dict[Arm, str] = {"stable": "#1f77b4", "canary": "#ff7f0e"}
SHADOW_COLOR = "#9467bd"
ACTION_COLORS: dict[Action, str] = {
    Action.ADVANCE: "#7f7f7f",
    Action.PROMOTE: "#2ca02c",
    Action.ROLLBACK: "#d62728",
}
_COLUMN_SIZE = (8.0, 10.0)  # inches at 100 dpi: two rollouts make a 1600x1000 px image
_DPI = 100
_MISSING = "n/a"
_MARKERS: dict[str, Any] = {"marker": "o", "markersize": 4}  # every tick shows, even between gaps


def read_timeline(path: Path) -> list[TimelineSample]:
    """Every sample of a controller's timeline file, in file order.

    Why a bad line is an error and not skipped: a report quietly missing the tick where the
    rollout was decided would explain a different rollout. A line cut short by a controller that
    died mid-write fails here too, and the message says which line to look at.
    """
    samples: list[TimelineSample] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                samples.append(TimelineSample.model_validate_json(line))
            except ValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(map(str, problem['loc'])) or 'line'}: {problem['msg']}"
                    for problem in error.errors(include_url=False)
                )
                message = f"{path}, line {number}: not a timeline sample: {problems}"
                raise ValueError(message) from error
    return samples


def group_by_rollout(samples: Iterable[TimelineSample]) -> dict[str, list[TimelineSample]]:
    """Samples split by rollout name, in order of first appearance.

    Why: one controller may drive several rollouts and append them all to one file, while the
    report draws one column per rollout.
    """
    groups: dict[str, list[TimelineSample]] = {}
    for sample in samples:
        groups.setdefault(sample.rollout, []).append(sample)
    return groups


def _checked(
    timelines: Mapping[str, Sequence[TimelineSample]],
) -> dict[str, list[TimelineSample]]:
    """Timelines in time order, refusing empty ones: a rollout without samples has no story."""
    if not timelines:
        raise ValueError("no rollouts to report")
    ordered: dict[str, list[TimelineSample]] = {}
    for name, samples in timelines.items():
        if not samples:
            raise ValueError(f"rollout {name!r} has no samples")
        ordered[name] = sorted(samples, key=lambda sample: sample.at)
    return ordered


def _since(first: TimelineSample, sample: TimelineSample) -> float:
    return (sample.at - first.at).total_seconds()


def _offsets(samples: Sequence[TimelineSample]) -> list[float]:
    return [_since(samples[0], sample) for sample in samples]


def _arm(sample: TimelineSample, arm: Arm) -> ArmSnapshot:
    return sample.stable if arm == "stable" else sample.canary


def _weight(sample: TimelineSample, arm: Arm) -> int:
    return sample.weights.stable if arm == "stable" else sample.weights.canary


def _versions(samples: Sequence[TimelineSample], arm: Arm) -> str:
    """The arm's version, or each in turn if the rollout was restarted for another version."""
    seen = dict.fromkeys(_arm(sample, arm).version for sample in samples)
    return ", ".join(seen)


def _gaps(values: Iterable[float | None]) -> list[float]:
    """NaN for a missing value: matplotlib leaves a gap there instead of drawing a zero."""
    return [math.nan if value is None else value for value in values]


def _decisions(samples: Sequence[TimelineSample]) -> list[TimelineSample]:
    return [sample for sample in samples if sample.action is not Action.HOLD]


def _logged(samples: Sequence[TimelineSample]) -> list[TimelineSample]:
    """The ticks a reader needs to follow the rollout: decisions, weight moves, and the last.

    Why a hold that moved the weights is kept: the engine's start of an analysis is a hold that
    sends the canary its first traffic, and a log without it would show traffic from nowhere.
    """
    return [
        sample
        for previous, sample in zip([None, *samples[:-1]], samples, strict=True)
        if sample.action is not Action.HOLD
        or (previous is not None and previous.weights != sample.weights)
        or sample is samples[-1]
    ]


def _say_when_empty(ax: Axes, series: Sequence[Sequence[float]]) -> None:
    if all(math.isnan(value) for values in series for value in values):
        ax.text(
            0.5,
            0.5,
            "no values in these samples",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#555555",
        )
        ax.set_yticks([])


def _draw_column(column: SubFigure, name: str, samples: Sequence[TimelineSample]) -> None:
    times = _offsets(samples)
    last = samples[-1]
    versions = {arm: _versions(samples, arm) for arm in ARM_COLORS}
    column.suptitle(
        f"{name}\nstable {versions['stable']} \u2192 canary {versions['canary']}"
        f"  \u00b7  final phase: {last.phase.value}",
        fontsize=13,
    )
    weights_ax = column.add_subplot(3, 1, 1)
    accuracy_ax = column.add_subplot(3, 1, 2, sharex=weights_ax)
    latency_ax = column.add_subplot(3, 1, 3, sharex=weights_ax)
    panels: tuple[Axes, ...] = (weights_ax, accuracy_ax, latency_ax)

    # A classifier's accuracy, or a regressor's MAE: whichever the samples carry.
    regression = any(_arm(sample, arm).mae is not None for sample in samples for arm in ARM_COLORS)

    def quality(snapshot: ArmSnapshot) -> float | None:
        return snapshot.mae if regression else snapshot.accuracy

    accuracies = {
        arm: _gaps(quality(_arm(sample, arm)) for sample in samples) for arm in ARM_COLORS
    }
    latencies = {arm: _gaps(_arm(sample, arm).p95_ms for sample in samples) for arm in ARM_COLORS}
    weight_values: set[int] = {0, 100}
    shadow = _shadow_series(samples, regression)
    if shadow is not None:
        accuracy_ax.plot(times, shadow, color=SHADOW_COLOR, linestyle=":", linewidth=1.8)
    for arm, color in ARM_COLORS.items():
        weights = [_weight(sample, arm) for sample in samples]
        weight_values.update(weights)
        weights_ax.step(times, weights, where="post", color=color, linewidth=2.2, **_MARKERS)
        accuracy_ax.plot(times, accuracies[arm], color=color, linewidth=1.8, **_MARKERS)
        latency_ax.plot(times, latencies[arm], color=color, linewidth=1.8, **_MARKERS)

    weights_ax.set_ylim(-5, 105)
    weights_ax.yaxis.set_major_locator(FixedLocator(sorted(weight_values)))
    weights_ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    weights_ax.set_ylabel("traffic weight")
    accuracy_ax.set_ylabel("MAE (current step)" if regression else "accuracy (current step)")
    latency_ax.set_ylabel("p95 latency (ms)")
    highest = max((p95 for series in latencies.values() for p95 in series if p95 > 0), default=0)
    if highest > 0:
        latency_ax.set_ylim(0, highest * 1.15)  # from zero, so a gap looks as big as it is
    latency_ax.set_xlabel("seconds since the rollout's first sample")
    _say_when_empty(accuracy_ax, [*accuracies.values(), *([shadow] if shadow else [])])
    _say_when_empty(latency_ax, list(latencies.values()))
    for ax in panels:
        ax.grid(visible=True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
    for ax in panels[:-1]:
        ax.tick_params(labelbottom=False)
    span = times[-1] - times[0]
    weights_ax.set_xlim(-0.03 * span - 1, times[-1] + 0.05 * span + 1)

    for sample, at in zip(samples, times, strict=True):
        if sample.action is Action.HOLD:
            continue
        color = ACTION_COLORS[sample.action]
        for ax in panels:
            ax.axvline(at, color=color, linestyle="--", linewidth=1.3, zorder=1)
        weights_ax.annotate(
            sample.action.value,
            (at, 1.0),
            xycoords=weights_ax.get_xaxis_transform(),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
            color=color,
        )

    handles = [
        Line2D([], [], color=color, linewidth=2.2, label=f"{arm} {versions[arm]}", **_MARKERS)
        for arm, color in ARM_COLORS.items()
    ]
    if shadow is not None:
        label = "canary vs stable, shadow: " + ("mean |difference|" if regression else "agreement")
        handles.append(Line2D([], [], color=SHADOW_COLOR, linestyle=":", label=label))
    handles += [
        Line2D([], [], color=ACTION_COLORS[action], linestyle="--", label=action.value)
        for action in dict.fromkeys(sample.action for sample in _decisions(samples))
    ]
    column.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=10)


def _shadow_series(samples: Sequence[TimelineSample], regression: bool) -> list[float] | None:
    """A shadow step's comparison on the quality panel, where it reads on the same scale: the
    agreement share beside accuracies, the mean absolute difference beside MAEs. None without
    a shadow step."""
    values = [
        None
        if sample.shadow is None
        else (sample.shadow.mean_difference if regression else sample.shadow.agreement)
        for sample in samples
    ]
    return _gaps(values) if any(value is not None for value in values) else None


def _shadow_markdown(samples: Sequence[TimelineSample]) -> list[str]:
    """The shadow step's last comparison: what the canary would have answered, unseen."""
    last = next((sample.shadow for sample in reversed(samples) if sample.shadow), None)
    if last is None:
        return []
    figure = (
        f"agreement {_number(last.agreement, '.2%')}"
        if last.mean_difference is None
        else f"mean absolute difference {_number(last.mean_difference, '.4g')}"
    )
    flips = ", ".join(f"{cell} ({_count(n)})" for cell, n in last.top_flips.items())
    return [
        "",
        f"Shadow step: {_count(last.compared)} rows answered by both versions, {figure}, "
        f"{_count(last.lost)} copies never compared"
        + (f"; most frequent flips (stable class\u2192canary class): {flips}" if flips else "")
        + ".",
    ]


def plot_rollouts(timelines: Mapping[str, Sequence[TimelineSample]], png: Path) -> None:
    """One column per rollout: traffic weights, accuracy and p95 latency over the same time axis.

    Why the figure is built on an explicit Agg canvas and not through pyplot: nothing is ever
    displayed, pyplot's global backend and figure registry are left alone for whoever imports
    this module, and the figure is freed with its last reference instead of needing a close.
    """
    ordered = _checked(timelines)
    width, height = _COLUMN_SIZE
    figure = Figure(figsize=(width * len(ordered), height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    columns = figure.subfigures(1, len(ordered), squeeze=False)[0]
    for column, (name, samples) in zip(columns, ordered.items(), strict=True):
        _draw_column(column, name, samples)
    figure.savefig(png, format="png", dpi=_DPI, facecolor="white")


def _number(value: float | None, spec: str) -> str:
    return _MISSING if value is None else format(value, spec)


def _count(value: float) -> str:
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"


def _seconds(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: a pipe or a newline would break the row."""
    return " ".join(text.split()).replace("|", "\\|")


def _quality(snapshot: ArmSnapshot) -> str:
    if snapshot.mae is not None:
        return f"MAE {_number(snapshot.mae, '.4g')}"
    return _number(snapshot.accuracy, ".4f")


def _rollout_markdown(name: str, samples: Sequence[TimelineSample]) -> list[str]:
    first, last = samples[0], samples[-1]
    lines = [
        f"## {name}",
        "",
        f"- Versions: stable `{_versions(samples, 'stable')}`, "
        f"canary `{_versions(samples, 'canary')}`",
        f"- Final phase: **{last.phase.value}**",
        f"- Duration: {format_duration(last.at - first.at)} "
        f"({first.at.isoformat()} to {last.at.isoformat()}), {len(samples)} ticks",
        f"- Final weights: stable {last.weights.stable}%, canary {last.weights.canary}%",
        "",
        f"Last sample (+{_seconds(_since(first, last))} s), each version's figures over the step "
        "then current:",
        "",
        "| version | role | labeled | labels pending | accuracy or MAE | requests | error rate "
        "| p95 (ms) |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for arm in ARM_COLORS:
        snapshot = _arm(last, arm)
        lines.append(
            f"| `{snapshot.version}` | {arm} | {_count(snapshot.labeled)} "
            f"| {_count(snapshot.pending_labels)} | {_quality(snapshot)} "
            f"| {_count(snapshot.requests)} "
            f"| {_number(snapshot.error_rate, '.4g')} | {_number(snapshot.p95_ms, '.1f')} |"
        )
    lines += _shadow_markdown(samples)
    lines += [
        "",
        "Decisions (every tick that was not a hold, every tick that moved traffic, and the last "
        "tick):",
        "",
        "| t (s) | action | step | weights (stable / canary) | message |",
        "|--:|---|--:|---|---|",
    ]
    for sample in _logged(samples):
        action = sample.action.value if sample is not last else f"{sample.action.value} (last)"
        cells = [
            f"+{_seconds(_since(first, sample))}",
            action,
            str(sample.step_index + 1),
            f"{sample.weights.stable}% / {sample.weights.canary}%",
            _cell(sample.message),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    lines.append("")
    return lines


def write_report(
    timelines: Mapping[str, Sequence[TimelineSample]], out_dir: Path
) -> tuple[Path, Path]:
    """Write `report.md` and the plot it embeds into `out_dir`; returns (markdown, png).

    Why both files go in one folder with a relative link: the folder can be moved, archived or
    attached to a CI run and the markdown still shows its plot.
    """
    ordered = _checked(timelines)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / PLOT_NAME
    plot_rollouts(ordered, png)
    lines = [
        "# Rollout report",
        "",
        f"{len(ordered)} rollout(s), drawn from the controller's timeline samples alone. Steps "
        "are numbered from 1, as in the messages; times are seconds since each rollout's first "
        "sample.",
        "",
    ]
    for name, samples in ordered.items():
        lines += _rollout_markdown(name, samples)
    lines += [
        "## Plot",
        "",
        "Traffic weights, accuracy and p95 latency per version; dashed lines mark decisions.",
        "",
        f"![Traffic weights, accuracy and p95 latency of each rollout]({png.name})",
        "",
    ]
    markdown = out_dir / REPORT_NAME
    markdown.write_text("\n".join(lines), encoding="utf-8")
    return markdown, png
