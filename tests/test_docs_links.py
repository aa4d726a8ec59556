"""The README and docs/ point at files that exist: markdown links, images and repository paths named in backticks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# A repository file named in backticks, e.g. `docs/camera_following_961.png` or `benchmarks/annotate_world.py`.
REPO_PATH = re.compile(r"`((?:docs|benchmarks|scripts|camworld|tests)/[\w./-]+\.(?:png|md|py|sh|json|txt))`")


def _targets(doc: Path):
    text = doc.read_text()
    for m in LINK.finditer(text):
        if "://" not in m.group(1):
            yield m.group(1), doc.parent / m.group(1)
    for m in REPO_PATH.finditer(text):
        yield m.group(1), ROOT / m.group(1)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_named_file_exists(doc):
    missing = sorted({name for name, path in _targets(doc) if not path.exists()})
    assert not missing, f"{doc.relative_to(ROOT)} names files that do not exist: {missing}"


def test_the_checker_sees_a_broken_link(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("![a](missing.png) and `docs/no_such_picture.png`")
    assert {name for name, path in _targets(doc) if not path.exists()} == {"missing.png", "docs/no_such_picture.png"}
