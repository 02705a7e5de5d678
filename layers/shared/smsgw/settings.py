"""The one settings model, read from the environment once per container (cold start).

Business logic never reads ``os.environ``: handlers build ``Settings.from_env()`` and pass
what each component needs. The template sets these variables; the local stack sets the
same ones from the same template.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from smsgw.adapters.limits import ClientLimits
from smsgw.domain.model import MAX_NUMBERS_PER_CHUNK, Category

# The account every lane uses unless it has one of its own (also its rate-limit and pause
# items in the table: RATE#guodu...).
SHARED_ACCOUNT = "guodu"


class SettingsError(RuntimeError):
    """A required setting is missing or malformed: the function cannot start."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError as err:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from err
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError as err:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from err


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _urls(raw: str, name: str) -> tuple[str, ...]:
    """A comma-separated list of http(s) URLs, in order, without blanks or repeats."""
    urls = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must hold http(s) URLs, got {url!r}")
    return urls


def _prefix(raw: str, name: str) -> str:
    prefix = raw.strip()
    if prefix and not (prefix.isascii() and prefix.isdigit()):
        raise SettingsError(f"{name} must be digits (spnumber + account id)")
    return prefix


def _shares(raw: str) -> dict[str, int]:
    """``verification=10,marketing=20``: percent of its account's limit a lane reserves."""
    shares: dict[str, int] = {}
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        lane, _, percent = part.partition("=")
        if lane.strip() not in {c.value for c in Category} or not percent.strip().isdigit():
            raise SettingsError(f"LANE_RESERVED_SHARES: {part!r} is not <lane>=<percent>")
        shares[lane.strip()] = int(percent)
    if sum(shares.values()) > 100:
        raise SettingsError("LANE_RESERVED_SHARES add up to more than 100 %")
    return shares


@dataclass(frozen=True)
class LaneAccount:
    """A lane's own Guodu account (``GUODU_<LANE>_*``); a lane without one uses the shared."""

    category: Category
    secret_name: str
    submit_urls: tuple[str, ...] = ()  # empty: the shared account's addresses
    account_prefix: str = ""
    max_submits_per_second: int | None = None  # None: the shared account's figure


@dataclass(frozen=True)
class Account:
    """One Guodu account as the worker uses it: the lanes that submit with it share its
    rate limit and its pause."""

    name: str  # SHARED_ACCOUNT, or the lane that has it
    secret_name: str
    submit_urls: tuple[str, ...]
    account_prefix: str
    max_submits_per_second: int
    max_recipients_per_second: int
    lanes: tuple[Category, ...]


@dataclass(frozen=True)
class Lane:
    """A lane's queue and dead-letter queue."""

    category: Category
    queue_url: str
    dlq_url: str


