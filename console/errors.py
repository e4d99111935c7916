"""Errors the operator reads: English in str() (logs, scripts, tests), and a code with
parameters so the console can say the same thing in the operator's language."""

from __future__ import annotations


class TocsinError(ValueError):
    def __init__(self, message: str, code: str = "", **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params
