"""The one exception type that the CLI turns into a single line and a non-zero exit."""


class UserError(Exception):
    """A mistake the user can fix (bad path, wrong dataset kind, bad config): no traceback."""

    exit_code = 2


class DiskError(UserError):
    """The disk refused a write (full, over quota, I/O error); what was written before is kept."""


def short_reason(err: BaseException, limit: int = 160) -> str:
    """An unexpected per-item exception as one line for a summary: `type: message`."""
    kind = type(err).__name__
    module = type(err).__module__
    if module not in ("builtins", "__main__"):
        kind = f"{module.split('.')[0]}.{kind}"
    message = " ".join(str(err).split())
    text = f"{kind}: {message}" if message else kind
    return text if len(text) <= limit else text[: limit - 3] + "..."