@dataclass(frozen=True)
class Settings:
    messages_table: str
    send_queue_url: str = ""  # the transactional lane's (and of anything without a lane)
    send_dlq_url: str = ""
    verification_queue_url: str = ""
    verification_dlq_url: str = ""
    marketing_queue_url: str = ""
    marketing_dlq_url: str = ""
    provider_secret_name: str = ""
    # The platform's addresses in order of preference (failover): GUODU_SUBMIT_URLS, else
    # the one GUODU_SUBMIT_URL.
    guodu_submit_urls: tuple[str, ...] = ()
    guodu_balance_url: str = ""
    # spnumber + account id, when known: AppendID may only fill the rest of 20 digits.
    guodu_account_prefix: str = ""
    # A lane's account prefix where it differs from the shared one (its own account).
    lane_account_prefixes: tuple[tuple[Category, str], ...] = ()
    lane_accounts: tuple[LaneAccount, ...] = ()
    # Percent of an account's limit reserved by a lane (lane -> percent).
    lane_reserved_shares: tuple[tuple[str, int], ...] = ()
    numbers_per_submit: int = MAX_NUMBERS_PER_CHUNK
    max_recipients: int = 100_000
    retention_days: int = 30
    submit_max_attempts: int = 8
    retry_base_seconds: int = 10
    retry_max_seconds: int = 900
    resend_ambiguous: bool = False
    event_bus_name: str = ""
    push_token_secret_name: str = ""
    # The secret keyed request ids are derived with (domain.callers.RequestIds).
    request_id_secret_name: str = ""
    # Comma-separated addresses or networks the platform pushes from; empty: anyone.
    push_allowed_ips: str = ""
    push_ack_body: str = "success"
    push_max_body_bytes: int = 1_048_576
    opt_out_keywords: str = ""
    raw_packet_retention_days: int = 30
    # The provider's rate limit, shared by every worker (0: none).
    max_submits_per_second: int = 20
    max_recipients_per_second: int = 0
    # What the way to the platform may add to a submit's moment (see adapters/throttle.py).
    rate_margin_ms: int = 20
    # Marketing is held during these hours (Beijing time); empty: never.
    quiet_hours: str = "21:00-08:00"
    default_validity_seconds: int = 36_000
    frequency_caps_verification: str = "1/1m,5/1h,10/1d"
    frequency_caps_transactional: str = ""
    frequency_caps_marketing: str = ""
    lane_pause_failures: int = 3
    lane_pause_window_seconds: int = 10
    lane_pause_base_seconds: int = 5
    lane_pause_max_seconds: int = 300
    provider_connect_timeout: float = 3.05
    provider_read_timeout: float = 10.0
    secret_max_age_seconds: int = 300
    # Every AWS call: short timeouts, standard retries (see adapters/aws.py).
    aws_connect_timeout: float = 1.0
    aws_read_timeout: float = 3.0
    aws_max_attempts: int = 3
    # Submitted recipients with no report after this end "unknown" (no_report); 0: never.
    report_timeout_hours: int = 72
    # What one request may ask for, so that its intake always finishes in seconds.
    max_messages: int = 1_000  # the personalised form's messages (one chunk per content)
    max_capped_recipients: int = 1_000  # recipients of a category with frequency caps
    # A request still accepting this long after its intake began is finished by the reconciler.
    intake_grace_seconds: int = 120
    # A send scheduled further ahead than this is held by the gateway (cancellable), and
    # released this long before its send time (0: never held).
    scheduled_hold_seconds: int = 600
    scheduled_release_lead_seconds: int = 300
    callback_queue_url: str = ""
    # Callbacks may go to loopback addresses (the local stack only): never in the cloud.
    callback_allow_loopback: bool = False
    # The first retry of a failed callback; later ones are multiples (30: ~34 hours in all).
    callback_retry_base_seconds: int = 30

    @property
    def aws_limits(self) -> ClientLimits:
        return ClientLimits(self.aws_connect_timeout, self.aws_read_timeout, self.aws_max_attempts)

    @property
    def guodu_submit_url(self) -> str:
        """The first address (what ``require`` checks)."""
        return self.guodu_submit_urls[0] if self.guodu_submit_urls else ""

    def lanes(self) -> dict[Category, Lane]:
        """Each lane's queues; a lane whose queue is not set uses the transactional lane's."""
        own = {
            Category.VERIFICATION: (self.verification_queue_url, self.verification_dlq_url),
            Category.TRANSACTIONAL: (self.send_queue_url, self.send_dlq_url),
            Category.MARKETING: (self.marketing_queue_url, self.marketing_dlq_url),
        }
        return {
            category: Lane(category, queue or self.send_queue_url, dlq if queue else self.send_dlq_url)
            for category, (queue, dlq) in own.items()
        }

    def account_prefix(self, category: Category) -> str:
        """The spnumber + account id of the account the lane of ``category`` submits with."""
        return dict(self.lane_account_prefixes).get(category, self.guodu_account_prefix)

    def accounts(self) -> dict[str, Account]:
        """The Guodu accounts by name: the shared one (if any lane uses it), then each
        lane's own. ``lanes`` says which lanes submit with each."""
        own = {account.category: account for account in self.lane_accounts}
        shared_lanes = tuple(c for c in Category if c not in own)
        found: dict[str, Account] = {}
        if shared_lanes:
            found[SHARED_ACCOUNT] = Account(
                SHARED_ACCOUNT,
                self.provider_secret_name,
                self.guodu_submit_urls,
                self.guodu_account_prefix,
                self.max_submits_per_second,
                self.max_recipients_per_second,
                shared_lanes,
            )
        for category, lane in own.items():
            submits = self.max_submits_per_second
            if lane.max_submits_per_second is not None:
                submits = lane.max_submits_per_second
            found[category.value] = Account(
                category.value,
                lane.secret_name,
                lane.submit_urls or self.guodu_submit_urls,
                lane.account_prefix,
                submits,
                # the recipients limit scales with the account's submits
                self.max_recipients_per_second * submits // max(1, self.max_submits_per_second)
                if self.max_recipients_per_second
                else 0,
                (category,),
            )
        return found

    def account_of(self, category: Category) -> Account:
        return next(a for a in self.accounts().values() if category in a.lanes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        table = env.get("MESSAGES_TABLE", "").strip()
        if not table:
            raise SettingsError("MESSAGES_TABLE is not set")
        prefix = _prefix(env.get("GUODU_ACCOUNT_PREFIX", ""), "GUODU_ACCOUNT_PREFIX")
        urls = _urls(env.get("GUODU_SUBMIT_URLS", ""), "GUODU_SUBMIT_URLS") or _urls(
            env.get("GUODU_SUBMIT_URL", ""), "GUODU_SUBMIT_URL"
        )
        prefixes: list[tuple[Category, str]] = []
        lane_accounts: list[LaneAccount] = []
        for category in Category:
            lane = category.value.upper()
            raw_prefix = env.get(f"GUODU_{lane}_ACCOUNT_PREFIX")
            if raw_prefix is not None:
                prefixes.append((category, _prefix(raw_prefix, f"GUODU_{lane}_ACCOUNT_PREFIX")))
            secret = env.get(f"GUODU_{lane}_SECRET_NAME", "").strip()
            if not secret:
                continue
            rate = env.get(f"GUODU_{lane}_MAX_SUBMITS_PER_SECOND", "").strip()
            lane_accounts.append(
                LaneAccount(
                    category,
                    secret,
                    _urls(env.get(f"GUODU_{lane}_SUBMIT_URLS", ""), f"GUODU_{lane}_SUBMIT_URLS"),
                    _prefix(raw_prefix or "", f"GUODU_{lane}_ACCOUNT_PREFIX"),
                    _int(env, f"GUODU_{lane}_MAX_SUBMITS_PER_SECOND", 0, 0, 10_000) if rate else None,
                )
            )
        return cls(
            messages_table=table,
            send_queue_url=env.get("SEND_QUEUE_URL", "").strip(),
            send_dlq_url=env.get("SEND_DLQ_URL", "").strip(),
            verification_queue_url=env.get("VERIFICATION_QUEUE_URL", "").strip(),
            verification_dlq_url=env.get("VERIFICATION_DLQ_URL", "").strip(),
            marketing_queue_url=env.get("MARKETING_QUEUE_URL", "").strip(),
            marketing_dlq_url=env.get("MARKETING_DLQ_URL", "").strip(),
            provider_secret_name=env.get("PROVIDER_SECRET_NAME", "").strip(),
            guodu_submit_urls=urls,
            guodu_balance_url=env.get("GUODU_BALANCE_URL", "").strip(),
            guodu_account_prefix=prefix,
            lane_account_prefixes=tuple(prefixes),
            lane_accounts=tuple(lane_accounts),
            lane_reserved_shares=tuple(_shares(env.get("LANE_RESERVED_SHARES", "")).items()),
            numbers_per_submit=_int(
                env, "GUODU_NUMBERS_PER_SUBMIT", MAX_NUMBERS_PER_CHUNK, 1, MAX_NUMBERS_PER_CHUNK
            ),
            max_recipients=_int(env, "MAX_RECIPIENTS_PER_REQUEST", 100_000, 10_000, 1_000_000),
            retention_days=_int(env, "RETENTION_DAYS", 30, 1, 3650),
            submit_max_attempts=_int(env, "SUBMIT_MAX_ATTEMPTS", 8, 1, 1000),
            retry_base_seconds=_int(env, "RETRY_BASE_SECONDS", 10, 0, 43_200),
            retry_max_seconds=_int(env, "RETRY_MAX_SECONDS", 900, 0, 43_200),
            resend_ambiguous=_bool(env, "RESEND_AMBIGUOUS", False),
            event_bus_name=env.get("EVENT_BUS_NAME", "").strip(),
            push_token_secret_name=env.get("PUSH_TOKEN_SECRET_NAME", "").strip(),
            request_id_secret_name=env.get("REQUEST_ID_SECRET_NAME", "").strip(),
            push_allowed_ips=env.get("PUSH_ALLOWED_IPS", "").strip(),
            push_ack_body=env.get("PUSH_ACK_BODY", "success"),
            push_max_body_bytes=_int(env, "PUSH_MAX_BODY_BYTES", 1_048_576, 1024, 10_485_760),
            opt_out_keywords=env.get("OPT_OUT_KEYWORDS", "").strip(),
            raw_packet_retention_days=_int(env, "RAW_PACKET_RETENTION_DAYS", 30, 1, 3650),
            max_submits_per_second=_int(env, "GUODU_MAX_SUBMITS_PER_SECOND", 20, 0, 10_000),
            max_recipients_per_second=_int(env, "GUODU_MAX_RECIPIENTS_PER_SECOND", 0, 0, 2_000_000),
            rate_margin_ms=_int(env, "GUODU_RATE_MARGIN_MS", 20, 0, 1_000),
            quiet_hours=env.get("QUIET_HOURS", "21:00-08:00").strip(),
            default_validity_seconds=_int(env, "DEFAULT_VALIDITY_SECONDS", 36_000, 60, 3 * 86_400),
            frequency_caps_verification=env.get("FREQUENCY_CAPS_VERIFICATION", "1/1m,5/1h,10/1d").strip(),
            frequency_caps_transactional=env.get("FREQUENCY_CAPS_TRANSACTIONAL", "").strip(),
            frequency_caps_marketing=env.get("FREQUENCY_CAPS_MARKETING", "").strip(),
            lane_pause_failures=_int(env, "LANE_PAUSE_FAILURES", 3, 1, 1000),
            lane_pause_window_seconds=_int(env, "LANE_PAUSE_WINDOW_SECONDS", 10, 1, 3600),
            lane_pause_base_seconds=_int(env, "LANE_PAUSE_BASE_SECONDS", 5, 0, 3600),
            lane_pause_max_seconds=_int(env, "LANE_PAUSE_MAX_SECONDS", 300, 0, 43_200),
            provider_connect_timeout=_float(env, "GUODU_CONNECT_TIMEOUT", 3.05),
            provider_read_timeout=_float(env, "GUODU_READ_TIMEOUT", 10.0),
            secret_max_age_seconds=_int(env, "SECRET_MAX_AGE_SECONDS", 300, 0, 86_400),
            aws_connect_timeout=_float(env, "AWS_CLIENT_CONNECT_TIMEOUT", 1.0),
            aws_read_timeout=_float(env, "AWS_CLIENT_READ_TIMEOUT", 3.0),
            aws_max_attempts=_int(env, "AWS_CLIENT_MAX_ATTEMPTS", 3, 1, 10),
            report_timeout_hours=_int(env, "REPORT_TIMEOUT_HOURS", 72, 0, 24 * 90),
            max_messages=_int(env, "MAX_MESSAGES_PER_REQUEST", 1_000, 1, 10_000),
            max_capped_recipients=_int(env, "MAX_CAPPED_RECIPIENTS_PER_REQUEST", 1_000, 1, 100_000),
            intake_grace_seconds=_int(env, "INTAKE_GRACE_SECONDS", 120, 1, 3_600),
            scheduled_hold_seconds=_int(env, "SCHEDULED_HOLD_SECONDS", 600, 0, 90 * 86_400),
            scheduled_release_lead_seconds=_int(env, "SCHEDULED_RELEASE_LEAD_SECONDS", 300, 120, 86_400),
            callback_queue_url=env.get("CALLBACK_QUEUE_URL", "").strip(),
            callback_allow_loopback=_bool(env, "CALLBACK_ALLOW_LOOPBACK", False),
            callback_retry_base_seconds=_int(env, "CALLBACK_RETRY_BASE_SECONDS", 30, 1, 3600),
        )

    def require(self, *names: str) -> None:
        """Fail at cold start, naming the variable, when a function lacks what it needs."""
        known = {f.name for f in fields(self)} | {"guodu_submit_url"}
        missing = [name for name in names if name in known and not getattr(self, name)]
        if missing:
            raise SettingsError(f"missing settings: {', '.join(missing)}")
