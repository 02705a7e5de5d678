"""Push packets exactly as they arrived: ``RAW#<yyyymmdd>`` / ``<time>#<hash>``.

Stored before the packet is read, so nothing the platform sent is lost to a parser's
mistake; kept ``RawPacketRetentionDays``.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from smsgw.adapters.dynamo import to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A raw packet is kept zlib-compressed, in parts of at most this many bytes.
RAW_PART_BYTES = 300_000


class RawPacketStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        raw_retention_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table_name
        self._raw_retention = raw_retention_days * 86_400
        self._clock = clock

    def store(self, body: bytes, *, kind: str, source_ip: str) -> str:
        """Keep the packet exactly as it came (compressed), before we try to read it.

        A body that compresses badly is kept in several items (``#p0``, ``#p1``...), each
        well under DynamoDB's 400 KB: whatever an authenticated sender posts is kept."""
        now = self._clock()
        digest = hashlib.sha256(body).hexdigest()
        pk = "RAW#" + time.strftime("%Y%m%d", time.gmtime(now))
        sk = f"{time.strftime('%H%M%S', time.gmtime(now))}.{int(now * 1e6) % 1_000_000:06d}#{digest[:12]}"
        compressed = zlib.compress(body)
        parts = [compressed[i : i + RAW_PART_BYTES] for i in range(0, len(compressed), RAW_PART_BYTES)] or [
            b""
        ]
        for number, part in enumerate(parts):
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": pk,
                        "sk": sk if len(parts) == 1 else f"{sk}#p{number}",
                        "kind": "raw",
                        "packet": kind,
                        "source_ip": source_ip,
                        "size": len(body),
                        "sha256": digest,
                        "part": number,
                        "parts": len(parts),
                        "body": part,
                        "expires_at": int(now) + self._raw_retention,
                    }
                ),
            )
        return f"{pk}/{sk}"
