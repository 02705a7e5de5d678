"""Function runtimes: each function of the template runs in its own worker processes.

A :class:`FunctionPool` is to a function what Lambda's execution environments are: up to
``size`` processes (a fresh interpreter each, see :mod:`smsgw_local._worker`), each with exactly
the function's environment plus the variables Lambda sets, the layers and the code on
``sys.path``, the handler imported once (cold start) and then invoked many times (warm).

The timeout is enforced the way Lambda enforces it: when the handler has not answered by
the deadline, the invocation fails with ``Sandbox.Timedout`` and the process is killed and
replaced, so whatever it was doing stops. A process that dies mid-invocation
(``sys.exit``, a crash) fails that invocation and is replaced too. A process that dies
between invocations (killed, say) is never handed one: like Lambda, which replaces a dead
execution environment, the pool checks the process before each invocation and starts a
fresh one in its place, whose cold start that invocation pays. An invocation that finds
every process busy waits for one, as a reserved-concurrency function would queue its
event source.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from smsgw_local._worker import WorkerConfig
from smsgw_local.provision import FunctionSpec

log = logging.getLogger("smsgw_local.runtime")

# Lambda gives the init phase (imports, module-level code) ten seconds.
INIT_LIMIT_SECONDS = 10.0
# Pipe latency allowance, so that a handler that returns just in time is not killed.
DEADLINE_GRACE_SECONDS = 0.05
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class RuntimeStopped(RuntimeError):
    """The pool is stopping: no invocation is accepted any more."""


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation, as the caller of ``Invoke`` would see it."""

    function: str  # logical id
    request_id: str
    ok: bool
    payload: Any = None  # the handler's return value (when ok)
    error: dict[str, Any] | None = None  # Lambda's error object (when not ok)
    duration_ms: float = 0.0
    init_ms: float | None = None  # set when this invocation paid a cold start
    timed_out: bool = False


@dataclass
class InvocationStats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    processes_started: int = 0
    replaced: int = 0  # processes found dead between invocations, replaced before use


def lambda_environment(
    spec: FunctionSpec,
    *,
    region: str,
    endpoint_url: str,
    runtime: str = "python3.13",
) -> dict[str, str]:
    """The whole environment of a worker: the function's variables, then Lambda's own.

    Lambda refuses a function that sets a reserved variable, so Lambda's values win here.
    Credentials are fake and every AWS client goes to ``endpoint_url`` (moto); the shared
    AWS config files are hidden so that nothing in the developer's profile leaks in.
    """
    env = dict(spec.environment)
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            **FAKE_CREDENTIALS,
        }
    )
    return env


