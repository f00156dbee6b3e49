"""The one exception type that the CLI turns into a single line and a non-zero exit."""


class UserError(Exception):
    """A mistake the user can fix (bad path, wrong dataset kind, bad config): no traceback."""

    exit_code = 2


class DiskError(UserError):
    """The disk refused a write (full, over quota, I/O error); what was written before is kept."""
