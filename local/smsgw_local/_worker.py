"""Inside a function's worker process: the local stand-in for a Lambda execution environment.

:mod:`smsgw_local.runtime` starts ``python -m smsgw_local._worker FD`` with exactly the
function's environment (a fresh interpreter, like multiprocessing's *spawn*, but without
re-importing the parent's ``__main__`` or inheriting its ``sys.path`` tweaks). The process
sets itself up the way Lambda sets up a container, imports the handler once (the cold
start), then answers invocations over the connection on file descriptor ``FD`` until it
closes. Only the standard library is imported before the handler, so the cold start
measures the handler's own imports; with AWS faults on (``SMSGW_AWS_FAULTS``), the fault
hook (:mod:`smsgw_local.aws_faults`, botocore) is installed first, so that every AWS client
the handler creates has it, and the cold start includes it.

Protocol (``multiprocessing.connection`` messages):

- parent → worker, once: the :class:`WorkerConfig` as JSON bytes
- worker → parent, once: ``("ready", init_ms)`` or ``("init_error", error)``
- parent → worker: ``("invoke", request_id, event_json, deadline_epoch_ms, function_arn)``
- worker → parent: ``("ok", result_json)`` or ``("error", error)``

``error`` is the object Lambda returns for a failed invocation (``errorMessage``,
``errorType``, ``requestId``, ``stackTrace``). Events and results cross the pipe as JSON
text, as they cross Lambda's runtime API, so a handler cannot return what Lambda could not
serialise.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TextIO


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker needs, in plain types (pickled to the child)."""

    function_name: str
    handler: str  # module.function, as in the template
    code_dir: str
    layer_dirs: tuple[str, ...]
    log_prefix: str
    aws_faults: str = ""  # a spec for smsgw_local.aws_faults; "" for none
    aws_faults_seed: int | None = None  # this process's own seed

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> WorkerConfig:
        data = json.loads(raw.decode("utf-8"))
        data["layer_dirs"] = tuple(data["layer_dirs"])
        return cls(**data)


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The context object, as the Python runtime builds it (``awslambdaric``).

    Like the real one, it reads the function's name, memory size and version from the
    environment, so ``memory_limit_in_mb`` is a string.
    """

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id: str | None = None
        self.client_context: Any = None
        self.identity = CognitoIdentity()
        self._epoch_deadline_time_in_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class PrefixedStream(io.TextIOBase):
    """A text stream that writes whole lines to ``target``, each led by ``prefix``."""

    encoding = "utf-8"

    def __init__(self, target: TextIO, prefix: str) -> None:
        super().__init__()
        self._target = target
        self._prefix = prefix
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            if lines:
                self._target.write("".join(f"{self._prefix}{line}\n" for line in lines))
                self._target.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._target.write(f"{self._prefix}{self._pending}\n")
                self._pending = ""
            self._target.flush()


def _user_frames(err: BaseException) -> Any:
    """The exception's traceback without the leading frames of this module, as the
    runtime leaves out its own bootstrap frames."""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def error_object(err: BaseException, request_id: str = "") -> dict[str, Any]:
    """The error Lambda's Python runtime reports for an exception."""
    frames = traceback.format_list(traceback.extract_tb(_user_frames(err)))
    return {
        "errorMessage": str(err),
        "errorType": type(err).__name__,
        "requestId": request_id,
        "stackTrace": frames,
    }


def _log_error(err: BaseException) -> None:
    """What the runtime prints for an uncaught exception: ``[ERROR] Type: message`` + traceback."""
    trace = "".join(traceback.format_exception(type(err), err, _user_frames(err))).rstrip("\n")
    sys.stderr.write(f"[ERROR] {type(err).__name__}: {err}\n{trace}\n")
    sys.stderr.flush()


def _set_up_process(config: WorkerConfig) -> None:
    # Ctrl-C belongs to the orchestrator, which stops workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Lambda: the function's code first (/var/task), then the layers (/opt/python).
    sys.path[:0] = [config.code_dir, *config.layer_dirs]
    os.chdir(config.code_dir)
    sys.stdout = PrefixedStream(sys.__stdout__ or sys.stdout, config.log_prefix)
    sys.stderr = PrefixedStream(sys.__stderr__ or sys.stderr, config.log_prefix)


def _install_aws_faults(config: WorkerConfig) -> None:
    """The fault hook on every AWS client this process creates from now on; each injected
    fault is one ``[WARNING] aws fault injected: ...`` line of the function's output."""
    if not config.aws_faults:
        return
    from smsgw_local import aws_faults  # noqa: PLC0415 - imports botocore: only when wanted

    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    fault_log = logging.getLogger(aws_faults.__name__)
    fault_log.addHandler(output)
    fault_log.setLevel(logging.WARNING)
    fault_log.propagate = False  # once, whatever logging the handler sets up
    aws_faults.install(config.aws_faults, config.aws_faults_seed)


def _load_handler(spec: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name.replace("/", "."))
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def _invoke(
    handler: Callable[[Any, Any], Any], request_id: str, event_json: str, deadline_ms: int, arn: str
) -> tuple[str, Any]:
    try:
        event = json.loads(event_json)
        result = handler(event, LambdaContext(request_id, deadline_ms, arn))
    except Exception as err:
        _log_error(err)
        return "error", error_object(err, request_id)
    try:
        return "ok", json.dumps(result)
    except (TypeError, ValueError) as err:
        message = f"Unable to marshal response: {err}"
        sys.stderr.write(f"[ERROR] Runtime.MarshalError: {message}\n")
        return "error", {
            "errorMessage": message,
            "errorType": "Runtime.MarshalError",
            "requestId": request_id,
            "stackTrace": [],
        }
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def worker_main(config: WorkerConfig, conn: Connection) -> None:
    """The worker process: set up, import the handler once, serve invocations until EOF."""
    started = time.perf_counter()
    _set_up_process(config)
    try:
        _install_aws_faults(config)
        handler = _load_handler(config.handler)
    except Exception as err:
        _log_error(err)
        error = error_object(err)
        error["errorType"] = (
            "Runtime.ImportModuleError" if isinstance(err, ImportError) else f"Runtime.{type(err).__name__}"
        )
        error["errorMessage"] = f"Unable to import module '{config.handler}': {err}"
        conn.send(("init_error", error))
        return
    conn.send(("ready", (time.perf_counter() - started) * 1000))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the orchestrator is gone
        if not isinstance(message, tuple) or message[0] != "invoke":
            return
        _, request_id, event_json, deadline_ms, arn = message
        conn.send(_invoke(handler, request_id, event_json, deadline_ms, arn))


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[1]))
    try:
        config = WorkerConfig.from_json(conn.recv_bytes())
    except (EOFError, OSError):
        return 1
    worker_main(config, conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
