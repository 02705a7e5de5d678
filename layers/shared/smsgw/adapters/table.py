"""The owners of a request's items in the messages table, made together.

``MessageTable`` writes nothing itself: it builds, over one client and one table, the one
owner of each kind of a request's items (layout in ``dynamo.py``), sharing their lifetime
(``RetentionDays`` after a request's send time or validity) and clock:

- ``requests``: ``RequestStore``, the header and its settled-chunk markers;
- ``chunks``: ``ChunkStore``, the chunks (one submit each), claimed and settled;
- ``links``: ``LinkStore``, a MsgId's link to its request and its numbers' reports;
- ``due``: ``DueIndex``, the reconciler's reading of the sparse due index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from smsgw.adapters.chunks import ChunkStore
from smsgw.adapters.dynamo import DueIndex, Lifetime
from smsgw.adapters.links import LinkStore
from smsgw.adapters.requests import RequestStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class MessageTable:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = 30,
        report_timeout_seconds: int = 0,
        accepting_grace_seconds: int = 120,
        claims: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client  # the client its owners share
        lifetime = Lifetime(retention_days, clock)
        self.requests = RequestStore(
            client,
            table_name,
            lifetime=lifetime,
            accepting_grace_seconds=accepting_grace_seconds,
            clock=clock,
        )
        self.links = LinkStore(client, table_name, lifetime=lifetime, clock=clock)
        self.chunks = ChunkStore(
            client,
            table_name,
            lifetime=lifetime,
            links=self.links,
            report_timeout_seconds=report_timeout_seconds,
            claims=claims,
            clock=clock,
            sleep=sleep,
        )
        self.due = DueIndex(client, table_name)
