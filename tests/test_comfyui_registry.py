"""The node pack as the Comfy registry sees it: `comfy node validate` and `comfy node pack` (comfy-cli
from PyPI, in its own venv made by scripts/setup_comfycli_venv.sh, ~1 min the first time, cached
after) on a copy of this working tree, and what the archive holds.

The copy holds the files git would commit (tracked + untracked-but-not-ignored, as they are now) in
a fresh git repository, because `comfy node pack` archives git-tracked files.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

import comfyui_helpers as H

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # comfy-cli installed into its own venv

#: what the node pack needs, besides every file under these folders
PACK_FILES = {"__init__.py", "pyproject.toml", "requirements.txt", "README.md", "docs/images/icon.png",
              "assets/README.md", "assets/sample.mp4", "assets/sample_hopper.mp4", "assets/astronaut_face.png"}
PACK_DIRS = ("nodes/", "web/", "workflows/", "sserd_core/")


def _comfy() -> Path:
    if not shutil.which("git"):
        pytest.skip("git is needed: `comfy node pack` archives git-tracked files")
    out = subprocess.run(["bash", str(H.REPO / "scripts" / "setup_comfycli_venv.sh")], capture_output=True, text=True)
    if out.returncode:
        pytest.fail(f"could not install comfy-cli:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def _working_tree_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=H.REPO,
                         capture_output=True, check=True)
    return sorted({p for p in out.stdout.decode().split("\0") if p and (H.REPO / p).is_file()})


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> tuple[Path, Path]:
    """(copy of the working tree in a fresh git repository, the comfy executable)."""
    comfy = _comfy()
    stage = tmp_path_factory.mktemp("pack") / "comfyui-sserd"
    for rel in _working_tree_files():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(H.REPO / rel, stage / rel)
    subprocess.run(["git", "init", "-q"], cwd=stage, check=True)
    subprocess.run(["git", "add", "-A"], cwd=stage, check=True)
    return stage, comfy


def _run(comfy: Path, stage: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run([str(comfy), "--skip-prompt", "--no-json", "node", *args], cwd=stage, env=env,
                          capture_output=True, text=True, timeout=300)


def test_tool_comfy_is_complete():
    comfy = tomllib.loads((H.REPO / "pyproject.toml").read_text())["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["Icon"].startswith("https://") and comfy["Icon"].endswith("/docs/images/icon.png")
    icon = H.REPO / "docs" / "images" / "icon.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert comfy["includes"] == ["docs/images/icon.png"]
    assert comfy["requires-comfyui"].startswith(">=")


def test_comfy_node_validate_passes(staged):
    stage, comfy = staged
    out = _run(comfy, stage, "validate")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "All validation checks passed" in text, text[-3000:]
    assert "Security warnings" not in text and "Warning" not in text and "Error" not in text, text[-3000:]


def test_comfy_node_pack_holds_exactly_the_node_pack(staged):
    stage, comfy = staged
    out = _run(comfy, stage, "pack")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    with zipfile.ZipFile(stage / "node.zip") as z:
        names = set(z.namelist())
        sizes = {i.filename: i.file_size for i in z.infolist()}
    tree = set(_working_tree_files())
    wanted = {p for p in tree if p in PACK_FILES or p.startswith(PACK_DIRS)}
    assert names == wanted, {"extra": sorted(names - wanted), "missing": sorted(wanted - names)}
    for banned in ("tests/", "bench/", "scripts/", "configs/", "constraints/", ".ci/", "assets/real/"):
        assert not [n for n in names if n.startswith(banned)], banned
    assert [n for n in names if n.startswith("docs/")] == ["docs/images/icon.png"]
    assert "app.py" not in names
    # every node module, the frontend and the workflows are there
    assert {f"nodes/{p.name}" for p in (H.REPO / "nodes").glob("*.py")} <= names
    assert {"web/sserd.js", "workflows/sserd_label_edit.json", "workflows/sserd_cross_identity.json",
            "workflows/sserd_emotion_curve.json"} <= names
    print(f"node.zip: {len(names)} files, {sum(sizes.values()) / 1e6:.1f} MB uncompressed")


def test_packed_modules_import_only_what_is_packed(staged):
    """Every import of the pack's own code (``sserd_core…``, ``nodes…``, relative) in the archive's
    Python files names a module or package inside the archive."""
    stage, comfy = staged
    if not (stage / "node.zip").exists():
        assert _run(comfy, stage, "pack").returncode == 0
    with zipfile.ZipFile(stage / "node.zip") as z:
        names = set(z.namelist())
        sources = {n: z.read(n).decode() for n in names if n.endswith(".py")}

    def exists(module: str) -> bool:
        path = module.replace(".", "/")
        return f"{path}.py" in names or f"{path}/__init__.py" in names

    missing, checked = [], 0
    for name, src in sources.items():
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                bases = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                bases = [node.module]
            elif isinstance(node, ast.ImportFrom):  # relative: from the module's own package (the archive root = the pack)
                parts = name[:-3].split("/")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                bases = [".".join(parts + ([node.module] if node.module else []))]
            else:
                continue
            for base in bases:
                if base and base.split(".")[0] in ("sserd_core", "nodes"):
                    checked += 1
                    if not exists(base):
                        missing.append((name, base))
    assert checked > 50 and not missing, missing
