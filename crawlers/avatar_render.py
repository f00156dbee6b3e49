"""One avatar, parameters in, PNG bytes out: python-avatars draws the SVG, resvg rasterises it.

Runs in the server's worker processes, so it holds no state beyond the parameter space.
"""

from __future__ import annotations

import re

import python_avatars as pa
import resvg_py

from crawlers.avatar_space import PARAMS

# python-avatars draws on a 264x280 canvas; the face sits around (132, 124). A 220-unit
# square there shows the head and the top of the shoulders, centred on the face, the way
# Bitmoji heads are framed.
FRAME = "22 14 220 220"
_ROOT_SIZE = re.compile(r'\s(width|height|viewBox)="[^"]*"')


def to_svg(choice: dict[str, str], size: int) -> str:
    kwargs = {name: PARAMS[name].values[value] for name, value in choice.items()}
    svg = pa.Avatar(style=pa.AvatarStyle.TRANSPARENT, **kwargs).render()
    head, rest = svg.split(">", 1)  # the root <svg ...> tag: reframe it, leave the drawing alone
    head = _ROOT_SIZE.sub("", head) + f' width="{size}" height="{size}" viewBox="{FRAME}"'
    return head + ">" + rest


def render_png(choice: dict[str, str], size: int) -> bytes:
    """A transparent PNG of size x size (clients flatten it onto their own background)."""
    svg = to_svg(choice, size)
    return bytes(resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size, skip_system_fonts=True))


def full_choice(traits: dict[str, str]) -> dict[str, str]:
    """Some parameters by name -> every parameter, the rest at the server's defaults, checked by
    the server's own parser (raises avatar_space.BadParameter for an unknown name or value)."""
    from crawlers.avatar_space import parse_query

    choice, _ = parse_query({name: [value] for name, value in traits.items()})
    return choice


def render_rgb(traits: dict[str, str], size: int = 152):
    """Traits -> uint8 RGB (size, size, 3) flattened onto white, as a crawl stores its renders."""
    from img2caricature.images import decode

    return decode(render_png(full_choice(traits), size))
