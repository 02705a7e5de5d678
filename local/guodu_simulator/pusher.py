"""Pushes to the gateway: status reports and MO messages (document section 3.2).

Items wait in a time-ordered heap until they are due. A scheduler thread wakes at the
first due item, waits a short batching window, then takes every item due by then, cuts
them into packets of one kind (reports and MO never share a packet) of at most
``max_items`` (250) items, and hands the packets to a small pool of sender threads.
A packet answered by anything but HTTP 200 (or not answered) is tried again after
``retry_base_seconds * retry_factor ** (attempt - 1)``, ``retries`` times, then counted
as failed. The acknowledgement body is not read: the document does not define one.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from guodu_simulator.config import PushConfig
from guodu_simulator.protocol import beijing_now_text
from guodu_simulator.state import PushKind, PushOutcome, PushRecord, iso_now

log = logging.getLogger("guodu_simulator.push")

PUSH_HEADERS = {"Content-Type": "application/json;charset=UTF-8"}

# (due on the monotonic clock, sequence, kind, item); a report item gets its reportTime
# when its packet is made.
_Pending = tuple[float, int, PushKind, dict[str, Any]]
_Retry = tuple[float, int, PushRecord]


class Pusher:
    def __init__(self, settings: Callable[[], PushConfig], rng: random.Random) -> None:
        self._settings = settings
        self._rng = rng
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._retries: list[_Retry] = []
        self._in_flight = 0
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._records: list[PushRecord] = []
        self._stopping = threading.Event()
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(
            max_workers=self._settings().concurrency, thread_name_prefix="guodu-sim-push"
        )
        self._thread = threading.Thread(target=self._run, name="guodu-sim-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling, drop what is not due, wait for packets already being sent."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._cond:  # what was not sent is dropped; a restart begins empty
            self._pending.clear()
            self._retries.clear()
            self._in_flight = 0
            for record in self._records:
                if record.outcome == "pending":
                    record.outcome, record.error = "failed", "simulator stopped"
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget every pending item, queued retry and recorded packet (``reset``)."""
        with self._cond:
            self._pending.clear()
            self._retries.clear()
            self._records.clear()
            self._cond.notify_all()

    # -- what the simulator calls -----------------------------------------------------
    def schedule(self, kind: PushKind, items: list[tuple[float, dict[str, Any]]]) -> None:
        """Queue ``(delay_seconds, item)`` pairs of one kind."""
        now = time.monotonic()
        with self._cond:
            for delay, item in items:
                heapq.heappush(self._pending, (now + delay, next(self._seq), kind, item))
            self._cond.notify_all()

    def push_now(self, kind: PushKind, items: list[dict[str, Any]], *, early: bool = False) -> None:
        """Send packets of these items from the calling thread (first attempt only)."""
        with self._cond:
            packets = self._make_packets(kind, items, early=early)
            self._in_flight += len(packets)
        for record in packets:
            self._deliver(record)

    @property
    def records(self) -> list[PushRecord]:
        with self._cond:
            return list(self._records)

    def pending(self) -> int:
        """Items not yet packed, packets waiting for a retry, packets being sent."""
        with self._cond:
            return len(self._pending) + len(self._retries) + self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending (see :meth:`pending`); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._retries or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    # -- the scheduler ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                due = self._next_due()
                now = time.monotonic()
                if due is None or due > now:
                    self._cond.wait(None if due is None else due - now)
                    continue
                items_due = bool(self._pending) and self._pending[0][0] <= now
            if items_due:
                # Let whatever is due in the next instant join the same packets.
                self._stopping.wait(self._settings().batch_window_seconds)
            self._dispatch_due()

    def _next_due(self) -> float | None:
        candidates = [heap[0][0] for heap in (self._pending, self._retries) if heap]
        return min(candidates) if candidates else None

    def _dispatch_due(self) -> None:
        now = time.monotonic()
        by_kind: dict[PushKind, list[dict[str, Any]]] = {"report": [], "mo": []}
        packets: list[PushRecord] = []
        with self._cond:  # packing happens under the lock, so wait_idle never sees a gap
            while self._pending and self._pending[0][0] <= now:
                _, _, kind, item = heapq.heappop(self._pending)
                by_kind[kind].append(item)
            while self._retries and self._retries[0][0] <= now:
                packets.append(heapq.heappop(self._retries)[2])
            for kind, items in by_kind.items():
                if items:
                    packets.extend(self._make_packets(kind, items))
            self._in_flight += len(packets)
        for record in packets:
            self._submit(record)

    def _submit(self, record: PushRecord) -> None:
        pool = self._pool
        if pool is None or self._stopping.is_set():
            self._finish(record, "failed", "simulator stopped")
            return
        try:
            pool.submit(self._deliver, record)
        except RuntimeError:  # the pool is shutting down
            self._finish(record, "failed", "simulator stopped")

    def _make_packets(
        self, kind: PushKind, items: list[dict[str, Any]], *, early: bool = False
    ) -> list[PushRecord]:
        settings = self._settings()
        report_time = beijing_now_text()
        packets: list[PushRecord] = []
        for start in range(0, len(items), settings.max_items):
            chunk = [
                self._finish_item(kind, item, report_time)
                for item in items[start : start + settings.max_items]
            ]
            shuffled = len(chunk) > 1 and self._rng.random() < settings.out_of_order_rate
            if shuffled:
                self._rng.shuffle(chunk)
            record = PushRecord(id=next(self._ids), kind=kind, items=chunk, early=early, shuffled=shuffled)
            packets.append(record)
            if self._rng.random() < settings.duplicate_rate:
                packets.append(
                    PushRecord(
                        id=next(self._ids),
                        kind=kind,
                        items=[dict(item) for item in chunk],
                        early=early,
                        duplicate_of=record.id,
                        shuffled=shuffled,
                    )
                )
        with self._cond:  # re-entrant: callers may hold it already
            self._records.extend(packets)
        return packets

    @staticmethod
    def _finish_item(kind: PushKind, item: dict[str, Any], report_time: str) -> dict[str, Any]:
        if kind == "report" and "reportTime" not in item:
            # The document's field order: msg, mobile, msgId, reportTime, status.
            return {
                "msg": item["msg"],
                "mobile": item["mobile"],
                "msgId": item["msgId"],
                "reportTime": report_time,
                "status": item["status"],
            }
        return item

    # -- one attempt ------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _deliver(self, record: PushRecord) -> None:
        settings = self._settings()
        status: int | None = None
        error: str | None = None
        if not settings.url:
            error = "no push url configured"
        else:
            body = json.dumps(record.items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            try:
                answer = self._session().post(
                    settings.url, data=body, headers=PUSH_HEADERS, timeout=settings.timeout_seconds
                )
                status = answer.status_code
                answer.close()
                if status != 200:
                    error = f"HTTP {status}"
            except requests.RequestException as err:
                error = type(err).__name__
        with self._cond:
            record.attempts += 1
            record.status = status
            record.error = error
            record.attempted_at.append(iso_now())
        if error is None:
            self._finish(record, "delivered", None)
        elif record.attempts <= settings.retries and not self._stopping.is_set() and settings.url:
            delay = settings.retry_base_seconds * settings.retry_factor ** (record.attempts - 1)
            log.debug("push packet %d (%s) failed: %s; retry in %.2fs", record.id, record.kind, error, delay)
            with self._cond:
                heapq.heappush(self._retries, (time.monotonic() + delay, next(self._seq), record))
                self._in_flight -= 1
                self._cond.notify_all()
        else:
            log.warning(
                "push packet %d (%s) failed after %d attempts: %s",
                record.id,
                record.kind,
                record.attempts,
                error,
            )
            self._finish(record, "failed", error)

    def _finish(self, record: PushRecord, outcome: PushOutcome, error: str | None) -> None:
        with self._cond:
            record.outcome = outcome
            record.error = error
            self._in_flight -= 1
            self._cond.notify_all()
