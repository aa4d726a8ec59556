"""Repository rules that code review would otherwise have to catch: import layering, file size, no env switches."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "camworld"

# Lower tiers never import higher ones; an unknown top-level module must be given a tier here.
TIER = {
    "errors": 0, "fileio": 0, "config": 1, "camera": 1, "video": 1, "presets": 2,
    "world": 2, "data": 3, "annotate": 4,
    "ops": 2, "modules": 3, "models": 4, "tokenizer": 4, "text": 4, "flow": 5, "samplers": 6, "pipeline": 7,
    "pipeline_inputs": 6, "pipeline_segments": 6.5, "lora_dirs": 6, "weights_dirs": 6.5, "play": 7.5, "overlay": 2,
    "train": 8, "eval": 8, "serve": 8, "plan": 8, "cli": 9, "__main__": 10,
}
# The ground-truth world, data tooling and annotation never depend on model code, and models never read data.
MODEL_STACK = {"ops", "modules", "models", "tokenizer", "text", "flow", "samplers", "lora_dirs", "pipeline",
               "pipeline_segments", "weights_dirs", "play"}
DATA_SIDE = {"camera", "video", "world", "data", "annotate"}


def _top(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _camworld_imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("camworld."):
                    yield node.lineno, alias.name.split(".")[1]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("camworld."):
            yield node.lineno, node.module.split(".")[1]


def _sources():
    return sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


def test_every_module_has_a_tier():
    missing = {_top(p) for p in _sources()} - set(TIER)
    assert not missing, f"give these top-level modules a tier in TIER: {sorted(missing)}"


def test_layering():
    bad = []
    for path in _sources():
        src = _top(path)
        for lineno, dst in _camworld_imports(ast.parse(path.read_text())):
            if dst == src:
                continue
            ok = TIER.get(dst, 99) < TIER.get(src, -1)
            ok &= not (src in DATA_SIDE and dst in MODEL_STACK)
            ok &= not (src in MODEL_STACK and dst in DATA_SIDE - {"camera"})
            if not ok:
                bad.append(f"{path.relative_to(PKG.parent)}:{lineno} ({src} imports {dst})")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_files_stay_small_and_documented():
    for path in _sources():
        text = path.read_text()
        assert len(text.splitlines()) <= 800, f"{path} is over 800 lines: split it"
        if text.strip():
            doc = ast.get_docstring(ast.parse(text))
            assert doc, f"{path} needs a module docstring saying what it holds"


def test_no_environment_switches():
    allowed = {"cli", "config"}
    for path in _sources():
        if _top(path) in allowed:
            continue
        assert "os.environ" not in path.read_text(), f"{path}: config belongs in dataclasses, not env vars"
