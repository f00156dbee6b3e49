"""`img2car avatar PHOTO... [-o OUT] [--model M]` and `img2car avatar --params FILE.json`

Per face: NAME.avatar.json (the avatar server's parameters, by name: edit it), NAME.avatar.svg
(the engine's own drawing, sharp at any size) and NAME.avatar.png.
"""

from __future__ import annotations

import argparse
import sys

from img2caricature.commands.options import add_device, at_least


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", metavar="PHOTO", help="photos and/or folders of photos")
    p.add_argument("--params", action="append", default=[], metavar="FILE.json",
                   help="re-render an avatar from its (edited) JSON instead of a photo (repeatable)")
    p.add_argument("-o", "--out", default=None,
                   help="output folder (default: beside each photo, or beside the JSON for --params)")
    p.add_argument("--model", default=None,
                   help="an avatar.pt from `img2car train-avatar` (default: the model shipped in the package)")
    p.add_argument("--size", type=int, default=256, help="side of the PNG in pixels (default 256)")
    p.add_argument("--all-faces", action="store_true", help="an avatar for every face (default: the largest)")
    p.add_argument("--no-detect", action="store_true", help="use the whole image (centre square) as the face")
    p.add_argument("--min-face", type=at_least(1), default=32, help="smallest face to use, in pixels (default 32)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from img2caricature.commands.per_photo import for_each_photo
    from img2caricature.errors import UserError

    if args.size < 16 or args.size > 1024:
        raise UserError(f"--size must be between 16 and 1024 (what the avatar server draws), got {args.size}")
    if not args.inputs and not args.params:
        raise UserError("give photos, or --params FILE.json to re-render an edited avatar")
    out = Path(args.out) if args.out else None
    failed = 0
    for path in args.params:
        try:
            for written in rerender(Path(path), out, args.size):
                print(written)
        except (UserError, OSError) as err:
            failed += 1
            print(f"{path}: {err.strerror if isinstance(err, OSError) else err}", file=sys.stderr)
    if not args.inputs:
        return 1 if failed else 0

    from img2caricature.avatar.model import load_avatar_model
    from img2caricature.caricature import Outputs, collect_inputs
    from preprocessing.finder import crop_finder
    from img2caricature.runtime import pick_device

    photos, problems = collect_inputs(args.inputs)
    for name, reason in problems:
        print(f"{name}: {reason}", file=sys.stderr)
    failed += len(problems)
    if not photos:
        return 1 if failed else 0
    outputs = Outputs(out, single=False, inputs=photos, label="avatar")  # never onto an input, never shared
    device = pick_device(args.device)
    model = load_avatar_model(args.model, device)
    find_crops = crop_finder("mtcnn", args.all_faces, args.min_face, args.no_detect)  # caricature's default
    failed += for_each_photo(photos, "avatar",
                             lambda photo: avatar_photo(photo, model, find_crops, outputs, args.size, device),
                             "avatar", getattr(args, "debug", False))
    return 1 if failed else 0


def avatar_photo(photo, model, find_crops, out, size: int, device) -> list:
    """One photo -> the files of an avatar per face found (ImageError for a bad photo). `out`:
    an Outputs (unique names), or a folder / None (beside the photo)."""
    from img2caricature.caricature import Outputs
    from img2caricature.images import read_image

    outputs = out if isinstance(out, Outputs) else Outputs(out, single=False, inputs=[photo], label="avatar")
    written = []
    for i, traits in enumerate(model.traits(find_crops(read_image(photo)), device)):
        base = outputs.path_for(photo, i).with_suffix("")  # x.avatar.png -> x.avatar (+ .json, .svg, .png)
        written += write_avatar(traits, base, size)
    return written


def write_avatar(traits: dict[str, str], base, size: int) -> list:
    """BASE.json (every parameter, by name), BASE.svg and BASE.png for these traits."""
    import json

    from crawlers.avatar_render import full_choice, render_png, to_svg

    choice = full_choice(traits)
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_name(base.name + ext) for ext in (".json", ".svg", ".png")]
    paths[0].write_text(json.dumps(choice, indent=2) + "\n")
    paths[1].write_text(to_svg(choice, size))
    paths[2].write_bytes(render_png(choice, size))
    return paths


def rerender(path, out, size: int) -> list:
    """An (edited) NAME.avatar.json -> NAME.avatar.json/.svg/.png again, checked by the server's parser."""
    import json

    from crawlers.avatar_space import BadParameter
    from img2caricature.errors import UserError

    try:
        traits = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"not valid JSON ({err})") from None
    if not isinstance(traits, dict) or not all(isinstance(v, str) for v in traits.values()):
        raise UserError('expected an object of parameter names to value names, e.g. {"top": "bob"}')
    stem = path.name[:-len(".json")] if path.name.endswith(".json") else path.stem
    try:
        return write_avatar(traits, (out or path.parent) / stem, size)
    except BadParameter as err:
        allowed = f" (allowed: {', '.join(map(str, err.allowed))})" if isinstance(err.allowed, list) else ""
        raise UserError(f"{err}{allowed}") from None
