"""img2caricature: a photo of a face in, a Bitmoji-style emoji of that person out.

    import img2caricature
    model = img2caricature.load()
    model("photo.jpg").save("photo.emoji.png")

(`img2caricature.api` has the details.)
"""

__version__ = "0.1.0"

# Loaded on first use, so `import img2caricature` (and `img2car --help`) stays instant.
_EXPORTS = {"load": "img2caricature.api", "Caricaturist": "img2caricature.api",
            "ImageError": "img2caricature.images", "UserError": "img2caricature.errors"}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'img2caricature' has no attribute {name!r}")
