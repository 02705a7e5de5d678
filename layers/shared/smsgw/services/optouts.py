"""The opt-out list, as the API shows it: see a number's opt-out, add one, remove one.

The list is the deployment's (every caller sees and changes the same list); each change
records the caller that made it."""

from __future__ import annotations

from typing import Any

from smsgw.adapters.optouts import OptOutStore
from smsgw.domain.errors import InputError, NotFound
from smsgw.domain.inbound import OptOut
from smsgw.domain.numbers import normalise_mobile
from smsgw.domain.times import public


def _mobile(raw: str) -> str:
    mobile = normalise_mobile(raw)
    if mobile is None:
        raise InputError.of("mobile", "is not a Chinese mobile number")
    return mobile


def _view(opt_out: OptOut) -> dict[str, Any]:
    return {
        "mobile": opt_out.mobile,
        "opted_out": True,
        "keyword": opt_out.keyword,
        "source": opt_out.source,
        "created_at": public(opt_out.created_at),
        "changed_by": opt_out.changed_by,
    }


class OptOutService:
    def __init__(self, store: OptOutStore) -> None:
        self._store = store

    def get(self, raw_mobile: str) -> dict[str, Any]:
        opt_out = self._store.get_opt_out(_mobile(raw_mobile))
        if opt_out is None:
            raise NotFound("this number has not opted out")
        return _view(opt_out)

    def add(self, raw_mobile: str, *, caller: str) -> tuple[bool, dict[str, Any]]:
        """Opt a number out by hand (a customer asked by phone, say). True if it is new."""
        mobile = _mobile(raw_mobile)
        created = self._store.add_opt_out(mobile, keyword="", source="api", changed_by=caller)
        opt_out = self._store.get_opt_out(mobile)
        if opt_out is None:  # removed again in between
            raise NotFound("this number has not opted out")
        return created, _view(opt_out)

    def remove(self, raw_mobile: str, *, caller: str) -> None:
        if not self._store.remove_opt_out(_mobile(raw_mobile), changed_by=caller):
            raise NotFound("this number has not opted out")
