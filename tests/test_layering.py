"""The layout shows the architecture (issue 14): ``sserd_core/models/`` (the networks, conversion, the Hub,
prototype files) imports nothing above it — only the leaf modules ``errors`` and ``emotion``."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "sserd_core"
LEAVES = {"errors", "emotion"}


def project_imports(path: Path, package: tuple[str, ...]) -> set[str]:
    """The ``sserd_core`` submodules a file imports (top level or inside functions), as top-level names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(package[: len(package) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            if parts and parts[0] == "sserd_core":
                if len(parts) > 1:
                    found.add(parts[1])
                else:  # from sserd_core import x, y
                    found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "sserd_core" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_models_imports_nothing_above_it():
    for path in sorted((PKG / "models").glob("*.py")):
        outside = project_imports(path, ("sserd_core", "models")) - {"models"}
        assert outside <= LEAVES, f"{path.name} imports {sorted(outside - LEAVES)} from above models/"


def test_the_leaves_are_leaves():
    for leaf in LEAVES:
        assert project_imports(PKG / f"{leaf}.py", ("sserd_core",)) <= {"errors"}, leaf


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..neural import load_editor\n    from sserd_core import pipeline\n")
    assert project_imports(bad, ("sserd_core", "models")) == {"neural", "pipeline"}
