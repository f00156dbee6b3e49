"""The per-photo loop `caricature` and `avatar` share: each photo's failure is that photo's,
reported on one line; the rest get done. Returns how many photos failed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable


def for_each_photo(photos: list[Path], desc: str, handle: Callable[[Path], Iterable[Path]], what: str,
                   debug: bool = False) -> int:
    """`handle(photo)` yields the files it wrote; `what` names them in a write error."""
    from tqdm import tqdm

    from img2caricature.errors import short_reason
    from img2caricature.images import ImageError

    failed = 0
    # tqdm.write keeps each message on its own line, clear of the progress bar
    for photo in tqdm(photos, desc=desc, unit="photo", disable=len(photos) < 2 or not sys.stderr.isatty()):
        try:
            for written in handle(photo):
                tqdm.write(str(written), file=sys.stdout)
        except ImageError as err:
            failed += 1
            tqdm.write(f"{photo}: {err.reason}" + (f" ({err.detail})" if err.detail else ""), file=sys.stderr)
        except OSError as err:
            failed += 1
            tqdm.write(f"{photo}: could not write the {what} ({err.strerror})", file=sys.stderr)
        except Exception as err:  # anything else is still this photo's failure: the rest get done
            if debug:
                raise
            failed += 1
            tqdm.write(f"{photo}: failed ({short_reason(err)})", file=sys.stderr)
    return failed
