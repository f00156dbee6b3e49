"""A folder of emoji images -> an emoji dataset without parameters (`img2car import-emoji`).

Resumable: a file whose path is already recorded in `urls` is skipped without decoding,
and an image whose pixels are already stored is skipped as a duplicate.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from crawlers.payload import to_record
from crawlers.store import EmojiStore
from crawlers.summary import Summary
from img2caricature import images
from img2caricature.errors import UserError, short_reason


def import_folder(folder: str | Path, out: str | Path, progress: bool = True) -> Summary:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"emoji folder not found: {folder}")
    files = images.list_images(folder)
    if not files:
        raise UserError(f"no images in {folder} (looked for {', '.join(sorted(images.IMAGE_EXTENSIONS))})")
    summary = Summary()
    start = time.monotonic()
    with EmojiStore(out, producer="img2car import-emoji", param_names=[]) as store:
        try:
            for path in tqdm(files, desc="import-emoji", unit="img", disable=not progress, dynamic_ncols=True):
                _import_one(path, store, summary)
        except KeyboardInterrupt:
            summary.interrupted = True  # the store still flushes what was read: a rerun continues
        store.flush()
        summary.total = store.count
    summary.seconds = time.monotonic() - start
    return summary


def _import_one(path: Path, store: EmojiStore, summary: Summary) -> None:
    source = str(path.resolve())  # absolute, so a rerun from another directory still resumes
    if source in store.urls:
        summary.already_stored += 1
        return
    try:
        image, sha = to_record(path)
    except images.ImageError as err:
        summary.fail(err.reason)
        return
    except Exception as err:  # anything else is still this file's failure: the rest get imported
        summary.fail(f"error ({short_reason(err, limit=60)})")
        return
    if store.add(image, (), source, sha):
        summary.stored += 1
    else:
        summary.duplicates += 1
