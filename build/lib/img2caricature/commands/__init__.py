"""One module per `img2car` command: `add_arguments(parser)` and `run(args) -> int`.

Shared option groups live in `options.py`. Keep top-level imports light (no torch)
so that `img2car --help` starts fast; import the work inside `run`.
"""
