"""The parametric avatar model: photo -> the parameters of an avatar engine (see docs/AVATAR.md)."""
