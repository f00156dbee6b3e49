"""The one exception type that the CLI turns into a single line and a non-zero exit."""


class UserError(Exception):
    """A mistake the user can fix (bad path, wrong dataset kind, bad config): no traceback."""

    exit_code = 2
