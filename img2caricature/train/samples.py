"""Moved to img2caricature.grids (evaluation uses it too); kept for older imports."""
from img2caricature.grids import pairs_grid, save_pairs  # noqa: F401
