"""The layer map (docs/DESIGN_NOTES.md) is an import contract: front-ends → pipeline → backends → the face
model → media and face → leaves, and nothing imports upward. Every top-level module and package of
``sserd_core`` has its layer here, so a new one must be placed before the suite passes; ``nodes/`` and
``app.py`` (front-ends outside the package) are never imported by it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sserd_core"
LEAVES = {"errors", "emotion", "controls"}

#: top to bottom; a module may import its own layer and the layers below it, never one above
LAYERS = (
    ("front-ends", {"cli", "eval", "train"}),             # + nodes/ and app.py, outside the package
    ("pipeline", {"pipeline"}),
    ("backends", {"landmark", "neural"}),
    ("face model", {"expression", "content", "editor", "metrics", "models", "plots"}),
    ("media and face", {"media", "face", "blend", "geometry", "smoothing", "validate", "outputs"}),
    ("leaves", {"emotion", "controls", "errors", "stop", "__init__", "__version__"}),
)
LAYER_OF = {m: k for k, (_, mods) in enumerate(LAYERS) for m in mods}
#: backends are independent of each other: each is reached through the FaceEditor interface
BACKENDS = LAYERS[2][1]


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


def _modules():
    """``(top-level name, file, its package)`` for every file of ``sserd_core``."""
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield parts[1], path, parts[:-1]


def upward_imports(modules=None) -> list[str]:
    """Every import in ``modules`` (default: all of ``sserd_core``) that runs against the layer map, as lines."""
    bad = []
    for top, path, package in (_modules() if modules is None else modules):
        here = LAYER_OF[top]
        for name in project_imports(path, package) - {top}:
            there = LAYER_OF.get(name, LAYER_OF["__init__"])  # a name from the package root (``__version__``)
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            if there < here:
                bad.append(f"{where} ({LAYERS[here][0]}) imports {name} ({LAYERS[there][0]})")
            elif top in BACKENDS and name in BACKENDS:
                bad.append(f"{where} (backend {top}) imports the other backend {name}")
    return bad


def test_every_module_has_a_layer():
    tops = {top for top, _, _ in _modules()}
    assert tops <= set(LAYER_OF), f"place {sorted(tops - set(LAYER_OF))} in LAYERS (and in docs/DESIGN_NOTES.md)"


def test_nothing_imports_upward():
    assert upward_imports() == []


def test_the_package_never_imports_its_front_ends():
    for _, path, _ in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(n.split(".")[0] in ("nodes", "app") for n in names), path


def test_models_imports_nothing_above_it():
    for path in sorted((PKG / "models").glob("*.py")):
        outside = project_imports(path, ("sserd_core", "models")) - {"models"}
        assert outside <= LEAVES, f"{path.name} imports {sorted(outside - LEAVES)} from above models/"


def test_the_leaves_are_leaves():
    """The leaves import nothing of the project but the errors and (the emotion spec holds controls) the controls."""
    for leaf in LEAVES:
        allowed = {"errors", "controls"} if leaf == "emotion" else {"errors"}
        assert project_imports(PKG / f"{leaf}.py", ("sserd_core",)) <= allowed, leaf


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..neural import load_editor\n    from sserd_core import pipeline\n")
    assert project_imports(bad, ("sserd_core", "models")) == {"neural", "pipeline"}
    # and the contract reports it: a media module that reaches up to the pipeline, a backend that reaches across
    found = upward_imports([("media", bad, ("sserd_core", "media")), ("landmark", bad, ("sserd_core", "landmark"))])
    assert any("(media and face) imports pipeline (pipeline)" in line for line in found), found
    assert any("(backend landmark) imports the other backend neural" in line for line in found), found
