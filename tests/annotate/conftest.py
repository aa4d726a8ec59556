"""Shared rendered clips for the annotator tests (world seeds >= 10_000, never seen by the depth net)."""

from __future__ import annotations

import pytest

from camworld.annotate.world_clips import render_world_clip


@pytest.fixture(scope="session")
def small_orbit():
    """A 20-frame orbit at 128x224 with its true poses and depth."""
    return render_world_clip(10_003, "orbit", 20, height=128, width=224)
