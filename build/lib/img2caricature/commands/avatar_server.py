"""`img2car avatar-server [--host 127.0.0.1] [--port 8089] [--workers N]`"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8089, help="port (default: 8089)")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: one per CPU core)")


def run(args: argparse.Namespace) -> int:
    from img2caricature.errors import UserError
    from img2caricature.runtime import default_workers

    workers = args.workers or default_workers()
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}")
    from crawlers.avatar_server import serve

    try:
        serve(args.host, args.port, workers)
    except OSError as err:  # address in use, or not an address of this machine
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err})") from None
    return 0
