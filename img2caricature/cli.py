"""`img2car`: one command per pipeline stage.

Each command lives in `img2caricature/commands/<name>.py` with `add_arguments(parser)`
and `run(args) -> int`; heavy imports happen inside `run`, so `--help` is instant.
A `UserError` becomes one line on stderr and exit code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from img2caricature import __version__
from img2caricature.errors import UserError

# name -> one-line help; order is the pipeline's order.
COMMANDS: dict[str, str] = {
    "avatar-server": "serve parametric cartoon avatars over HTTP (the API `crawl` can crawl)",
    "crawl": "crawl parametric emoji from an avatar API into an emoji dataset (HDF5)",
    "import-emoji": "import a folder of emoji images into an emoji dataset (HDF5)",
    "preprocess": "crop faces from in-the-wild photos (a folder per person) into a faces dataset",
    "split": "make (or show) the held-out split: the people and emoji no model trains on",
    "pretrain-encoder": "train the face-identity encoder f with a softmax classifier",
    "train-dtn": "train the Domain Transfer Network (decoder g against a 3-way discriminator)",
    "train-cyclegan": "train the CycleGAN baseline on the same data",
    "train-avatar": "train the parametric avatar model (imitator c, parameter encoder e) on photos and a crawl",
    "evaluate": "compare trained models on held-out faces and emoji (JSON, Markdown, image grid)",
    "evaluate-avatar": "measure avatar models against baselines on held-out people (skin, hair, gender, identity)",
    "caricature": "photo(s) in, emoji out, with the model shipped in the package",
    "avatar": "photo(s) in, editable parametric avatar out (SVG, JSON of parameters, PNG)",
    "serve": "try it in a browser: a page on 127.0.0.1 that turns a photo into its emoji",
    "info": "print what a dataset file holds",
}

# The disk, not the program: one line, like a UserError (writers keep what they wrote before).
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}

EXIT_CODES = """exit codes:
  0  success
  1  some inputs failed (the others were done)
  2  user error (bad path, bad config, wrong dataset kind): one line on stderr
  3  command not built yet
  130 interrupted"""


class _OneLineErrors(argparse.ArgumentParser):
    """A usage mistake is one line, like every other user error: the message and where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="img2car",
        description="Turn a photo of a face into a Bitmoji-style emoji of that person.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"img2caricature {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=_OneLineErrors)
    for name, help_line in COMMANDS.items():
        p = sub.add_parser(name, help=help_line, description=help_line, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and debug logging")
        module = _command_module(name)
        if module is not None:
            module.add_arguments(p)
        p.set_defaults(_module=module, _name=name)
    return parser


def _command_module(name: str):
    try:
        return importlib.import_module(f"img2caricature.commands.{name.replace('-', '_')}")
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("img2caricature.commands."):
            return None  # not built yet
        raise


def main(argv: list[str] | None = None) -> int:
    """The command line. When the reader of its output goes away (`img2car ... | head`), it
    stops quietly as Unix tools do, instead of with a traceback."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()   # here, inside the try, not at interpreter exit where it cannot be caught
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # nothing left to flush at exit
        return 141   # 128 + SIGPIPE, what a shell reports for a tool stopped this way


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from img2caricature.runtime import setup_logging

    setup_logging(getattr(args, "debug", False))
    if args.command is None:
        parser.print_help()
        return 2
    if args._module is None:
        print(f"img2car {args._name}: not built yet", file=sys.stderr)
        return 3
    try:
        return int(args._module.run(args) or 0)
    except UserError as err:
        if args.debug:
            raise
        print(f"img2car {args._name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"img2car {args._name}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        if args.debug or err.errno not in DISK_ERRORS:
            raise
        where = f" ({err.filename})" if err.filename else ""
        print(f"img2car {args._name}: error: {err.strerror}{where}; files written before are kept, "
              "free some space and run the command again", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
