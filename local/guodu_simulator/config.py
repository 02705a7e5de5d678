"""The simulator's settings: accounts, latency, faults and pushes.

Plain dataclasses, settable three ways: the constructor (in-process tests), environment
variables and CLI flags (:func:`config_from_env`, ``__main__``), and at run time through
``POST /_sim/config`` with a partial JSON object (:func:`apply_patch`). A patch names
only the fields it changes; an unknown field or a value of the wrong type is refused
whole (:class:`ConfigError`) and nothing is changed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from guodu_simulator.protocol import KNOWN_CODES, MAX_CONTENT_CHARS, MAX_MOBILES

# Fault names a "next" queue entry may hold besides a ResultCode.
TRANSPORT_FAULTS = frozenset(
    {
        "http_500",
        "http_503",
        "timeout",
        "drop",
        "slow",
        "accept_then_drop",
        "accept_then_truncate",
        "accept_then_502",
    }
)
# Faults that accept the submit (MsgId, balance, reports) and then spoil the answer.
ACCEPTING_FAULTS = frozenset({"accept_then_drop", "accept_then_truncate", "accept_then_502"})
MO_FORMATS = frozenset({"guodu", "camel"})


class ConfigError(ValueError):
    """A setting the simulator cannot take; the message names the field."""


@dataclass
class Account:
    """One account of the platform (OperID → password, account code, balance, IP allow-list)."""

    oper_id: str
    password: str = field(repr=False)
    account_code: str = "13"
    balance: int = 100_000_000
    allowed_ips: list[str] = field(default_factory=list)  # empty: any source IP


@dataclass
class FaultConfig:
    """Faults of ``submitJson`` answers. Rates are probabilities in [0, 1] per submit.

    ``code_rates`` maps a ResultCode to a probability; one draw picks at most one code
    (cumulative, in the mapping's order). ``next`` is a queue consumed one entry per
    submit before any rate: a ResultCode (``"-1"``) or a transport fault name
    (``http_500``, ``http_503``, ``timeout``, ``drop``, ``slow``, ``accept_then_drop``,
    ``accept_then_truncate``: accepted, and the answer breaks off half-way;
    ``accept_then_502``: accepted, and a proxy in front answers 502 Bad Gateway).
    """

    code_rates: dict[str, float] = field(default_factory=dict)
    next: list[str] = field(default_factory=list)
    http_500_rate: float = 0.0
    http_503_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    drop_rate: float = 0.0
    accept_then_drop_rate: float = 0.0
    accept_then_truncate_rate: float = 0.0
    accept_then_502_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0


@dataclass
class PushConfig:
    """Status-report and MO pushes to the gateway (document section 3.2)."""

    url: str | None = None
    delivery_ratio: float = 0.95
    delay_min_seconds: float = 0.2
    delay_max_seconds: float = 1.0
    batch_window_seconds: float = 0.05
    max_items: int = 250
    retries: int = 3  # attempts after the first one
    retry_base_seconds: float = 0.5
    retry_factor: float = 2.0
    timeout_seconds: float = 5.0
    concurrency: int = 4
    success_msg: str = "发送成功"
    failure_status: int = 2
    failure_msgs: list[str] = field(default_factory=lambda: ["UNDELIV", "EXPIRED", "MK:0001"])
    loss_rate: float = 0.0  # a number that never gets a report ("not every MT has one")
    duplicate_rate: float = 0.0  # a packet pushed twice
    out_of_order_rate: float = 0.0  # a packet whose items are shuffled
    early_rate: float = 0.0  # a submit whose reports are pushed before its HTTP answer
    mo_format: str = "guodu"  # guodu: SrcMobile/Content(url-encoded)/RecvTime/AppendID; camel


@dataclass
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port
    sp_number: str = "106900"
    accounts: dict[str, Account] = field(default_factory=dict)
    latency_ms: float = 0.0
    latency_max_ms: float = 0.0  # above latency_ms: uniform in [latency_ms, latency_max_ms]
    max_mobiles: int = MAX_MOBILES
    max_content_chars: int = MAX_CONTENT_CHARS
    faults: FaultConfig = field(default_factory=FaultConfig)
    push: PushConfig = field(default_factory=PushConfig)
    seed: int | None = None
    log_submits: bool = True

    def add_account(self, oper_id: str, password: str, **kwargs: Any) -> SimulatorConfig:
        self.accounts[oper_id] = Account(oper_id, password, **kwargs)
        return self


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1")


def _validate_faults(faults: FaultConfig) -> None:
    for name in (
        "http_500_rate",
        "http_503_rate",
        "timeout_rate",
        "drop_rate",
        "accept_then_drop_rate",
        "accept_then_truncate_rate",
        "accept_then_502_rate",
        "slow_rate",
    ):
        _check_rate(f"faults.{name}", getattr(faults, name))
    for code, rate in faults.code_rates.items():
        _check_rate(f"faults.code_rates.{code}", rate)
    for entry in faults.next:
        if entry not in TRANSPORT_FAULTS and entry not in KNOWN_CODES and not entry.lstrip("-").isdigit():
            raise ConfigError(f"faults.next: {entry!r} is neither a ResultCode nor a fault name")
    if faults.timeout_seconds < 0 or faults.slow_seconds < 0:
        raise ConfigError("faults.timeout_seconds and faults.slow_seconds must not be negative")


def _validate_push(push: PushConfig) -> None:
    for name in ("delivery_ratio", "loss_rate", "duplicate_rate", "out_of_order_rate", "early_rate"):
        _check_rate(f"push.{name}", getattr(push, name))
    if push.delay_min_seconds < 0 or push.delay_max_seconds < push.delay_min_seconds:
        raise ConfigError("push delays must satisfy 0 <= delay_min_seconds <= delay_max_seconds")
    if not 1 <= push.max_items <= 250:
        raise ConfigError("push.max_items must be between 1 and 250 (the document's packet size)")
    if push.retries < 0 or push.concurrency < 1 or push.timeout_seconds <= 0:
        raise ConfigError("push.retries >= 0, push.concurrency >= 1, push.timeout_seconds > 0")
    if not push.failure_msgs:
        raise ConfigError("push.failure_msgs must not be empty")
    if push.mo_format not in MO_FORMATS:
        raise ConfigError(f"push.mo_format must be one of {sorted(MO_FORMATS)}")


def validate(config: SimulatorConfig) -> None:
    """The rules a patch cannot break: rates in [0, 1], sane bounds, known names."""
    _validate_faults(config.faults)
    _validate_push(config.push)
    if config.latency_ms < 0 or config.latency_max_ms < 0:
        raise ConfigError("latency must not be negative")
    if not config.sp_number.isdigit():
        raise ConfigError("sp_number is digits")
    # The document's limits may be tightened (to test a stricter platform), never loosened:
    # a gateway tested against a laxer simulator would break on the real one.
    if not 1 <= config.max_mobiles <= MAX_MOBILES:
        raise ConfigError(f"max_mobiles is 1 to {MAX_MOBILES}, the document's limit")
    if not 1 <= config.max_content_chars <= MAX_CONTENT_CHARS:
        raise ConfigError(f"max_content_chars is 1 to {MAX_CONTENT_CHARS}, the document's limit")
    for oper_id, account in config.accounts.items():
        if not account.password:
            raise ConfigError(f"accounts.{oper_id}.password must not be empty")
        if not account.account_code.isdigit():
            raise ConfigError(f"accounts.{oper_id}.account_code is digits")


def _as_float(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path} must be a number")
    return float(value)


def _as_int(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path} must be an integer")
    return value


def _as_bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false")
    return value


def _as_str(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path} must be a string")
    return value


def _as_str_list(path: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path} must be a list of strings")
    return list(value)


def _as_rates(path: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must be an object")
    return {str(key): _as_float(f"{path}.{key}", rate) for key, rate in value.items()}


def _optional(convert: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda path, value: None if value is None else convert(path, value)


# Field annotation (as the dataclasses hold it: a string) → checker/converter.
_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "float": _as_float,
    "int": _as_int,
    "bool": _as_bool,
    "str": _as_str,
    "str | None": _optional(_as_str),
    "int | None": _optional(_as_int),
    "list[str]": _as_str_list,
    "dict[str, float]": _as_rates,
}


def _patch_dataclass(target: Any, patch: Mapping[str, Any], path: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(target)}
    for key, value in patch.items():
        where = f"{path}{key}"
        spec = fields.get(key)
        if spec is None or key in ("oper_id", "accounts", "faults", "push"):
            raise ConfigError(f"unknown setting {where}")
        convert = _CONVERTERS.get(str(spec.type))
        if convert is None:  # pragma: no cover - every settable field has a converter
            raise ConfigError(f"{where} cannot be set")
        setattr(target, key, convert(where, value))


def apply_patch(config: SimulatorConfig, patch: Mapping[str, Any]) -> SimulatorConfig:
    """A new config: ``config`` with the partial update applied; ``config`` is not touched.

    Shape: top-level fields of :class:`SimulatorConfig` (``latency_ms``, ``sp_number``...),
    ``faults``/``push`` objects with some of their fields, and ``accounts`` mapping an
    OperID to some of :class:`Account`'s fields (a new OperID needs a ``password``).
    ``host`` and ``port`` cannot change at run time.
    """
    if not isinstance(patch, Mapping):
        raise ConfigError("the config patch must be a JSON object")
    updated = copy.deepcopy(config)
    for key, value in patch.items():
        if key in ("host", "port"):
            raise ConfigError(f"{key} cannot change at run time")
        if key in ("faults", "push"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key} must be an object")
            _patch_dataclass(getattr(updated, key), value, f"{key}.")
        elif key == "accounts":
            if not isinstance(value, Mapping):
                raise ConfigError("accounts must be an object")
            for oper_id, fields in value.items():
                if not isinstance(fields, Mapping):
                    raise ConfigError(f"accounts.{oper_id} must be an object")
                account = updated.accounts.get(oper_id)
                if account is None:
                    if not isinstance(fields.get("password"), str):
                        raise ConfigError(f"accounts.{oper_id}: a new account needs a password")
                    account = Account(oper_id, fields["password"])
                    updated.accounts[oper_id] = account
                _patch_dataclass(account, fields, f"accounts.{oper_id}.")
        else:
            _patch_dataclass(updated, {key: value}, "")
    validate(updated)
    return updated


def public_view(config: SimulatorConfig) -> dict[str, Any]:
    """The effective config as JSON-ready data, passwords replaced by ``"***"``."""
    data = dataclasses.asdict(config)
    for account in data["accounts"].values():
        account["password"] = "***"  # noqa: S105 - the redaction mark
    return data


def _range(text: str, name: str) -> tuple[float, float]:
    """``"5"`` → (5, 5); ``"5-20"`` → (5, 20)."""
    try:
        low, _, high = text.partition("-")
        return float(low), float(high or low)
    except ValueError as err:
        raise ConfigError(f"{name}: expected a number or LOW-HIGH, got {text!r}") from err


def _read_secret_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


ENV_VARS: dict[str, str] = {
    "GUODU_SIM_HOST": "address to bind (default 127.0.0.1)",
    "GUODU_SIM_PORT": "port to bind (CLI default 9300; 0 = ephemeral)",
    "GUODU_SIM_SP_NUMBER": "the platform's sp_number (default 106900)",
    "GUODU_SIM_OPER_ID": "the account's OperID",
    "GUODU_SIM_OPER_PASS": "the account's password (or GUODU_SIM_OPER_PASS_FILE)",
    "GUODU_SIM_OPER_PASS_FILE": "a file holding the account's password",
    "GUODU_SIM_ACCOUNT_CODE": "the account's code in the sender number (default 13)",
    "GUODU_SIM_BALANCE": "messages the account may send (default 100000000)",
    "GUODU_SIM_ALLOWED_IPS": "comma-separated source addresses/networks (default: any)",
    "GUODU_SIM_PUSH_URL": "where status reports and MO are pushed (default: no pushes)",
    "GUODU_SIM_DELIVERY_RATIO": "share of numbers reported delivered (default 0.95)",
    "GUODU_SIM_REPORT_DELAY": "seconds before a report, N or LOW-HIGH (default 0.2-1.0)",
    "GUODU_SIM_LATENCY_MS": "answer latency in ms, N or LOW-HIGH (default 0)",
    "GUODU_SIM_MO_FORMAT": "guodu (SrcMobile/Content/RecvTime/AppendID) or camel",
    "GUODU_SIM_FAULTS": 'JSON object of fault settings, e.g. {"code_rates": {"-1": 0.1}}',
    "GUODU_SIM_PUSH_FAULTS": 'JSON object of push settings, e.g. {"duplicate_rate": 0.1}',
    "GUODU_SIM_SEED": "seed of the random choices (default: random)",
    "GUODU_SIM_QUIET": "1: no per-submit log line",
}


def config_from_env(environ: Mapping[str, str] | None = None) -> SimulatorConfig:
    """A config from the ``GUODU_SIM_*`` variables of :data:`ENV_VARS` (all optional).

    An account is configured only when both an OperID and a password are given: the
    password is never defaulted (the local stack generates one and hands the same value
    to the gateway's secret store).
    """
    env = os.environ if environ is None else environ
    config = SimulatorConfig()
    if "GUODU_SIM_HOST" in env:
        config.host = env["GUODU_SIM_HOST"]
    if "GUODU_SIM_PORT" in env:
        config.port = int(env["GUODU_SIM_PORT"])
    if "GUODU_SIM_SP_NUMBER" in env:
        config.sp_number = env["GUODU_SIM_SP_NUMBER"]
    if "GUODU_SIM_SEED" in env:
        config.seed = int(env["GUODU_SIM_SEED"])
    if env.get("GUODU_SIM_QUIET", "") not in ("", "0", "false"):
        config.log_submits = False
    account = _account_from_env(env)
    if account is not None:
        config.accounts[account.oper_id] = account
    patch: dict[str, Any] = {}
    push = _push_from_env(env)
    if push:
        patch["push"] = push
    if "GUODU_SIM_LATENCY_MS" in env:
        low, high = _range(env["GUODU_SIM_LATENCY_MS"], "GUODU_SIM_LATENCY_MS")
        patch["latency_ms"], patch["latency_max_ms"] = low, high
    if env.get("GUODU_SIM_FAULTS"):
        patch["faults"] = _json_object(env["GUODU_SIM_FAULTS"], "GUODU_SIM_FAULTS")
    return apply_patch(config, patch)


def _account_from_env(env: Mapping[str, str]) -> Account | None:
    oper_id = env.get("GUODU_SIM_OPER_ID", "")
    password = env.get("GUODU_SIM_OPER_PASS", "")
    if not password and env.get("GUODU_SIM_OPER_PASS_FILE"):
        password = _read_secret_file(env["GUODU_SIM_OPER_PASS_FILE"])
    if not (oper_id and password):
        if oper_id or password:
            raise ConfigError("GUODU_SIM_OPER_ID and GUODU_SIM_OPER_PASS(_FILE) go together")
        return None
    account = Account(oper_id, password)
    if "GUODU_SIM_ACCOUNT_CODE" in env:
        account.account_code = env["GUODU_SIM_ACCOUNT_CODE"]
    if "GUODU_SIM_BALANCE" in env:
        account.balance = int(env["GUODU_SIM_BALANCE"])
    if env.get("GUODU_SIM_ALLOWED_IPS"):
        account.allowed_ips = [ip.strip() for ip in env["GUODU_SIM_ALLOWED_IPS"].split(",") if ip.strip()]
    return account


def _push_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    push: dict[str, Any] = {}
    if env.get("GUODU_SIM_PUSH_URL"):
        push["url"] = env["GUODU_SIM_PUSH_URL"]
    if "GUODU_SIM_DELIVERY_RATIO" in env:
        push["delivery_ratio"] = float(env["GUODU_SIM_DELIVERY_RATIO"])
    if "GUODU_SIM_REPORT_DELAY" in env:
        low, high = _range(env["GUODU_SIM_REPORT_DELAY"], "GUODU_SIM_REPORT_DELAY")
        push["delay_min_seconds"], push["delay_max_seconds"] = low, high
    if "GUODU_SIM_MO_FORMAT" in env:
        push["mo_format"] = env["GUODU_SIM_MO_FORMAT"]
    if env.get("GUODU_SIM_PUSH_FAULTS"):
        push.update(_json_object(env["GUODU_SIM_PUSH_FAULTS"], "GUODU_SIM_PUSH_FAULTS"))
    return push


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"{name} is not JSON") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return value
