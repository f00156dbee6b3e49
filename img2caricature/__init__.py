"""img2caricature: a photo of a face in, a Bitmoji-style emoji of that person out."""

__version__ = "0.1.0"
