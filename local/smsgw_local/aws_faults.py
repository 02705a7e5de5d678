"""Injected AWS faults: chosen AWS calls fail the way the service would make them fail.

A spec names the calls and what happens to them, one draw per attempt::

    dynamodb.TransactWriteItems=throttle:0.2,sqs.SendMessageBatch=error:0.1,dynamodb.UpdateItem=lost:0.1

``service`` is the boto3 client name, ``Operation`` the API's operation name (or ``*`` for
every operation of the service), then a kind and the probability that an attempt gets it:

- ``throttle``: the service's own throttling error (DynamoDB
  ``ProvisionedThroughputExceededException``, SQS ``RequestThrottled``, others
  ``ThrottlingException``; HTTP 400), nothing applied;
- ``error``: the service's 5xx (DynamoDB ``InternalServerError`` 500, EventBridge
  ``InternalException`` 500, Secrets Manager ``InternalServiceError`` 500, others
  ``ServiceUnavailable`` 503), nothing applied;
- ``timeout``: a read timeout before the call reaches the service, nothing applied;
- ``lost``: the call reaches the service and is applied, then its answer is lost as a
  read timeout.

How. botocore sends every attempt through the ``before-send`` event of the client's event
emitter; a handler that returns a response answers the attempt instead of the network,
and an exception it raises is the attempt's failure. So a fault is an answer in the
service's own wire protocol (JSON or REST-JSON), parsed by botocore's parser, or a
:class:`~botocore.exceptions.ReadTimeoutError`, and botocore's retry handler (legacy or
standard mode, with its retry quota) treats it exactly as it would treat the real thing.
Each retry is a new attempt and a new draw. Nothing in botocore or moto is patched.

Three details of that event make the handler what it is:

- every ``before-send`` handler is called even after one has answered, and moto's
  ``mock_aws`` is one that answers by applying the call. So the fault handler is
  registered first, and an attempt it answers with an error is pointed at an address no
  handler serves (:data:`NOWHERE`), so that no later handler applies it;
- ``lost`` must apply the call: the handler emits ``before-send`` once more without itself
  (moto in process answers there), else sends the request over the client's own HTTP
  session, reads the whole answer, drops it and raises the read timeout, which stops the
  chain;
- the handler needs its client (its emitter, its HTTP session), so it is registered per
  client. :meth:`AwsFaults.apply_to` does that for one client, or for every client a given
  session creates afterwards; :func:`install` does it for every client created afterwards
  in the process: it adds a ``creating-client-class`` handler to botocore's
  ``BUILTIN_HANDLERS`` (which every new botocore session registers: boto3 sessions,
  ``boto3.client(...)``, Powertools' own clients) and to boto3's default session if it
  exists. That handler gives the client class of a named service a base class whose
  ``__init__`` applies the faults (the extension point boto3 documents for client
  classes). Clients created before :func:`install` keep no hook: their emitters are copies
  made at creation, and nothing lists them. The local stack installs before the handler
  is imported, so every client of a handler has it.

Each injected fault is logged (logger ``smsgw_local.aws_faults``, WARNING) as one line:
``aws fault injected: dynamodb.PutItem lost (...)``.

What botocore then does is botocore's, measured with the pinned version (1.44):

- its default retry mode is ``standard`` (3 attempts), which retries every kind here;
- ``legacy`` mode retries them all too, except SQS's ``RequestThrottled``: its legacy rule
  expects HTTP 403 (the old XML API), and SQS's JSON protocol answers 400;
- standard mode spends a per-client retry quota (500 tokens; a retry after a throttle
  costs 5, after a 5xx, a timeout or a lost answer 14; a success gives some back): at
  high fault rates it runs dry and botocore stops retrying, as it would against AWS.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import random
import sys
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore import handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.hooks import first_non_none_response
from botocore.loaders import Loader, create_loader
from botocore.model import ServiceModel

log = logging.getLogger("smsgw_local.aws_faults")

KINDS = ("throttle", "error", "timeout", "lost")
# Where an attempt answered with an injected error is pointed, so that no later
# ``before-send`` handler (moto's mock_aws) applies it. ``.invalid`` never resolves (RFC 2606).
NOWHERE = "http://aws-fault-injected.invalid/"
# The protocols an injected ``throttle`` or ``error`` answer can be written in.
JSON_PROTOCOLS = ("json", "rest-json")
EXAMPLE = "dynamodb.PutItem=throttle:0.2"
HISTORY = 100_000


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class FaultRule:
    service: str  # the boto3 client name: dynamodb, sqs, events, secretsmanager, ...
    operation: str  # PutItem, ..., or "*" for every operation of the service
    kind: str  # one of KINDS
    probability: float  # per attempt


@dataclass(frozen=True)
class Injection:
    """One injected fault."""

    service: str
    operation: str
    kind: str


@dataclass(frozen=True)
class _Answer:
    status: int
    code: str
    message: str
    namespace: str = ""  # the ``__type`` prefix the service writes before the code


_DEFAULT_ANSWERS = {
    "throttle": _Answer(400, "ThrottlingException", "Rate exceeded"),
    "error": _Answer(503, "ServiceUnavailable", "Service is unavailable. Try again later."),
}
# Each service's own answer, as its API reference documents it.
_ANSWERS = {
    ("dynamodb", "throttle"): _Answer(
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
        "com.amazonaws.dynamodb.v20120810",
    ),
    ("dynamodb", "error"): _Answer(
        500, "InternalServerError", "Internal server error", "com.amazonaws.dynamodb.v20120810"
    ),
    ("sqs", "throttle"): _Answer(400, "RequestThrottled", "Request is throttled.", "com.amazonaws.sqs"),
    ("sqs", "error"): _Answer(503, "ServiceUnavailable", "Service is unavailable.", "com.amazonaws.sqs"),
    ("events", "error"): _Answer(500, "InternalException", "Internal service error."),
    ("secretsmanager", "error"): _Answer(500, "InternalServiceError", "Internal service error."),
}


@functools.cache
def _loader() -> Loader:
    return create_loader()


@functools.cache
def _service_model(service: str) -> ServiceModel:
    return ServiceModel(_loader().load_service_model(service, "service-2"), service_name=service)


def _problem(entry: str, problem: str) -> FaultSpecError:
    return FaultSpecError(
        f"bad AWS fault {entry!r}: {problem} (expected service.Operation=kind:probability, e.g. {EXAMPLE})"
    )


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_entry(entry: str) -> FaultRule:
    target, equals, fault = entry.partition("=")
    service, dot, operation = target.strip().partition(".")
    kind, colon, raw_probability = fault.strip().partition(":")
    if not (equals and dot and colon and service and operation):
        raise _problem(entry, "not in the form service.Operation=kind:probability")
    kind = kind.strip()
    if kind not in KINDS:
        raise _problem(entry, f"unknown kind {kind!r}, expected one of {', '.join(KINDS)}")
    try:
        probability = float(raw_probability)
    except ValueError:
        probability = math.nan
    if not 0.0 <= probability <= 1.0:
        raise _problem(entry, f"the probability {raw_probability.strip()!r} is not a number from 0 to 1")
    services = _loader().list_available_services("service-2")
    if service not in services:
        raise _problem(
            entry, f"unknown service {service!r} (the boto3 client name){_suggest(service, services)}"
        )
    model = _service_model(service)
    if operation != "*" and operation not in model.operation_names:
        raise _problem(
            entry, f"{service} has no operation {operation!r}{_suggest(operation, model.operation_names)}"
        )
    if kind in ("throttle", "error") and model.resolved_protocol not in JSON_PROTOCOLS:
        raise _problem(
            entry,
            f"{service} speaks {model.resolved_protocol}; throttle and error answers are written in"
            f" {' or '.join(JSON_PROTOCOLS)} only (timeout and lost work for every service)",
        )
    return FaultRule(service, operation, kind, probability)


def parse_spec(spec: str) -> tuple[FaultRule, ...]:
    """The rules of a spec; :class:`FaultSpecError` names the first entry that is wrong."""
    rules: list[FaultRule] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        rule = _parse_entry(entry)
        if any((r.service, r.operation, r.kind) == (rule.service, rule.operation, rule.kind) for r in rules):
            raise _problem(entry, f"{rule.service}.{rule.operation}={rule.kind} is given twice")
        rules.append(rule)
    for rule in rules:
        # One draw per attempt picks at most one kind: the chances of an operation add up.
        share = sum(
            r.probability for r in rules if r.service == rule.service and r.operation in ("*", rule.operation)
        )
        if share > 1.0 + 1e-9:
            raise _problem(
                f"{rule.service}.{rule.operation}={rule.kind}:{rule.probability:g}",
                f"the probabilities of {rule.service}.{rule.operation} add up to {share:g}, more than 1",
            )
    return tuple(rules)


class _Body:
    """The raw body of an injected answer, as botocore reads one (``stream()``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


# Set while a ``lost`` call is delivered, so the nested ``before-send`` skips the fault handler.
_delivering = threading.local()


class AwsFaults:
    """A fault spec with its random draws. Apply it to clients or sessions, or :func:`install` it."""

    def __init__(
        self, spec: str | Sequence[FaultRule], seed: int | None = None, *, services: Sequence[str] = ()
    ) -> None:
        """``services``: clients of these services get the hook too (for :meth:`script`)."""
        self.rules = parse_spec(spec) if isinstance(spec, str) else tuple(spec)
        self.seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._history: deque[Injection] = deque(maxlen=HISTORY)
        self._script: dict[tuple[str, str], deque[str | None]] = {}
        self._services = {rule.service for rule in self.rules} | set(services)
        self._service_ids = {_service_model(s).service_id.hyphenize(): s for s in self._services}
        self._unique_id = f"smsgw-aws-faults-{uuid.uuid4().hex}"
        faults = self

        class AwsFaultsClient:
            """A base class of the client classes of the named services: applies the faults."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                faults.apply_to(self)

        self._client_base = AwsFaultsClient

    def __repr__(self) -> str:
        return f"AwsFaults({len(self.rules)} rules, seed={self.seed})"

    @property
    def injected(self) -> tuple[Injection, ...]:
        """The faults injected so far, in order (the last 100,000)."""
        with self._lock:
            return tuple(self._history)

    def counts(self) -> Counter[tuple[str, str]]:
        """Injected faults by ``("service.Operation", kind)``."""
        return Counter((f"{i.service}.{i.operation}", i.kind) for i in self.injected)

    # -- where the faults apply ---------------------------------------------------------
    def apply_to(self, target: Any) -> None:
        """Apply the faults to a client, or to every client a session creates from now on
        (a ``boto3.session.Session`` or a ``botocore.session.Session``)."""
        meta = getattr(target, "meta", None)
        if meta is not None and hasattr(meta, "service_model"):
            self._apply_to_client(target)
            return
        events = getattr(target, "events", None)  # boto3.session.Session
        if events is None and hasattr(target, "get_component"):  # botocore.session.Session
            events = target.get_component("event_emitter")
        if events is None:
            raise TypeError(f"not a boto3/botocore client or session: {target!r}")
        events.register(
            "creating-client-class", self._on_creating_client_class, unique_id=f"{self._unique_id}-session"
        )

    def _apply_to_client(self, client: Any) -> None:
        model = client.meta.service_model
        if model.service_name not in self._services:
            return
        client.meta.events.register_first(
            f"before-send.{model.service_id.hyphenize()}",
            functools.partial(self._before_send, client),
            # Not the session's id: a client's emitter is a copy of its session's, ids included.
            unique_id=f"{self._unique_id}-client",
        )

    def _on_creating_client_class(self, base_classes: list[type], event_name: str, **_: Any) -> None:
        if event_name.rpartition(".")[2] in self._service_ids:
            base_classes.insert(0, self._client_base)

    def script(self, target: str, *kinds: str | None) -> None:
        """The next attempts of ``service.Operation`` get ``kinds``, in order, before any
        random draw: a kind of :data:`KINDS`, or None for an attempt that goes through.
        For a test that needs one exact sequence: the first claim's answer lost, say."""
        for kind in kinds:
            _parse_entry(f"{target}={kind or 'timeout'}:1")  # a known service, operation and kind
        service, _, operation = target.partition(".")
        if service not in self._services:
            raise FaultSpecError(f"{target}: {service} clients have no hook; name it in services=")
        with self._lock:
            self._script.setdefault((service, operation), deque()).extend(kinds)

    # -- one attempt --------------------------------------------------------------------
    def _draw(self, service: str, operation: str) -> str | None:
        with self._lock:
            scripted = self._script.get((service, operation))
            if scripted:
                return scripted.popleft()
        rules = [r for r in self.rules if r.service == service and r.operation in ("*", operation)]
        if not rules:
            return None
        with self._lock:
            draw = self._random.random()
        edge = 0.0
        for rule in rules:
            edge += rule.probability
            if draw < edge:
                return rule.kind
        return None

    def _before_send(
        self, client: Any, request: AWSPreparedRequest, event_name: str, **_: Any
    ) -> AWSResponse | None:
        if getattr(_delivering, "active", False):
            return None
        model: ServiceModel = client.meta.service_model
        service, operation = model.service_name, event_name.rpartition(".")[2]
        kind = self._draw(service, operation)
        if kind is None:
            return None
        if kind == "timeout":
            self._record(service, operation, kind, "read timeout before the call reached the service")
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "lost":
            self._deliver(client, request, event_name)
            self._record(
                service, operation, kind, "applied by the service, its answer lost as a read timeout"
            )
            raise ReadTimeoutError(endpoint_url=request.url)
        answer = _ANSWERS.get((service, kind), _DEFAULT_ANSWERS[kind])
        response = _response(model, answer, request.url)
        self._record(service, operation, kind, f"{answer.code}, HTTP {answer.status}")
        request.url = NOWHERE  # see the module docstring: no later handler may apply it
        return response

    def _deliver(self, client: Any, request: AWSPreparedRequest, event_name: str) -> None:
        """Apply the call as botocore would: a ``before-send`` answer (moto in process),
        else the client's own HTTP session. The answer is read whole, then dropped."""
        _delivering.active = True
        try:
            answer = first_non_none_response(client.meta.events.emit(event_name, request=request))
        finally:
            _delivering.active = False
        if answer is None:
            answer = client._endpoint.http_session.send(request)  # the endpoint's own session
        _ = answer.content

    def _record(self, service: str, operation: str, kind: str, detail: str) -> None:
        with self._lock:
            self._history.append(Injection(service, operation, kind))
        log.warning("aws fault injected: %s.%s %s (%s)", service, operation, kind, detail)


def _response(model: ServiceModel, answer: _Answer, url: str) -> AWSResponse:
    """``answer`` as the service writes an error in its protocol (JSON or REST-JSON)."""
    code = f"{answer.namespace}#{answer.code}" if answer.namespace else answer.code
    body = json.dumps({"__type": code, "message": answer.message}).encode("utf-8")
    version = model.metadata.get("jsonVersion", "1.0")
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    json_type = (
        f"application/x-amz-json-{version}" if model.resolved_protocol == "json" else "application/json"
    )
    headers["Content-Type"] = json_type
    headers["Content-Length"] = str(len(body))
    headers["x-amzn-ErrorType"] = answer.code
    if "awsQueryCompatible" in model.metadata:  # SQS: the error code of its former query API
        headers["x-amzn-query-error"] = f"{answer.code};{'Sender' if answer.status < 500 else 'Receiver'}"
    return AWSResponse(url, answer.status, headers, _Body(body))


_installed: tuple[AwsFaults, tuple[str, Any]] | None = None


def install(spec: str, seed: int | None = None, *, services: Sequence[str] = ()) -> AwsFaults:
    """Apply ``spec`` to every boto3/botocore client created from now on in this process
    (and to boto3's default session, if it exists already). Replaces an earlier install.
    ``services``: clients of these get the hook too, for rules set or scripted later."""
    global _installed  # noqa: PLW0603 - one install per process, like botocore's own handlers
    faults = AwsFaults(spec, seed, services=services)
    uninstall()
    entry = ("creating-client-class", faults._on_creating_client_class)
    handlers.BUILTIN_HANDLERS.append(entry)
    boto3 = sys.modules.get("boto3")
    if boto3 is not None and boto3.DEFAULT_SESSION is not None:
        faults.apply_to(boto3.DEFAULT_SESSION)
    _installed = (faults, entry)
    return faults


def installed() -> AwsFaults | None:
    """The faults :func:`install` applies, if any."""
    return _installed[0] if _installed else None


def uninstall() -> None:
    """Clients and sessions created from now on get no faults (clients made earlier keep theirs)."""
    global _installed  # noqa: PLW0603
    if _installed is None:
        return
    faults, entry = _installed
    _installed = None
    if entry in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.remove(entry)
    boto3 = sys.modules.get("boto3")
    if boto3 is not None and boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.unregister(
            "creating-client-class",
            faults._on_creating_client_class,
            unique_id=f"{faults._unique_id}-session",
        )
