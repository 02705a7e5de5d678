"""How the Guodu client reads a submit that got no answer: sent or not decides what next."""

from __future__ import annotations

import pytest

from smsgw.domain.model import SubmitVerdict
from smsgw.provider.client import GuoduClient
from smsgw.provider.guodu import Credentials, SubmitRequest


@pytest.mark.parametrize("url", ["http://", "http://127.0.0.1:99999/submitJson", "http://[::1/submitJson"])
def test_a_url_requests_cannot_even_use_is_for_a_person_never_unknown(url: str) -> None:
    # Refused while the request is prepared: nothing left, so it is neither "maybe sent"
    # (unknown, never resent) nor worth a quick retry: an account-level error, alarmed on
    client = GuoduClient(url, lambda: Credentials("acct", "secret"))
    result = client.submit(SubmitRequest(("13800138000",), "x"))
    assert (result.verdict, result.code) == (SubmitVerdict.ACCOUNT, "bad_request_setup")
