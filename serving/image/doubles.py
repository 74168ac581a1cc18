"""The package's test doubles, which no image carries.

Each test double lives beside the implementation it stands in for (the project's layout rule)
and calls itself one in the first paragraph of its docstring ("Test double of the pynvml
module", "A router that only remembers: the test double for the controller"); that sentence is
how they are found, so a new double is left out of the images without a list to keep. No other
module of the package imports one (``tests/serving/image/test_doubles.py``), so leaving them out
removes nothing that runs.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

__all__ = ["find_test_doubles"]


# "Test double of ...", "...: the test double for ...", "...: a test double, ...", "The notifier
# test double: ...": the module itself is the double, not a module that mentions doubles.
_CALLS_ITSELF_A_DOUBLE = re.compile(r"(^|:\s+|^the \w+ )(a |the )?test double\b", re.IGNORECASE)


def _is_double(path: Path) -> bool:
    if path.name == "__init__.py":
        return False
    docstring = ast.get_docstring(ast.parse(path.read_text(), filename=str(path)))
    if docstring is None:
        return False
    first = " ".join(docstring.split("\n\n")[0].split())
    return _CALLS_ITSELF_A_DOUBLE.search(first) is not None


def find_test_doubles(package: Path) -> list[str]:
    """The test doubles' files, relative to the package directory (its folders may be
    symbolic links to the project's top-level folders, and are followed)."""
    found = []
    for root, dirs, files in os.walk(package, followlinks=True):
        dirs[:] = sorted(name for name in dirs if name != "__pycache__")
        for name in sorted(files):
            path = Path(root, name)
            if name.endswith(".py") and _is_double(path):
                found.append(path.relative_to(package).as_posix())
    return found
