"""The windows files the capacity search reads: one JSON-lines file per generator process.

Apart from `traffic.window_recorder`, which imports Locust (and with it gevent's patching), so
that the master's rule for a worker's window is tested without Locust.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Record", "store_worker_window", "window_file", "write_record"]

Record = dict[str, Any]


def window_file(directory: Path, process_id: str) -> Path:
    return directory / ("windows-" + re.sub(r"[^A-Za-z0-9_.-]", "_", process_id) + ".jsonl")


def write_record(path: Path, record: Record) -> None:
    with path.open("ab") as out:
        out.write(orjson.dumps(record) + b"\n")


def store_worker_window(current_dir: str, node_id: str, message: Record) -> bool:
    """Write a worker's window into the level it was measured for, if that is the level running
    now: a window that arrives after the next level started names the previous one's folder,
    and is dropped. Whether it was written."""
    if not current_dir or message.get("windows_dir") != current_dir:
        return False
    Path(current_dir).mkdir(parents=True, exist_ok=True)
    write_record(window_file(Path(current_dir), node_id), message["record"])
    return True
