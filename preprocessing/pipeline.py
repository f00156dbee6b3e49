"""Photos -> a faces dataset: read, detect and crop in parallel, then write in order.

Workers (multiprocessing, `worker.py`) each load the detector once; results come back in input
order (`imap`), so the output is the same file on every run. Photos arrive grouped by
identity, so one identity's crops are buffered, and written with the next dense label
only if there are at least `min_per_identity` of them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from img2caricature import __version__
from preprocessing.detect import FaceOptions
from preprocessing.layouts import Photo
from preprocessing.worker import Outcome, init_worker, process_photo


@dataclass(frozen=True)
class PreprocessOptions:
    faces: FaceOptions = field(default_factory=FaceOptions)
    min_per_identity: int = 2
    workers: int = 1
    chunksize: int = 8


@dataclass
class Summary:
    photos: int = 0
    counts: Counter = field(default_factory=Counter)           # status -> photos
    unreadable: Counter = field(default_factory=Counter)       # reason -> photos
    kept: int = 0                                              # faces written
    dropped: int = 0                                           # faces of identities with too few
    identities: int = 0
    identities_kept: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, error): photos that raised

    MAX_LISTED = 10

    @property
    def kept_rate(self) -> float:
        return self.kept / self.photos if self.photos else 0.0

    def lines(self) -> list[str]:
        rate = self.photos / self.seconds if self.seconds else 0.0
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.unreadable.items())) or "-"
        return [
            f"photos:          {self.photos} ({rate:.1f}/s)",
            f"kept:            {self.kept} ({100 * self.kept_rate:.1f}%)",
            f"no face:         {self.counts['no face']}",
            f"several faces:   {self.counts['several faces']}",
            f"too small:       {self.counts['too small']}",
            f"unreadable:      {self.counts['unreadable']} ({reasons})",
            f"dropped (identity with too few faces): {self.dropped}",
            f"identities kept: {self.identities_kept} of {self.identities}",
        ] + self._failure_lines()

    def _failure_lines(self) -> list[str]:
        if not self.failures:
            return []
        lines = [f"failed:          {len(self.failures)} (an error while processing; the other photos are done)"]
        lines += [f"  {source}: {error}" for source, error in self.failures[: self.MAX_LISTED]]
        if len(self.failures) > self.MAX_LISTED:
            lines.append(f"  ... and {len(self.failures) - self.MAX_LISTED} more")
        return lines


def _outcomes(photos: list[Photo], options: PreprocessOptions) -> Iterator[Outcome]:
    if options.workers <= 1:
        init_worker(options.faces, single_thread=False)
        yield from map(process_photo, photos)
        return
    # Not plain fork: a process that has already run OpenCV or torch holds thread pools,
    # and a forked child can hang on their locks (seen after an in-process MTCNN run).
    # A fork server is a clean process; it imports the worker module once, then forks fast.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["preprocessing.worker"])
    else:
        ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(options.workers, initializer=init_worker, initargs=(options.faces, True)) as pool:
        yield from pool.imap(process_photo, photos, chunksize=options.chunksize)


# ---- the whole run ----------------------------------------------------------------

def _by_identity(outcomes: Iterable[Outcome]) -> Iterator[tuple[str, list[Outcome]]]:
    group: list[Outcome] = []
    for o in outcomes:
        if group and o.photo.identity != group[0].photo.identity:
            yield group[0].photo.identity, group
            group = []
        group.append(o)
    if group:
        yield group[0].photo.identity, group


def preprocess(
    photos: list[Photo],
    out: str | Path,
    options: PreprocessOptions = PreprocessOptions(),
    observe: Callable[[Outcome, bool], None] | None = None,
    progress: bool = True,
) -> Summary:
    """Write the faces of `photos` (sorted by identity) to a faces dataset at `out`.

    `observe(outcome, kept)` sees every outcome (e.g. to sample a report).
    The file is written beside `out` and renamed into place when complete, so an
    interrupted run never leaves a half dataset under the real name.
    """
    from img2caricature import dataset

    out = Path(out)
    dataset.check_replaceable(out, "faces")  # a faces dataset is rebuilt; anything else is not ours to replace
    partial = out.with_name(out.name + ".partial")
    summary = Summary(photos=len(photos))
    start = time.perf_counter()
    dataset.create(partial, "faces", producer=f"img2caricature {__version__} preprocess ({options.faces.detect.detector})")
    try:
        _write(photos, partial, options, summary, observe, progress)
    except BaseException:
        partial.unlink(missing_ok=True)  # nothing half-made is left beside the output
        raise
    os.replace(partial, out)
    summary.seconds = time.perf_counter() - start
    return summary


def _write(photos: list[Photo], partial: Path, options: PreprocessOptions, summary: Summary,
           observe: Callable[[Outcome, bool], None] | None, progress: bool) -> None:
    from tqdm import tqdm

    from img2caricature import dataset

    names: list[str] = []
    with dataset.Writer(partial, "faces") as writer:
        writer.file.attrs["preprocess_options"] = json.dumps(asdict(options.faces), sort_keys=True)
        writer.file.attrs["min_per_identity"] = options.min_per_identity
        bar = tqdm(_outcomes(photos, options), total=len(photos), unit="photo", disable=not progress,
                   desc="preprocess", dynamic_ncols=True)
        for identity, group in _by_identity(bar):
            summary.identities += 1
            faces = [o for o in group if o.status == "ok"]
            keep = len(faces) >= options.min_per_identity
            for o in group:
                summary.counts[o.status] += 1
                if o.status == "unreadable":
                    summary.unreadable[o.reason] += 1
                elif o.status == "failed":
                    summary.failures.append((o.photo.source, o.reason))
                if observe:
                    observe(o, keep)
            if not keep:
                summary.dropped += len(faces)
                continue
            writer.append(
                images=np.stack([o.crop for o in faces]),
                labels=np.full(len(faces), len(names), np.int32),
                sources=[o.photo.source for o in faces],
            )
            names.append(identity)
            summary.kept += len(faces)
            bar.set_postfix(kept=summary.kept, refresh=False)
        writer.set_names(names)
        summary.identities_kept = len(names)
