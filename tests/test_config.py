"""`--set a.b=value` overrides: parsing, type checks and one-line errors."""

import pytest

from camworld.config import apply_overrides
from camworld.errors import UserError
from camworld.presets import get_preset


def test_overrides_parse_python_literals_and_widen_ints_to_floats():
    cfg = apply_overrides(get_preset("tiny"), ["train.lr=3e-4", "train.steps=12", "train.shift=4", "train.bf16=False"])
    assert cfg.train.lr == 3e-4 and cfg.train.steps == 12
    assert cfg.train.shift == 4.0 and isinstance(cfg.train.shift, float)
    assert cfg.train.bf16 is False


@pytest.mark.parametrize("raw, want", [("true", True), ("false", False), ("TRUE", True), ("True", True)])
def test_bool_overrides_accept_lowercase_spellings(raw, want):
    assert apply_overrides(get_preset("tiny"), [f"train.bf16={raw}"]).train.bf16 is want


@pytest.mark.parametrize("item, message", [
    ("train.bf16=yes", "expected bool"),
    ("train.steps=1.5", "expected int"),
    ("train.nope=1", "unknown config key"),
    ("train=1", "is a section"),
    ("train.lr", "expected key=value"),
])
def test_bad_overrides_are_one_line_user_errors(item, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(get_preset("tiny"), [item])
