"""The `camworld` command: argparse subcommands, each a thin call into the library.

Every subcommand module exposes `add_parser(subparsers)` and sets `func` on its parser. Bad input of any kind
(a `UserError`, a missing file, an unknown flag) prints one line and exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from camworld.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`camworld: error: ...`) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _subcommand_modules():
    # Imported here, not at module level, so `camworld --help` stays fast and each command's heavy imports load
    # only when that command runs.
    from camworld.cli import (
        annotate_cmd,
        bench_cmd,
        data_cmd,
        generate_cmd,
        plan_cmd,
        play_cmd,
        render_cmd,
        serve_cmd,
        train_cmd,
        vae_cmd,
    )

    return [render_cmd, data_cmd, vae_cmd, annotate_cmd, generate_cmd, play_cmd, serve_cmd, plan_cmd, train_cmd,
            bench_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="camworld", description="SANA-WM style camera-controlled world model.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in _subcommand_modules():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (UserError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"camworld {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"camworld {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def add_override_args(parser: argparse.ArgumentParser) -> None:
    """The two config flags every model-facing command takes."""
    parser.add_argument("--preset", default="tiny", help="tiny | small | full")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="A.B=VALUE", help="override a config field"
    )
