"""What a report calls each model it compares: short, and never two alike."""

from __future__ import annotations

from pathlib import Path

from img2caricature.errors import UserError

RUN_FILES = ("dtn", "cyclegan", "avatar")   # a trainer's own latest snapshot, named by its run folder


def model_names(paths: list[Path]) -> list[str]:
    """runs/dtn-a/dtn.pt -> 'dtn-a', img2caricature/models/default.pt -> 'default'; folder/stem,
    then the path, where that is not unique."""
    def own_name(p: Path) -> str:
        return (p.parent.name or p.stem) if p.stem in RUN_FILES else p.stem

    for naming in (own_name, lambda p: f"{p.parent.name}/{p.stem}", str):
        names = [naming(Path(p)) for p in paths]
        if len(set(names)) == len(names):
            return names
    raise UserError("the same model was passed twice")
