"""The whole gateway on one machine: moto, the functions, the API, the pollers, the simulator.

:class:`LocalGateway` is what ``make run`` (``python -m smsgw_local``) starts and what the
end-to-end tests use. Start-up order, chosen so that the slow parts overlap:

1. the moto server process starts (it binds in the background);
2. the API's socket is bound (its port is in the simulator's push URL);
3. the Guodu simulator starts with a freshly generated OperID/OperPass, unless
   ``GUODU_SUBMIT_URL`` points the worker elsewhere;
4. once moto answers, the template is provisioned (the provider secret holds the same
   credentials as the simulator's account, ``GuoduSubmitUrl`` is the simulator's URL, the
   push-token secret holds ``SMSGW_PUSH_TOKEN``), and the simulator is told to push to
   the local push route, if the template has one;
5. every function's worker processes start at once and import their handlers in parallel;
6. the API serves, the SQS pollers and the schedules run.

Settings come from the constructor, else from the environment (see :data:`ENV_VARS`),
else from the defaults. Template parameters: the template's defaults, then the values the
stack derives (``GuoduSubmitUrl``, ``GuoduMaxSubmitsPerSecond``), then
``SMSGW_PARAM_<ParameterName>`` variables, then the constructor's ``parameters``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import secrets
import shlex
import string
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from guodu_simulator import Simulator, SimulatorConfig, config_from_env
from smsgw.adapters.callers import new_secret, settings_key
from smsgw_local.apigw import ApiServer, ApiSettings, LocalApiGateway, Route, gateway_responses_of
from smsgw_local.aws_faults import FaultSpecError, parse_spec
from smsgw_local.moto_server import MotoServer
from smsgw_local.provision import FunctionSpec, Provisioned, provision
from smsgw_local.runtime import FunctionPool, Invocation, InvocationStats, lambda_environment
from smsgw_local.schedules import Schedule, UnsupportedSchedule
from smsgw_local.sqs_source import SqsEventSource
from smsgw_local.template import (
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    TEMPLATE_PATH,
    Context,
    TemplateError,
    load_template,
    resolve,
    resources_of_type,
)

log = logging.getLogger("smsgw_local")

DEFAULT_API_PORT = 3000
DEFAULT_SIMULATOR_PORT = 9300
DEFAULT_MOTO_PORT = 4566
DEFAULT_API_KEY = "local-dev-key"
DEFAULT_PUSH_TOKEN = "local-push-token"  # noqa: S105 - the documented local default
DEFAULT_API_CONCURRENCY = 2
API_KEY_ID = "local-api-key-id"
PUSH_PATH_PREFIX = "/v1/guodu/push/"
PARAM_PREFIX = "SMSGW_PARAM_"
PROVIDER_SECRET = "ProviderSecret"  # noqa: S105 - a logical id
PUSH_TOKEN_SECRET = "PushTokenSecret"  # noqa: S105 - a logical id
LANES = ("verification", "transactional", "marketing")
FAKE_ACCESS_KEY = "testing"

ENV_VARS: dict[str, str] = {
    "SMSGW_API_PORT": f"port of the local API (default {DEFAULT_API_PORT}; 0: any free port)",
    "SMSGW_API_KEY": f"the API key the local API accepts (default {DEFAULT_API_KEY})",
    "SMSGW_API_KEYS": "comma-separated API keys the local API accepts, each its own caller"
    " (default: SMSGW_API_KEY)",
    "SMSGW_PUSH_TOKEN": f"the {{token}} of the local push URL (default {DEFAULT_PUSH_TOKEN})",
    "SMSGW_PUSH_URL": "where the simulator pushes reports (default: the local push route, if any)",
    "SMSGW_SIMULATOR_PORT": f"port of the embedded simulator (default {DEFAULT_SIMULATOR_PORT})",
    "SMSGW_MOTO_PORT": f"port of the moto server (default {DEFAULT_MOTO_PORT}; 0: any free port)",
    "SMSGW_API_CONCURRENCY": f"worker processes per API function (default {DEFAULT_API_CONCURRENCY})",
    "GUODU_SUBMIT_URL": "submit to this platform instead of starting the simulator",
    "GUODU_SUBMIT_URLS": "the platform's addresses, comma-separated, in order of preference (failover);"
    " instead of the simulator",
    "GUODU_<LANE>_OPER_ID": "with SMSGW_PARAM_<Lane>Account=own: that lane's own OperID (default: generated)",
    "GUODU_<LANE>_OPER_PASS": "with SMSGW_PARAM_<Lane>Account=own: that lane's own password"
    " (default: generated)",
    "GUODU_<LANE>_SUBMIT_URLS": "with SMSGW_PARAM_<Lane>Account=own: that lane's own platform addresses"
    " (default: the shared ones)",
    "GUODU_OPER_ID": "the provider account's OperID (default: generated at start-up)",
    "GUODU_OPER_PASS": "the provider account's password (default: generated at start-up)",
    "GUODU_MAX_SUBMITS_PER_SECOND": "the template parameter GuoduMaxSubmitsPerSecond, when it has one",
    "SMSGW_PARAM_<Name>": "the value of the template parameter <Name>",
    "SMSGW_LOG_LEVEL": "the stack's own log level (default INFO; DEBUG adds a REPORT line per invocation)",
    "SMSGW_AWS_FAULTS": (
        "injected AWS faults in every function's processes: service.Operation=kind:probability,..."
        " (kinds throttle, error, timeout, lost); the stack's own calls are exempt"
    ),
    "SMSGW_AWS_FAULTS_SEED": "seeds the injected faults (default: random, printed at start-up)",
    "SMSGW_SCHEDULE_SECONDS": "run every scheduled function (the reconciler, the balance check) this often"
    " instead of at its template rate",
    "SMSGW_CALLBACK_SECRET": "the first API key's callback signing secret (default: generated at start-up;"
    " GET /v1/callback shows it)",
}


class StackError(RuntimeError):
    """The local stack cannot start with these settings."""


def _random_text(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _port(value: int | None, env: Mapping[str, str], name: str, default: int) -> int:
    if value is not None:
        return value
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65_535:
        raise StackError(f"{name} must be a port number (0 for any free port), got {raw!r}")
    return int(raw)


def _api_keys(given: Sequence[str] | None, env: Mapping[str, str]) -> list[str]:
    """The API keys: given, else SMSGW_API_KEYS, else SMSGW_API_KEY, else the default."""
    if given is None:
        listed = env.get("SMSGW_API_KEYS", "").strip()
        single = env.get("SMSGW_API_KEY") or DEFAULT_API_KEY
        given = [part.strip() for part in listed.split(",")] if listed else [single]
    keys = [key for key in given if key]
    if not keys:
        raise StackError("SMSGW_API_KEYS names no key")
    if len(set(keys)) != len(keys):
        raise StackError("SMSGW_API_KEYS names a key twice")
    if any(not (key.isascii() and key.isprintable()) for key in keys):
        raise StackError("an API key must be printable ASCII (it travels in a header)")
    return keys


def api_key_id(position: int) -> str:
    """The id of the local API's key number ``position`` (0: the first)."""
    return API_KEY_ID if position == 0 else f"{API_KEY_ID}-{position + 1}"


