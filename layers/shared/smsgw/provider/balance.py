"""The platform's older balance interface: how many messages the account has left.

``GET http://HOST:PORT/QxtSms_surplus/surplus?OperID=..&OperPass=..`` answers GBK XML
``<resRoot><rcode>N</rcode></resRoot>``. A negative N is an error of the call (wrong
credentials, address not allowed), not a balance.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import requests

from smsgw.provider.guodu import Credentials

SURPLUS_PATH = "/QxtSms_surplus/surplus"
_RCODE = re.compile(r"<rcode>\s*(-?\d+)\s*</rcode>")


class BalanceError(RuntimeError):
    """The balance could not be read; the message says why, without any secret."""


def balance_url(submit_url: str, configured: str = "") -> str:
    """The configured URL, or the submit URL's scheme, host and port with the surplus path."""
    if configured:
        return configured
    parts = urlsplit(submit_url)
    return urlunsplit((parts.scheme, parts.netloc, SURPLUS_PATH, "", ""))


def parse_balance(body: bytes) -> int:
    text = body.decode("gb18030", errors="replace")
    found = _RCODE.search(text)
    if not found:
        raise BalanceError("the balance answer holds no <rcode>")
    value = int(found.group(1))
    if value < 0:
        raise BalanceError(f"the platform refused the balance query (rcode {value})")
    return value


def read_balance(
    session: requests.Session, url: str, credentials: Credentials, *, timeout: float = 10.0
) -> int:
    try:
        response = session.get(
            url, params={"OperID": credentials.oper_id, "OperPass": credentials.oper_pass}, timeout=timeout
        )
    except requests.RequestException as err:
        # The exception text holds the URL, and so the password: name the class only.
        raise BalanceError(f"balance query failed: {type(err).__name__}") from None
    if response.status_code != 200:
        raise BalanceError(f"balance query answered HTTP {response.status_code}")
    return parse_balance(response.content)
