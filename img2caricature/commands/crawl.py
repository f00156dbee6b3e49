"""`img2car crawl --source local --count N --out data/emoji.h5`"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from img2caricature.commands.options import at_least

DEFAULT_SOURCE = "local"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from img2caricature.config import packaged_configs

    p.add_argument("--source", default=DEFAULT_SOURCE,
                   help=f"source config: URL template and parameter space; a packaged one "
                        f"({', '.join(packaged_configs('sources'))}) or a TOML file (default: {DEFAULT_SOURCE})")
    p.add_argument("--url", default=None, metavar="BASE",
                   help="server address replacing the config's `base`, e.g. http://127.0.0.1:8089")
    p.add_argument("--count", type=int, required=True,
                   help="records the file should hold at the end (a rerun with a larger count continues it)")
    p.add_argument("--out", default="data/emoji.h5", help="emoji dataset to create or extend (default: data/emoji.h5)")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (default: 16)")
    p.add_argument("--rate", type=float, default=None,
                   help="at most this many requests per second (default: the source's `rate`, else no limit)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0); keep it when resuming")
    p.add_argument("--max-failures", type=at_least(1), default=None,
                   help="stop after this many failed requests (default: the larger of 100 and --count)")
    p.add_argument("--max-duplicates", type=int, default=100,
                   help="stop after this many answers in a row that were images already stored "
                        "(an API ignoring its parameters; default: 100)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from img2caricature.errors import UserError

    if args.count < 0:
        raise UserError(f"--count must be 0 or more, got {args.count}")
    if args.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.rate is not None and args.rate <= 0:
        raise UserError(f"--rate must be positive, got {args.rate}")
    if args.max_duplicates < 1:
        raise UserError(f"--max-duplicates must be at least 1, got {args.max_duplicates}")
    from crawlers.crawl import CrawlOptions, crawl
    from crawlers.source import load_source
    from img2caricature.config import find_config

    source = load_source(find_config(args.source, "sources"), args.url)
    if args.count > source.space_size:
        raise UserError(f"--count {args.count} is more than the {source.space_size} distinct parameter vectors "
                        f"{args.source} can produce")
    rate = args.rate if args.rate is not None else source.config.rate
    opts = CrawlOptions(count=args.count, out=Path(args.out), concurrency=args.concurrency, rate=rate,
                        seed=args.seed, max_failures=args.max_failures, max_duplicates=args.max_duplicates,
                        progress=not args.no_progress)
    result = crawl(source, opts)
    for line in result.summary.lines():
        print(line)
    if not result.complete:
        print(f"img2car crawl: stopped before {args.count}: {result.stopped_because}", file=sys.stderr)
        return 130 if result.interrupted else 1
    return 0