def process_seed(seed: int, function: str, serial: int) -> int:
    """The fault seed of one worker process: distinct for every process of every function,
    and the same again for the same stack seed."""
    digest = hashlib.sha256(f"{seed}/{function}/{serial}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _Worker:
    """One worker process and the parent's end of its connection."""

    def __init__(self, config: WorkerConfig, environment: Mapping[str, str], name: str) -> None:
        self.name = name
        parent_socket, child_socket = socket.socketpair()
        try:
            # A session of its own: Ctrl-C in the terminal reaches the orchestrator, which
            # stops the workers itself, never a KeyboardInterrupt inside a handler.
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "smsgw_local._worker", str(child_socket.fileno())],
                env=dict(environment),
                cwd=config.code_dir,
                pass_fds=(child_socket.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            child_socket.close()
        self.conn = Connection(parent_socket.detach())
        self.conn.send_bytes(config.to_json())
        self.lock = threading.Lock()
        self.state = "starting"  # -> ready | failed
        self.init_ms: float | None = None
        self.init_error: dict[str, Any] | None = None
        self.used = False

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the cold start to end; False (and ``init_error``) when it failed."""
        with self.lock:
            if self.state != "starting":
                return self.state == "ready"
            message = _receive(self.conn, timeout)
            if message is None:
                self._fail("Runtime.InitTimeout", f"init did not finish in {timeout:.0f} seconds")
            elif message == "eof":
                self._fail("Runtime.ExitError", f"process exited during init ({self.exit_detail()})")
            elif message[0] == "ready":
                self.state, self.init_ms = "ready", float(message[1])
            else:
                self.state, self.init_error = "failed", dict(message[1])
            return self.state == "ready"

    def _fail(self, error_type: str, message: str) -> None:
        self.state = "failed"
        self.init_error = {"errorType": error_type, "errorMessage": message, "stackTrace": []}

    def exit_detail(self) -> str:
        try:
            code = self.process.wait(0.5)
        except subprocess.TimeoutExpired:
            return "still running"
        return f"signal {-code}" if code < 0 else f"exit status {code}"

    def stop(self, *, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()

    def reap(self, timeout: float = 2.0) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self.conn.close()


def _receive(conn: Connection, timeout: float) -> Any:
    """The next message, ``"eof"`` when the process is gone, None on timeout."""
    try:
        if not conn.poll(timeout):
            return None
        return conn.recv()
    except (EOFError, OSError):
        return "eof"


class FunctionPool:
    """Up to ``size`` warm processes for one function, and invocations on them."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        *,
        size: int,
        log_prefix: str,
        invoked_arn: str,
        init_timeout: float = INIT_LIMIT_SECONDS,
        aws_faults: str = "",
        aws_faults_seed: int = 0,
    ) -> None:
        """``aws_faults``: a :mod:`smsgw_local.aws_faults` spec installed in every process
        before its handler is imported, each process seeded from ``aws_faults_seed``."""
        if size < 1:
            raise ValueError("a function pool needs at least one process")
        self.spec = spec
        self.size = size
        self.stats = InvocationStats()
        self._environment = dict(environment)
        self._log_prefix = log_prefix
        self._arn = invoked_arn
        self._init_timeout = init_timeout
        self._aws_faults = aws_faults
        self._aws_faults_seed = aws_faults_seed
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._serial = 0

    @property
    def name(self) -> str:
        return self.spec.logical_id

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start every process now (they import in parallel); do not wait for them."""
        for _ in range(self.size):
            self._idle.put(self._spawn())

    def wait_ready(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait until every process has finished its cold start; the init errors, if any."""
        limit = self._init_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        errors: list[dict[str, Any]] = []
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if not worker.wait_ready(max(0.0, deadline - time.monotonic())) and worker.init_error:
                errors.append(worker.init_error)
        return errors

    def pids(self) -> list[int]:
        """The process ids of the pool's worker processes (to kill one in a test, say)."""
        with self._lock:
            return [worker.process.pid for worker in self._workers]

    def stop(self) -> None:
        """Stop every process (an invocation under way fails); returns when they are gone."""
        self._stopped.set()
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.reap()

    def _spawn(self) -> _Worker:
        with self._lock:
            self._serial += 1
            serial = self._serial
        environment = dict(self._environment)
        environment["AWS_LAMBDA_LOG_STREAM_NAME"] = (
            f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        )
        config = WorkerConfig(
            function_name=self.spec.name,
            handler=self.spec.handler,
            code_dir=str(self.spec.code_dir),
            layer_dirs=tuple(str(path) for path in self.spec.layer_dirs),
            log_prefix=self._log_prefix,
            aws_faults=self._aws_faults,
            aws_faults_seed=process_seed(self._aws_faults_seed, self.spec.logical_id, serial),
        )
        worker = _Worker(config, environment, f"{self.spec.logical_id}-{serial}")
        with self._lock:
            self._workers.add(worker)
            self.stats.processes_started += 1
        return worker

    def _acquire(self) -> _Worker:
        while True:
            if self._stopped.is_set():
                raise RuntimeStopped(f"{self.name} is stopping")
            try:
                worker = self._idle.get(timeout=0.2)
            except queue.Empty:
                continue
            # A process that finished its init and has exited since (killed while idle) is
            # replaced before it gets the invocation. One that died during its init is
            # left to report its init failure, as Lambda reports one.
            if worker.process.poll() is None or not worker.wait_ready(0):
                return worker
            log.warning(
                "%s%s exited between invocations (%s): replaced by a fresh process",
                self._log_prefix,
                worker.name,
                worker.exit_detail(),
            )
            self._count(replaced=1)
            fresh = self._discard(worker)
            if fresh is None:
                raise RuntimeStopped(f"{self.name} is stopping")
            return fresh

    def _discard(self, worker: _Worker) -> _Worker | None:
        """Kill ``worker``; a fresh process takes its place unless the pool is stopping."""
        with self._lock:
            self._workers.discard(worker)
        worker.stop(kill=True)
        worker.reap(1.0)
        if self._stopped.is_set():
            return None
        return self._spawn()

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    # -- invocation -------------------------------------------------------------------
    def invoke(self, event: Any, *, request_id: str | None = None) -> Invocation:
        """Invoke the function synchronously (``RequestResponse``) with ``event``."""
        event_json = json.dumps(event)
        request_id = request_id or str(uuid.uuid4())
        acquired = self._acquire()
        worker: _Worker | None = acquired
        try:
            invocation, keep = self._invoke_on(acquired, event_json, request_id)
            if not keep:
                worker = self._discard(acquired)
            return invocation
        finally:
            if worker is not None:
                if self._stopped.is_set():
                    worker.stop()
                    worker.reap(1.0)
                else:
                    self._idle.put(worker)

    def _invoke_on(self, worker: _Worker, event_json: str, request_id: str) -> tuple[Invocation, bool]:
        """Run one invocation on ``worker``; also whether the worker may be kept."""
        cold = not worker.used
        if not worker.wait_ready(self._init_timeout):
            error = dict(worker.init_error or {})
            error.setdefault("requestId", request_id)
            log.error("%sinit failed: %s", self._log_prefix, error.get("errorMessage"))
            self._count(invocations=1, errors=1, cold_starts=1)
            return Invocation(self.name, request_id, ok=False, error=error), False
        worker.used = True
        if cold:
            log.info("%scold start: ready in %.0f ms", self._log_prefix, worker.init_ms or 0.0)
        timeout = float(self.spec.timeout)
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        started = time.perf_counter()
        try:
            worker.conn.send(("invoke", request_id, event_json, deadline_ms, self._arn))
            message = _receive(worker.conn, timeout + DEADLINE_GRACE_SECONDS)
        except OSError:
            message = "eof"
        duration = (time.perf_counter() - started) * 1000
        init_ms = worker.init_ms if cold else None
        self._count(invocations=1, cold_starts=int(cold))
        if message is None:
            log.warning("%s%s Task timed out after %.2f seconds", self._log_prefix, request_id, timeout)
            self._count(errors=1, timeouts=1)
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            }
            return Invocation(self.name, request_id, False, None, error, duration, init_ms, True), False
        if message == "eof":
            detail = worker.exit_detail()
            log.error("%s%s the process exited mid-invocation (%s)", self._log_prefix, request_id, detail)
            self._count(errors=1)
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited ({detail})",
            }
            return Invocation(self.name, request_id, False, None, error, duration, init_ms), False
        kind, value = message
        log.debug(
            "%sREPORT RequestId: %s Duration: %.2f ms%s",
            self._log_prefix,
            request_id,
            duration,
            f" Init Duration: {init_ms:.2f} ms" if init_ms is not None else "",
        )
        if kind == "ok":
            return Invocation(self.name, request_id, True, json.loads(value), None, duration, init_ms), True
        self._count(errors=1)
        return Invocation(self.name, request_id, False, None, dict(value), duration, init_ms), True
