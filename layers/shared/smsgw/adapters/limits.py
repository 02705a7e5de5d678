"""How long an AWS call may take: the timeouts and tries every boto3 client of the gateway
gets (``smsgw.adapters.aws`` turns them into a botocore ``Config``).

Kept apart from ``aws`` so that ``smsgw.settings`` holds them without importing boto3
(~140 ms of CPU): reading the settings (the operator's CLI, a test of a setting) need not
load the SDK; a handler loads it where it makes its clients.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientLimits:
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    max_attempts: int = 3  # the first try and two retries

    def worst_case_seconds(self) -> float:
        """An upper bound of one call, retries and their backoff included (standard mode
        waits at most ~1 s before the 2nd try and ~2 s before the 3rd)."""
        backoff = sum(min(20.0, 2.0 ** (n - 1)) for n in range(1, self.max_attempts))
        return self.max_attempts * (self.connect_timeout + self.read_timeout) + backoff
