"""`camworld serve`: the HTTP app (`camworld.serve.app`) on uvicorn, with the play page at / for walking through the
world in a browser."""

from __future__ import annotations

import argparse

from camworld.cli.threads import check_threads, set_threads


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve play sessions and generation over HTTP (browser page at /)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--checkpoint", default=None, help="weights folder; default: bundled tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max_sessions", type=int, default=4, help="play sessions kept; more end the least recent")
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camworld.errors import UserError

    check_threads(args.threads)
    if not 0 < args.port < 65536 or args.fps <= 0:
        raise UserError(f"--port must be in 1..65535 and --fps positive, got {args.port} and {args.fps}")
    try:
        import uvicorn

        from camworld.serve.app import make_app
    except ImportError as exc:
        raise UserError(f"serving needs the serve extra ({exc.name} is missing): pip install 'camworld[serve]'") \
            from None
    from camworld.pipeline import WorldModel

    set_threads(args.threads)
    model = WorldModel.from_pretrained(args.checkpoint, device=args.device)
    app = make_app(model, max_sessions=args.max_sessions, fps=args.fps)
    print(f"camworld serve: http://{args.host}:{args.port}/ (weights {model.path})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
