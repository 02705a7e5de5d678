"""Typed errors of the domain. The HTTP layer maps each to one status (``api/errors.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str
    value: str | None = None  # the offending value, when echoing it helps the client

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass
class InputError(Exception):
    """The client sent something we cannot accept; ``problems`` name the fields."""

    problems: list[FieldProblem]
    code: str = "validation_failed"

    @classmethod
    def of(cls, field_name: str, message: str, *, code: str = "validation_failed") -> InputError:
        return cls([FieldProblem(field_name, message)], code=code)

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)


class NotFound(Exception):
    """No such resource (or not visible to this caller)."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


class Forbidden(Exception):
    """The caller may not do this (a wrong push token, a source address not allowed)."""


class PayloadTooLarge(Exception):
    """The body is larger than the endpoint takes."""


class FrequencyCapped(InputError):
    """Every number of the request is over a frequency cap (HTTP 429)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(problems, code="frequency_capped")
