"""The flags that say where a video starts, shared by `generate` and `play`: the first frame (`--image`, or a render
of the procedural world `--world-seed`), the prompt (`--prompt` file or `--prompt-text`; default: the world's
caption, or none for an image) and the action DSL's speeds."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_scene_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", default=None, help="first frame (any image file); default: a render of --world-seed")
    parser.add_argument("--world-seed", dest="world_seed", type=int, default=0,
                        help="procedural world rendered as the first frame when there is no --image")
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default=None, help="text file holding the prompt")
    prompt.add_argument("--prompt-text", dest="prompt_text", default=None, help="the prompt itself")


def add_speed_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--translation_speed", type=float, default=0.025, help="DSL metres per frame")
    parser.add_argument("--rotation_speed_deg", type=float, default=0.6, help="DSL degrees per frame")


def read_prompt(args: argparse.Namespace, world) -> str:
    """--prompt-text, the --prompt file's text, or else the world's caption (none for an image)."""
    from camworld.errors import UserError

    if args.prompt_text is not None:
        return args.prompt_text
    if args.prompt is not None:
        try:
            return Path(args.prompt).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read prompt file {args.prompt}: {type(exc).__name__}") from None
    return world.caption if world is not None else ""
