"""The locustfiles' own command-line options, registered with Locust's parser.

They live in Locust's parser (not in environment variables) so that the plain ``locust`` command,
its web UI form and its distributed mode all see them: the master sends parsed options to its
workers, which an environment variable set on the master would never reach.
"""

from __future__ import annotations

from typing import Any

from locust import events

from mlcanary.loadtest.option_checks import option_problems

__all__ = ["add_options", "check_options"]


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def add_options(parser: Any) -> None:
    parser.add_argument(
        "--data",
        default="",
        help="Labeled rows to send (CSV, JSONL or Parquet), shaped by the served version's "
        "schema; empty: the digits holdout.",
    )
    parser.add_argument(
        "--label-column", default="label", help="The column of --data holding the true label."
    )
    parser.add_argument(
        "--feedback-ratio",
        type=float,
        default=1.0,
        help="Share of predictions whose true label is posted as feedback (0..1).",
    )
    parser.add_argument(
        "--feedback-delay-s",
        type=float,
        default=0.0,
        help="Seconds between a prediction and its feedback, as labels arrive late in practice.",
    )
    parser.add_argument(
        "--max-pending-feedback",
        type=int,
        default=0,
        help="Delayed labels held per user; beyond it a label is dropped and reported as a "
        "DROPPED /feedback failure, never slowing the predictions. 0 = twice rate-per-user x "
        "delay (10,000 without a rate).",
    )
    parser.add_argument(
        "--rate-per-user",
        type=float,
        default=0.0,
        help="Predictions per second each user starts, on a fixed schedule (open-loop pacing): "
        "the arrival rate is users x this. 0 = no pacing.",
    )
    parser.add_argument(
        "--p95-budget-ms",
        type=float,
        default=0.0,
        help="Exit with code 1 when the overall p95 exceeds this (0 = no budget).",
    )
    parser.add_argument(
        "--max-failure-ratio",
        type=float,
        default=1.0,
        help="Exit with code 1 when the failure ratio exceeds this.",
    )
    parser.add_argument(
        "--windows-dir",
        default="",
        include_in_web_ui=False,
        help="Write per-window /predict stats here as JSON lines (used by the capacity search).",
    )
    parser.add_argument(
        "--window-s",
        type=float,
        default=2.0,
        include_in_web_ui=False,
        help="Window length for --windows-dir.",
    )
    parser.add_argument(
        "--shape-peak-users", type=int, default=50, help="Peak users of a step, ramp or spike."
    )
    parser.add_argument(
        "--shape-duration-s", type=float, default=60.0, help="Length of a step, ramp or spike run."
    )
    parser.add_argument("--shape-steps", type=int, default=5, help="Steps of the step shape.")


@events.init.add_listener  # type: ignore[untyped-decorator]
def check_options(environment: Any, **_kwargs: Any) -> None:
    if environment.parsed_options is None:
        return
    problems = option_problems(environment.parsed_options)
    if problems:
        raise SystemExit("invalid options: " + "; ".join(problems))