def _submit_urls(env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The platform's addresses set in ``env``: ``GUODU_SUBMIT_URL`` (one) and
    ``GUODU_SUBMIT_URLS`` (an ordered list; its first is the one when the other is unset)."""
    one = env.get("GUODU_SUBMIT_URL", "").strip() or None
    listed = [u.strip() for u in env.get("GUODU_SUBMIT_URLS", "").split(",") if u.strip()]
    return one or (listed[0] if listed else None), listed


def _schedule_seconds(value: float | None, env: Mapping[str, str]) -> float | None:
    if value is not None:
        return value
    raw = env.get("SMSGW_SCHEDULE_SECONDS", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise StackError(f"SMSGW_SCHEDULE_SECONDS must be a number of seconds above 0, got {raw!r}")
    return seconds


def _short_name(logical_id: str) -> str:
    return logical_id.removesuffix("Function") or logical_id


class LocalGateway:
    """The gateway on one machine. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        api_port: int | None = None,
        simulator_port: int | None = None,
        moto_port: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        simulator: bool | SimulatorConfig | None = None,
        api_key: str | None = None,
        api_keys: Sequence[str] | None = None,
        push_token: str | None = None,
        push_url: str | None = None,
        api_concurrency: int | None = None,
        template_path: Path | None = None,
        host: str = "127.0.0.1",
        stack_name: str = "smsgw-local",
        aws_faults: str | None = None,
        aws_faults_seed: int | None = None,
        schedule_seconds: float | None = None,
    ) -> None:
        """``env`` is where settings are read from (default: ``os.environ``); ``simulator``
        is True/False to force the embedded simulator on or off, or a
        :class:`SimulatorConfig` to start it from (its account and push URL are set by the
        stack); None starts it unless ``GUODU_SUBMIT_URL`` is set. ``push_url`` "" means
        no pushes. ``api_keys``: the keys the API accepts, each its own caller (``api_key``:
        just one). ``aws_faults`` (``SMSGW_AWS_FAULTS``): AWS faults injected in every
        function's processes (see :mod:`smsgw_local.aws_faults`), seeded from
        ``aws_faults_seed`` (``SMSGW_AWS_FAULTS_SEED``; default random); provisioning, the
        SQS pollers and the schedules run here, in the orchestrator, and are exempt.
        ``schedule_seconds`` (``SMSGW_SCHEDULE_SECONDS``): every scheduled function runs this
        often instead of at its template rate (default: the template's)."""
        self._env = dict(os.environ if env is None else env)
        env_ = self._env
        self.host = host
        self.stack_name = stack_name
        self.region = LOCAL_REGION
        self.account = LOCAL_ACCOUNT
        self._api_port = _port(api_port, env_, "SMSGW_API_PORT", DEFAULT_API_PORT)
        self._simulator_port = _port(simulator_port, env_, "SMSGW_SIMULATOR_PORT", DEFAULT_SIMULATOR_PORT)
        self._moto_port = _port(moto_port, env_, "SMSGW_MOTO_PORT", DEFAULT_MOTO_PORT)
        self.api_keys = _api_keys(
            api_keys if api_keys is not None else ([api_key] if api_key else None), env_
        )
        self.api_key = self.api_keys[0]
        self.push_token = push_token or env_.get("SMSGW_PUSH_TOKEN") or DEFAULT_PUSH_TOKEN
        self._push_url_setting = push_url if push_url is not None else env_.get("SMSGW_PUSH_URL")
        concurrency = api_concurrency or int(env_.get("SMSGW_API_CONCURRENCY") or DEFAULT_API_CONCURRENCY)
        if concurrency < 1:
            raise StackError("SMSGW_API_CONCURRENCY must be at least 1")
        self._api_concurrency = concurrency
        self._parameters = dict(parameters or {})
        self._template_path = template_path or TEMPLATE_PATH
        self._external_submit_url, self._external_submit_urls = _submit_urls(env_)
        if simulator is None:
            simulator = self._external_submit_url is None
        self._simulator_setting = simulator
        self._oper_id = env_.get("GUODU_OPER_ID") or f"local{_random_text(6, string.digits)}"
        self._oper_pass = env_.get("GUODU_OPER_PASS") or _random_text(24)
        # Lanes with an account of their own (<Lane>Account=own): lane -> (OperID, password).
        self.lane_accounts: dict[str, tuple[str, str]] = {}
        self.aws_faults, self.aws_faults_seed = _aws_faults(aws_faults, aws_faults_seed, env_)
        self.schedule_seconds = _schedule_seconds(schedule_seconds, env_)
        # The first caller's callback signing secret (callbacks are delivered locally too).
        self.callback_secret = env_.get("SMSGW_CALLBACK_SECRET") or new_secret()

        self.simulator: Simulator | None = None
        self.provisioned: Provisioned | None = None
        self.api_url = ""
        self.stage_name = ""
        self.push_url: str | None = None
        self.submit_url = ""
        self.moto_url = ""
        self.startup_seconds = 0.0
        self.init_errors: dict[str, list[dict[str, Any]]] = {}
        self.pools: dict[str, FunctionPool] = {}
        self.event_sources: dict[str, list[SqsEventSource]] = {}
        self.schedules: list[Schedule] = []
        self._moto: MotoServer | None = None
        self._api: ApiServer | None = None
        self._clients: dict[str, Any] = {}
        self._session: boto3.session.Session | None = None
        self._started = False
        self._stopped = False

    # -- life cycle -------------------------------------------------------------------
    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalGateway:
        if self._started:
            return self
        if self._stopped:
            raise StackError("a LocalGateway starts once; make a new one")
        began = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        self.startup_seconds = time.perf_counter() - began
        log.info("local stack ready in %.1f s", self.startup_seconds)
        return self

    def _start(self) -> None:
        template = load_template(self._template_path)
        self.lane_accounts = self._own_lane_accounts(template)
        self._moto = MotoServer(self.host, self._moto_port)
        self._moto.start()
        try:
            self._api = ApiServer(self.host, self._api_port)
        except OSError as err:
            raise StackError(f"cannot listen on {self.host}:{self._api_port} for the API: {err}") from err
        self.api_url = self._api.url
        self.stage_name = _stage_name(template, self._parameters, self._env)
        self.submit_url = self._start_simulator()
        began = time.perf_counter()
        self.moto_url = self._moto.wait_ready()
        log.debug("moto answers at %s after %.2f s more", self.moto_url, time.perf_counter() - began)
        self._session = boto3.session.Session(
            aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_ACCESS_KEY, region_name=self.region
        )
        began = time.perf_counter()
        self.provisioned = provision(
            parameters=self._template_parameters(template),
            secret_values=self._secret_values(template),
            session=self._session,
            endpoint_url=self.moto_url,
            stack_name=self.stack_name,
            template_path=self._template_path,
        )
        log.debug("provisioned in %.2f s", time.perf_counter() - began)
        self._seed_callback_secret(self.provisioned)
        self.push_url = self._resolve_push_url(self.provisioned)
        if self.simulator is not None:
            self.simulator.configure({"push": {"url": self.push_url}})
        if self.aws_faults:
            log.warning(
                "AWS faults in every function's processes: %s (SMSGW_AWS_FAULTS_SEED=%d replays them)",
                self.aws_faults,
                self.aws_faults_seed,
            )
        began = time.perf_counter()
        self._start_functions(template, self.provisioned)
        log.debug("every worker process ready in %.2f s", time.perf_counter() - began)
        self._start_api(template, self.provisioned)
        self._start_event_sources(self.provisioned)

    def stop(self) -> None:
        """Stop everything (pollers, API, simulator, workers, moto); safe to call twice."""
        for sources in self.event_sources.values():
            for source in sources:
                source.signal_stop()
        for schedule in self.schedules:
            schedule.stop()
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self.simulator is not None:
            self.simulator.stop()
        for pool in self.pools.values():
            pool.stop()
        for sources in self.event_sources.values():
            for source in sources:
                source.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._started = False
        self._stopped = True

    # -- settings ---------------------------------------------------------------------
    def _resolve_push_url(self, provisioned: Provisioned) -> str | None:
        """The URL the simulator pushes to: the setting, else the local push route (when the
        template has one) under the stage, as the URL registered with Guodu would be."""
        if self._push_url_setting is not None:
            return self._push_url_setting or None
        routes = [route for spec in provisioned.functions.values() for route in spec.api_routes]
        if not any(route.path.startswith(PUSH_PATH_PREFIX) for route in routes):
            return None
        return f"{self.api_url}/{self.stage_name}{PUSH_PATH_PREFIX}{self.push_token}"

    def _seed_callback_secret(self, provisioned: Provisioned) -> None:
        """The first API key's callbacks are signed with ``callback_secret``."""
        if "MessagesTable" not in provisioned.context.refs or self._session is None:
            return
        session: Any = self._session
        session.client("dynamodb", endpoint_url=self.moto_url).put_item(
            TableName=provisioned.ref("MessagesTable"),
            Item={
                **settings_key(api_key_id(0)),
                "secret": {"S": self.callback_secret},
                "caller": {"S": api_key_id(0)},
            },
        )

    def _start_simulator(self) -> str:
        """Start the embedded simulator if wanted; the URL the worker submits to."""
        setting = self._simulator_setting
        if setting is not False:
            # Not given one: the GUODU_SIM_* variables shape it (delivery ratio, report delay,
            # latency, faults: see local/guodu_simulator/README.md).
            config = (
                copy.deepcopy(setting) if isinstance(setting, SimulatorConfig) else config_from_env(self._env)
            )
            config.host = self.host
            config.port = self._simulator_port
            config.add_account(self._oper_id, self._oper_pass)
            for oper_id, password in self.lane_accounts.values():
                if oper_id not in config.accounts:
                    config.add_account(oper_id, password)
            config.push.url = None  # set once the template's routes are known
            self.simulator = Simulator(config)
            try:
                self.simulator.start()
            except OSError as err:
                self.simulator = None
                raise StackError(
                    f"cannot listen on {self.host}:{self._simulator_port} for the simulator: {err}"
                ) from err
        if self._external_submit_url:
            return self._external_submit_url
        return self.simulator.submit_url if self.simulator is not None else ""

    def _template_parameters(self, template: Mapping[str, Any]) -> dict[str, Any]:
        declared = template.get("Parameters", {})
        values: dict[str, Any] = {}
        if "GuoduSubmitUrl" in declared and self.submit_url:
            values["GuoduSubmitUrl"] = self.submit_url
        if "GuoduSubmitUrls" in declared and self._external_submit_urls:
            values["GuoduSubmitUrls"] = ",".join(self._external_submit_urls)
        for lane in self.lane_accounts:
            urls = self._env.get(f"GUODU_{lane.upper()}_SUBMIT_URLS", "").strip()
            if urls and f"{lane.title()}GuoduSubmitUrls" in declared:
                values[f"{lane.title()}GuoduSubmitUrls"] = urls
        if "CallbackAllowLoopback" in declared:
            # Callback receivers of a local run are on this machine.
            values["CallbackAllowLoopback"] = "true"
        rate = self._env.get("GUODU_MAX_SUBMITS_PER_SECOND", "").strip()
        if rate and "GuoduMaxSubmitsPerSecond" in declared:
            values["GuoduMaxSubmitsPerSecond"] = rate
        elif rate:
            log.warning(
                "GUODU_MAX_SUBMITS_PER_SECOND is ignored: the template has no GuoduMaxSubmitsPerSecond"
            )
        values.update(_env_parameters(self._env))
        values.update(self._parameters)
        return values

    def _secret_values(self, template: Mapping[str, Any]) -> dict[str, str]:
        """The provider secret holds the simulator account's credentials, the push-token
        secret the token of the local push URL."""
        resources = template.get("Resources", {})
        values: dict[str, str] = {}
        if PROVIDER_SECRET in resources:
            values[PROVIDER_SECRET] = json.dumps({"oper_id": self._oper_id, "oper_pass": self._oper_pass})
        if PUSH_TOKEN_SECRET in resources:
            values[PUSH_TOKEN_SECRET] = self.push_token
        for lane, (oper_id, password) in self.lane_accounts.items():
            values[f"{lane.title()}{PROVIDER_SECRET}"] = json.dumps(
                {"oper_id": oper_id, "oper_pass": password}
            )
        return values

    def _own_lane_accounts(self, template: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """The lanes whose ``<Lane>Account`` parameter is ``own``, with the credentials of
        their account: GUODU_<LANE>_OPER_ID/_OPER_PASS, else generated (and given to the
        embedded simulator)."""
        declared = template.get("Parameters", {})
        given = {**_env_parameters(self._env), **self._parameters}
        found: dict[str, tuple[str, str]] = {}
        for lane in LANES:
            name = f"{lane.title()}Account"
            if name not in declared or str(given.get(name, declared[name].get("Default"))) != "own":
                continue
            upper = lane.upper()
            oper_id = self._env.get(f"GUODU_{upper}_OPER_ID") or f"{lane[:4]}{_random_text(6, string.digits)}"
            found[lane] = (oper_id, self._env.get(f"GUODU_{upper}_OPER_PASS") or _random_text(24))
        return found

    @property
    def oper_id(self) -> str:
        """The provider account's OperID (its password is in the provider secret only)."""
        return self._oper_id

    # -- functions --------------------------------------------------------------------
    def _start_functions(self, template: Mapping[str, Any], provisioned: Provisioned) -> None:
        width = max((len(_short_name(name)) for name in provisioned.functions), default=0)
        for logical, spec in provisioned.functions.items():
            size = sum(source.max_concurrency for source in spec.sqs_sources)
            size += self._api_concurrency if spec.api_routes else 0
            size += sum(1 for schedule in spec.schedules if schedule.enabled)
            pool = FunctionPool(
                spec,
                lambda_environment(
                    spec,
                    region=self.region,
                    endpoint_url=self.moto_url,
                    runtime=_runtime_of(template, logical),
                ),
                size=max(1, size),
                log_prefix=f"{_short_name(logical):<{width}} | ",
                invoked_arn=f"arn:aws:lambda:{self.region}:{self.account}:function:{spec.name}",
                aws_faults=self.aws_faults,
                aws_faults_seed=self.aws_faults_seed,
            )
            self.pools[logical] = pool
            pool.start()  # every process of every function imports at the same time
        for logical, pool in self.pools.items():
            errors = pool.wait_ready()
            if errors:
                self.init_errors[logical] = errors
                log.error("%s cannot start: %s", logical, errors[0].get("errorMessage"))

    def _start_api(self, template: Mapping[str, Any], provisioned: Provisioned) -> None:
        if self._api is None:
            return
        routes = [
            Route(route.method, route.path, logical, route.api_key_required)
            for logical, spec in provisioned.functions.items()
            for route in spec.api_routes
        ]
        settings = ApiSettings(
            stage=self.stage_name,
            api_key=self.api_key,
            api_key_id=api_key_id(0),
            more_api_keys={key: api_key_id(n) for n, key in enumerate(self.api_keys) if n},
            api_id=hashlib.sha256(self.stack_name.encode()).hexdigest()[:10],
            account=self.account,
            region=self.region,
            binary_media_types=_binary_media_types(template),
            gateway_responses=gateway_responses_of(template, provisioned.context),
        )
        timeouts = {logical: float(spec.timeout) for logical, spec in provisioned.functions.items()}
        self._api.start(LocalApiGateway(settings, routes, self.invoke, timeouts))

    def _start_event_sources(self, provisioned: Provisioned) -> None:
        for logical, spec in provisioned.functions.items():
            pool = self.pools[logical]
            for source in spec.sqs_sources:
                mapping = SqsEventSource(
                    logical, source, pool.invoke, self._sqs_poller_client(), region=self.region
                )
                self.event_sources.setdefault(logical, []).append(mapping)
                mapping.start()
            for number, schedule in enumerate(spec.schedules):
                if not schedule.enabled:
                    continue
                try:
                    self.schedules.append(
                        Schedule(
                            logical,
                            schedule.expression,
                            pool.invoke,
                            rule_arn=f"arn:aws:events:{self.region}:{self.account}:rule/{logical}-{number}",
                            account=self.account,
                            region=self.region,
                            period=self.schedule_seconds,
                        )
                    )
                except UnsupportedSchedule as err:
                    log.warning("%s: schedule skipped: %s", logical, err)
        for running in self.schedules:
            running.start()

    def _sqs_poller_client(self) -> Any:
        if self._session is None:
            raise StackError("the stack is not provisioned")
        session: Any = self._session
        return session.client(
            "sqs",
            endpoint_url=self.moto_url,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, read_timeout=30, connect_timeout=5
            ),
        )

    # -- use --------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for ``service``, pointed at the local moto."""
        if service not in self._clients:
            if self._session is None:
                raise StackError("the stack is not started")
            session: Any = self._session
            self._clients[service] = session.client(service, endpoint_url=self.moto_url)
        return self._clients[service]

    def invoke(self, function: str, event: dict[str, Any]) -> Invocation:
        """Invoke a function of the template by logical id, synchronously."""
        return self.pools[function].invoke(event)

    def stats(self, function: str) -> InvocationStats:
        return copy.copy(self.pools[function].stats)

    def disable_event_source(self, function: str) -> None:
        """Stop feeding ``function`` from its queues (``Enabled: false`` on the mapping)."""
        for source in self.event_sources.get(function, []):
            source.disable()

    def enable_event_source(self, function: str) -> None:
        for source in self.event_sources.get(function, []):
            source.enable()

    @property
    def functions(self) -> dict[str, FunctionSpec]:
        return dict(self.provisioned.functions) if self.provisioned else {}

    def banner(self) -> str:
        """What ``make run`` prints once everything is up (never the provider password)."""
        lines = [f"smsgw local stack ready in {self.startup_seconds:.1f} s", ""]
        lines.append(
            f"  API        {self.api_url}   (also under /{self.stage_name}/)   x-api-key: {self.api_key}"
        )
        if len(self.api_keys) > 1:
            lines.append(f"             more keys, each its own caller: {', '.join(self.api_keys[1:])}")
        if self.simulator is not None:
            lines.append(
                f"  Simulator  {self.simulator.base_url}   (admin: {self.simulator.base_url}/_sim/submits;"
                f" OperID {self.oper_id})"
            )
        else:
            lines.append(f"  Provider   {self.submit_url or '(none)'}")
        lines.append(f"  Moto       {self.moto_url}   (aws --endpoint-url {self.moto_url} sqs list-queues)")
        if self.push_url:
            lines.append(f"  Push URL   {self.push_url}")
        if self.aws_faults:
            lines.append(f"  AWS faults {self.aws_faults}   (SMSGW_AWS_FAULTS_SEED={self.aws_faults_seed})")
        lines.append("  Callbacks  signed with SMSGW_CALLBACK_SECRET (GET /v1/callback shows it)")
        lines.append("")
        routes = [route for spec in self.functions.values() for route in spec.api_routes]
        for route in routes:
            lines.append(f"  {route.method:<6} {self.api_url}{route.path}")
        key_header = shlex.quote(f"x-api-key: {self.api_key}")
        body = shlex.quote(json.dumps({"to": ["13800138000"], "content": "【示例】您好"}, ensure_ascii=False))
        lines += [
            "",
            "Send a message:",
            f"  curl -H {key_header} -H 'content-type: application/json' -d {body}"
            f" {self.api_url}/v1/messages",
            "Its status (the id comes back in the answer):",
            f"  curl -H {key_header} {self.api_url}/v1/messages/<id>",
            "",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


def _aws_faults(spec: str | None, seed: int | None, env: Mapping[str, str]) -> tuple[str, int]:
    """The fault spec (checked now, so that a typo stops the start, not every worker) and
    the seed: given, else from the environment, else random (printed, to replay a run)."""
    spec = (spec if spec is not None else env.get("SMSGW_AWS_FAULTS", "")).strip()
    try:
        parse_spec(spec)
    except FaultSpecError as err:
        raise StackError(f"SMSGW_AWS_FAULTS: {err}") from err
    if seed is not None:
        return spec, seed
    raw = env.get("SMSGW_AWS_FAULTS_SEED", "").strip()
    if not raw:
        return spec, secrets.randbelow(2**31)
    try:
        return spec, int(raw)
    except ValueError:
        raise StackError(f"SMSGW_AWS_FAULTS_SEED must be an integer, got {raw!r}") from None


def _env_parameters(env: Mapping[str, str]) -> dict[str, str]:
    return {name[len(PARAM_PREFIX) :]: value for name, value in env.items() if name.startswith(PARAM_PREFIX)}


def _stage_name(template: Mapping[str, Any], parameters: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The stage of the template's (first) API, with the parameters as they will be."""
    declared = template.get("Parameters", {})
    given = {**_env_parameters(env), **parameters}
    values = {
        name: given.get(name, spec.get("Default"))
        for name, spec in declared.items()
        if name in given or "Default" in spec
    }
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        try:
            return str(
                resolve(api.get("Properties", {}).get("StageName", "Prod"), Context(parameters=values))
            )
        except TemplateError:
            continue
    return "Prod"


def _binary_media_types(template: Mapping[str, Any]) -> tuple[str, ...]:
    types: list[str] = []
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        types.extend(str(t) for t in api.get("Properties", {}).get("BinaryMediaTypes", []))
    return tuple(types)


def _runtime_of(template: Mapping[str, Any], logical: str) -> str:
    globals_ = template.get("Globals", {}).get("Function", {})
    props = template.get("Resources", {}).get(logical, {}).get("Properties", {})
    return str(props.get("Runtime", globals_.get("Runtime", "python3.13")))
