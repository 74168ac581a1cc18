"""The test doubles images leave out: found by what their docstrings say, imported by nothing
else in the package, so that leaving them out removes nothing that runs."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from mlcanary.serving.image.doubles import find_test_doubles

PACKAGE = Path(__file__).resolve().parents[3] / "mlcanary"


def _module(relative: str) -> str:
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["mlcanary", *parts])


def _imports(path: Path, module: str) -> set[str]:
    """Every module an import statement of ``path`` names, relative imports resolved, with
    ``from X import Y`` counted as both X and X.Y (Y may be a submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
    return named


def test_the_doubles_are_found_and_the_implementations_are_not() -> None:
    doubles = find_test_doubles(PACKAGE)
    assert {"gpu/nvml_fake.py", "rollout/routers/memory.py", "serving/ledger_memory.py"} <= set(
        doubles
    )
    assert not {"gpu/nvml.py", "serving/ledger.py", "rollout/routers/__init__.py"} & set(doubles)


def test_no_module_of_the_package_imports_a_double() -> None:
    doubles = {_module(relative) for relative in find_test_doubles(PACKAGE)}
    importers = {}
    checked = 0
    for root, _, files in os.walk(PACKAGE, followlinks=True):  # its folders are links
        for path in (Path(root, name) for name in files if name.endswith(".py")):
            module = _module(path.relative_to(PACKAGE).as_posix())
            if module in doubles:
                continue
            checked += 1
            if found := _imports(path, module) & doubles:
                importers[module] = sorted(found)
    assert checked > 100
    assert importers == {}
