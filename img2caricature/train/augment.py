"""Moved to img2caricature.augment (evaluation uses it too); kept for older imports."""
from img2caricature.augment import AugmentConfig, augment  # noqa: F401
