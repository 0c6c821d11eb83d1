"""User-facing errors: each renders as one line naming the key and what is allowed."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


class ConfigError(UserError):
    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}={value!s} is invalid; allowed: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


class DatasetMissingError(UserError):
    """A dataset's files are absent and downloading is not allowed (or impossible offline)."""


class DatasetUnreadableError(DatasetMissingError):
    """A dataset's file is present but truncated, corrupt or not in its format: replace it."""


class NotApplicable(ConfigError):
    """A method that does not apply to this job (a class-wise method on a sample scenario, a
    method for another task): an error for a single run; in a sweep (``method=glob(*)``) the
    job is skipped with one line."""
