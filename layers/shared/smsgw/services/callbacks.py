"""Delivering a request's events to its callback URL: signed, retried for more than a day.

An EventBridge rule puts every event of a request (``announce.REQUEST_EVENTS``) on the
callback queue; the callback function takes them from there, so a slow or failing
receiver never slows sending or report handling (they only publish to the bus).

For each event: the request's ``callback_url``, else its caller's default (``PUT
/v1/callback``); none, and it is dropped. The body is ``{"type": <detail-type>,
"detail": <the event's detail>}`` (``detail.event_id`` identifies the fact: delivery is
at least once, so a receiver drops repeats by it), signed in ``Smsgw-Signature``
(``domain.callbacks``). Any 2xx is delivered. Anything else (another status, a redirect,
no answer in 10 s, a host resolving to a forbidden address) is tried again after a
growing delay (``RETRY_DELAYS``: 30 s to 12 h, about 34 hours in all, with the default
``CallbackRetryBaseSeconds``); after the last
the queue dead-letters it, and an alarm says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from smsgw.adapters.callers import CallerStore
from smsgw.adapters.table import MessageTable
from smsgw.adapters.webhook import WebhookPoster
from smsgw.domain.callbacks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from smsgw.domain.model import RequestRecord
from smsgw.observability import MetricUnit, logger, metrics

# Delay before the n-th retry, in units of CallbackRetryBaseSeconds (30 s: 30 s .. 12 h,
# about 34 hours in all); the callback queue's maxReceiveCount is len + 1.
RETRY_STEPS = (1, 2, 4, 10, 20, 60, 120, 240, 480, 720, 960, 1_440)
DEFAULT_RETRY_BASE = 30
RETRY_DELAYS = tuple(DEFAULT_RETRY_BASE * step for step in RETRY_STEPS)
MAX_RECEIVES = len(RETRY_STEPS) + 1
MAX_VISIBILITY = 43_200  # SQS hides a message for at most 12 hours


@dataclass(frozen=True)
class Delivered:
    status: int


@dataclass(frozen=True)
class Skipped:
    reason: str


@dataclass(frozen=True)
class Retry:
    seconds: int
    reason: str


CallbackDelivery = Delivered | Skipped | Retry


class CallbackService:
    def __init__(
        self,
        store: MessageTable,
        callers: CallerStore,
        poster: WebhookPoster,
        *,
        retry_base_seconds: int = DEFAULT_RETRY_BASE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._delays = tuple(min(MAX_VISIBILITY, retry_base_seconds * step) for step in RETRY_STEPS)
        self._store = store
        self._callers = callers
        self._poster = poster
        self._clock = clock
        self._requests: dict[str, RequestRecord | None] = {}

    def deliver(self, body: str, *, receive_count: int) -> CallbackDelivery:
        try:
            event = json.loads(body)
            detail = event["detail"]
            detail_type = str(event["detail-type"])
            event_id = str(detail["event_id"])
        except (ValueError, KeyError, TypeError):
            logger.error("not an event of the bus: dropped")
            return Skipped("unreadable")
        request_id = detail.get("request_id")
        request = self._request(request_id) if isinstance(request_id, str) else None
        if request is None:
            return Skipped("no request")
        url = request.callback_url
        settings = self._callers.get(request.caller)
        if url is None:
            url = settings.url if settings else None
        if url is None:
            return Skipped("no callback URL")
        if settings is None:
            settings = self._callers.ensure(request.caller)
        payload = json.dumps(
            {"type": detail_type, "detail": detail}, ensure_ascii=False, separators=(",", ":")
        )
        data = payload.encode("utf-8")
        headers = {
            SIGNATURE_HEADER: sign(settings.secret, int(self._clock()), data),
            EVENT_ID_HEADER: event_id,
        }
        answer = self._poster.post(url, data, headers)
        where = {"request_id": request.id, "event_id": event_id, "host": urlsplit(url).hostname}
        if answer.delivered and answer.status is not None:
            metrics.add_metric(name="CallbacksDelivered", unit=MetricUnit.Count, value=1)
            return Delivered(answer.status)
        metrics.add_metric(name="CallbacksFailed", unit=MetricUnit.Count, value=1)
        reason = f"{answer.status} {answer.reason}" if answer.status is not None else answer.reason
        if receive_count >= MAX_RECEIVES:
            logger.error(
                "callback failed for the last time: dead-lettered", extra={**where, "reason": reason}
            )
        else:
            logger.warning("callback failed: trying again later", extra={**where, "reason": reason})
        return Retry(self._delays[min(receive_count, len(self._delays)) - 1], reason)

    def _request(self, request_id: str) -> RequestRecord | None:
        if request_id not in self._requests:
            if len(self._requests) > 1_000:
                self._requests.clear()
            self._requests[request_id] = self._store.requests.get_request(request_id)
        return self._requests[request_id]
