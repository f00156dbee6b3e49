"""`img2car info FILE.h5`"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a dataset file made by preprocess, crawl or import-emoji")


def run(args: argparse.Namespace) -> int:
    from img2caricature import dataset

    d = dataset.info(args.path)
    print(f"file:      {d.path}")
    print(f"kind:      {d.kind}")
    print(f"records:   {d.count}")
    print(f"producer:  {d.producer}")
    if d.kind == "faces":
        shown = ", ".join(d.names[:8]) + (" ..." if len(d.names) > 8 else "")
        print(f"identities: {d.n_identities} ({shown})")
    else:
        print(f"parameters: {len(d.names)} ({', '.join(d.names) or 'none'})")
    print(f"size:      {d.size_bytes / 2**20:.1f} MiB")
    return 0
