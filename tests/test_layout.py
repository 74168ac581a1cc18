"""The layout's rules: one importable name per module, and imports that point one way.

The rollout core (`mlcanary.rollout`) imports no I/O library and no platform; the platforms
(`mlcanary.local`, `mlcanary.k8s`), the metrics providers (`mlcanary.metrics`) and the
notification senders (`mlcanary.notify`) import the core, never the reverse.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rollout", "serving", "models", "k8s", "gpu", "loadtest", "local", "metrics", "notify")
# What the core must never import: I/O libraries and the packages that adapt it.
CORE_FORBIDDEN = (
    "httpx",
    "kubernetes",
    "pynvml",
    "starlette",
    "bentoml",
    "torch",
    "locust",
    "redis",
    "slack_sdk",
    "microsoft_teams",
    "mlcanary.local",
    "mlcanary.k8s",
    "mlcanary.metrics",
    "mlcanary.notify",
    "mlcanary.serving",
    "mlcanary.loadtest",
)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, with its line, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_a_top_level_folder_cannot_be_imported_under_its_bare_name(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {package}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"import mlcanary.{package}, not {package}" in result.stderr


def test_the_core_imports_no_io_library_and_no_adapter() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / "rollout").rglob("*.py"))
        for line, module in _imports(path)
        if any(module == banned or module.startswith(f"{banned}.") for banned in CORE_FORBIDDEN)
    ]
    assert offenders == []


def test_nothing_imports_a_top_level_folder_by_its_bare_name() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for folder in (*PACKAGES, "mlcanary", "tests", "benchmarks", "examples")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, module in _imports(path)
        if module.split(".")[0] in PACKAGES
    ]
    assert offenders == []


def test_loading_the_core_pulls_in_no_io_library() -> None:
    probe = (
        "import sys, mlcanary.rollout, mlcanary.rollout.controller, mlcanary.rollout.platforms;"
        "print(sorted(m for m in ('httpx', 'kubernetes', 'torch', 'bentoml', 'starlette')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
