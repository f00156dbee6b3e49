"""`img2car serve [--host 127.0.0.1] [--port 8090] [--model M.pt]`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_device


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8090, help="port (default: 8090)")
    p.add_argument("--model", default=None, help="a dtn.pt or cyclegan.pt snapshot (default: the model shipped in the package)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest photo accepted, in MB (default 10)")
    p.add_argument("--concurrency", type=int, default=2, help="photos drawn at once (default 2)")
    p.add_argument("--queue", type=int, default=8,
                   help="requests that may wait for a turn; more are told the server is busy (default 8)")
    p.add_argument("--avatar-model", default=None,
                   help="an avatar.pt for the page's editable avatar (default: the one shipped in the package)")
    p.add_argument("--no-avatar", action="store_true", help="emoji only: no avatar section on the page")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from img2caricature.errors import UserError

    if not 0 <= args.port < 65536:
        raise UserError(f"--port must be from 0 to 65535, got {args.port}")
    if not 0 < args.max_upload_mb <= 1024:
        raise UserError(f"--max-upload-mb must be above 0 and at most 1024, got {args.max_upload_mb:g}")
    if args.concurrency < 1 or args.queue < 0:
        raise UserError("--concurrency must be at least 1 and --queue at least 0")

    from img2caricature.api import load, load_avatar
    from img2caricature.serve.app import ServeOptions, serve

    model = load(args.model, args.device)
    model.warm_up()  # the first visitor should not wait for lazy loading
    avatar = None if args.no_avatar else load_avatar(args.avatar_model, "cpu")
    options = ServeOptions(max_upload_mb=args.max_upload_mb, concurrency=args.concurrency, queue=args.queue)
    try:
        serve(model, args.host, args.port, options, avatar)
    except OSError as err:  # address in use, or not an address of this machine
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err})") from None
    return 0
