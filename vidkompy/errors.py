"""Errors a user can cause, each with the one line the CLI prints and its exit code.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VidkompyError(Exception):
    """Base for user-facing failures: the message is the whole story."""

    exit_code = 1


class InputError(VidkompyError):
    """An input file is missing, unreadable or not a usable video."""

    exit_code = 2

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class OutputError(VidkompyError):
    """The output cannot be written where asked."""

    exit_code = 3

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class SettingsError(VidkompyError):
    """An option the user gave cannot be honoured (an unknown codec, a codec the container cannot hold)."""

    exit_code = 2


class AlignmentError(VidkompyError):
    """fg could not be found in bg with enough confidence."""

    exit_code = 4
