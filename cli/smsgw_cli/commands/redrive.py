"""``smsgw redrive``: move dead-lettered sends back to their lane's send queue
(``smsgw_cli.dlq``). Each lane (verification, transactional, marketing) has a queue and a
dead-letter queue of its own; by default every lane's is redriven, one after another.

This command talks to SQS (and, with ``--stack``, CloudFormation) with the operator's own
AWS credentials, not to the gateway's API: ``--url`` and ``--api-key`` play no part.
boto3 is imported only when the command runs, so ``smsgw send`` does not pay for it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from smsgw_cli.context import Command, Context, Exit
from smsgw_cli.dlq import HOLD_SECONDS, WAIT_SECONDS, DeadLetter, Redrive, RedriveReport

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# The local stack (`make run`) provisions template.yaml as stack "smsgw-local" in moto's
# us-east-1 (smsgw_local.stack.LocalGateway, smsgw_local.template.LOCAL_REGION); the
# template names the queues "${AWS::StackName}-send" and "${AWS::StackName}-send-dlq".
LOCAL_STACK_NAME = "smsgw-local"
LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = "testing"  # moto takes any; used only when none are configured
SEND_QUEUE_OUTPUT = "SendQueueUrl"
DEAD_LETTER_QUEUE_OUTPUT = "SendDeadLetterQueueUrl"
# Each lane: its stack outputs (queue, dead-letter queue) and its queue's name suffix.
LANES: dict[str, tuple[str, str, str]] = {
    "verification": ("VerificationQueueUrl", "VerificationDeadLetterQueueUrl", "-verification"),
    "transactional": (SEND_QUEUE_OUTPUT, DEAD_LETTER_QUEUE_OUTPUT, ""),
    "marketing": ("MarketingQueueUrl", "MarketingDeadLetterQueueUrl", "-marketing"),
}
MAX_WAIT_SECONDS = 20  # SQS's limit for long polling
# Errors that repeating the same command will not fix.
_REFUSED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ValidationError",
        "InvalidAddress",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidParameterValue",
    }
)

DESCRIPTION = """\
Move dead-lettered sends from each lane's dead-letter queue back to that lane's send
queue, for the submit worker to try again. Fix the cause first
(docs/operations.md#send-dlq-not-empty), look with --dry-run, then move."""

EPILOG = f"""\
where the queues are (the first that applies):
  --queue-url URL --dlq-url URL  given outright (one pair; --lane plays no part); either one
                                 overrides --stack for the lane given with --lane
  --stack NAME                   a deployed stack's outputs: {SEND_QUEUE_OUTPUT} and
                                 {DEAD_LETTER_QUEUE_OUTPUT} (transactional), Verification... and
                                 Marketing... (CloudFormation DescribeStacks; region: --region,
                                 else AWS_REGION / your profile)
  AWS_ENDPOINT_URL set           the local stack of `make run` (moto, by default
                                 http://127.0.0.1:4566): queues {LOCAL_STACK_NAME}-send[-LANE]
                                 and {LOCAL_STACK_NAME}-send[-LANE]-dlq, region {LOCAL_REGION}

lanes:
  --lane verification|transactional|marketing  that lane's queues only; default: every lane's,
  one after another (a message goes back to the queue of the lane it was dead-lettered from)

how a message moves:
  It is copied to the send queue first (same body; the worker's `reason` attribute
  dropped) and deleted from the dead-letter queue after. A crash in between leaves a
  duplicate, never a loss, and duplicates are harmless: the worker claims a chunk with
  one conditional write and never submits it twice. Messages this run looked at but did
  not move are made visible again when it ends (a --dry-run moves nothing at all).
  Messages that are not chunk references are skipped: the worker would park them again.

columns:
  RECEIVES        ApproximateReceiveCount, as the dead-letter queue reports it
  FIRST RECEIVED  ApproximateFirstReceiveTimestamp, UTC
  REASON          the worker's note when it parked the message: its attempts used up
                  (SubmitMaxAttempts), an unknown ResultCode, not a chunk message, chunk
                  not found; '-' means SQS moved it there after SubmitMaxReceiveCount
                  receives (the worker never got to handle it)

exit codes:
  0  done (or nothing to move)
  1  a usage error, refused by AWS (credentials, permissions, no such queue or stack),
     or not confirmed
  2  some messages could not be moved, or AWS could not be reached: run it again

examples:
  smsgw redrive --stack smsgw-prod --dry-run
  smsgw redrive --stack smsgw-prod --lane verification --yes
  smsgw redrive --stack smsgw-prod --request-id 0b4f6c1e-8d2a-4f7e-9c11-2a6f5e3d9b01 --yes
  AWS_ENDPOINT_URL=http://127.0.0.1:4566 smsgw redrive --dry-run"""


class LookupFailed(Exception):
    """The queues cannot be found with what the user gave."""


@dataclass(frozen=True)
class Queues:
    send: str
    dead_letter: str
    origin: str  # how they were found, for the user
    region: str | None
    endpoint_url: str | None  # None: boto3's own (AWS_ENDPOINT_URL, else AWS)
    lane: str | None = None  # None: a pair given outright


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def wait_seconds(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_WAIT_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to {MAX_WAIT_SECONDS}")
    return int(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the epilog's layout
    where = parser.add_argument_group("queues (see below for the defaults)")
    where.add_argument("--stack", metavar="NAME", help="read the queue URLs from this stack's outputs")
    where.add_argument("--queue-url", metavar="URL", help="the send queue (output SendQueueUrl)")
    where.add_argument(
        "--dlq-url", metavar="URL", help="the send dead-letter queue (output SendDeadLetterQueueUrl)"
    )
    where.add_argument("--region", help="AWS region (default: from a queue URL, else your AWS config)")
    where.add_argument(
        "--lane", choices=sorted(LANES), help="only this lane's queues (default: every lane's, in turn)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would move and move nothing; every message is visible again at once",
    )
    parser.add_argument("--max", type=positive_int, metavar="N", help="move (or list) at most N messages")
    parser.add_argument("--request-id", metavar="ID", help="only the chunks of this request")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation before moving")
    parser.add_argument(
        "--wait-seconds",
        type=wait_seconds,
        default=WAIT_SECONDS,
        metavar="S",
        help=f"long-poll time of each receive (default {WAIT_SECONDS}; 0: short polling)",
    )


# -- finding the queues ---------------------------------------------------------------
def is_aws_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def region_of(queue_url: str) -> str | None:
    """The region in an SQS URL: ``https://sqs.cn-north-1.amazonaws.com.cn/…`` (or the
    legacy ``https://cn-north-1.queue.amazonaws.com.cn/…``)."""
    if not is_aws_host(queue_url):
        return None
    labels = (urlsplit(queue_url).hostname or "").split(".")
    if labels[0] == "sqs" and len(labels) > 2:
        return labels[1]
    if len(labels) > 1 and labels[1] == "queue":
        return labels[0]
    return None


def endpoint_of(queue_url: str) -> str | None:
    """For a queue outside AWS (moto), the endpoint to call: the URL's own host."""
    if not queue_url or is_aws_host(queue_url):
        return None
    parts = urlsplit(queue_url)
    return f"{parts.scheme}://{parts.netloc}"


def _session(region: str | None, endpoint_url: str | None) -> Any:
    import boto3  # noqa: PLC0415 - see the module docstring

    session = boto3.session.Session(region_name=region)
    if endpoint_url and not is_aws_host(endpoint_url) and session.get_credentials() is None:
        session = boto3.session.Session(
            aws_access_key_id=LOCAL_CREDENTIALS, aws_secret_access_key=LOCAL_CREDENTIALS, region_name=region
        )
    return session


def sqs_client(queues: Queues) -> SQSClient:
    client: SQSClient = _session(queues.region, queues.endpoint_url).client(
        "sqs", endpoint_url=queues.endpoint_url
    )
    return client


def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    cloudformation = _session(region, None).client("cloudformation")
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])} if found else {}


def find_queues(args: argparse.Namespace, env: Mapping[str, str]) -> list[Queues]:
    """The queue pairs to redrive (one per lane), by the first rule of the epilog that applies."""
    given_send: str | None = args.queue_url
    given_dead_letter: str | None = args.dlq_url
    region: str | None = args.region
    lanes = [args.lane] if args.lane else list(LANES)
    if given_send and given_dead_letter:
        return [
            _outside_or_aws(given_send, given_dead_letter, "--queue-url and --dlq-url", region, args.lane)
        ]
    if (given_send or given_dead_letter) and not args.lane:
        raise LookupFailed("--queue-url or --dlq-url alone needs --lane (the lane whose other queue to find)")
    if args.stack:
        outputs = stack_outputs(args.stack, region)
        missing = [name for name in (SEND_QUEUE_OUTPUT, DEAD_LETTER_QUEUE_OUTPUT) if name not in outputs]
        if missing:
            raise LookupFailed(
                f"stack {args.stack!r} has no output {' or '.join(missing)}: is it this gateway's stack?"
            )
        found: list[Queues] = []
        for lane in lanes:
            queue_output, dlq_output, _ = LANES[lane]
            if queue_output not in outputs or dlq_output not in outputs:
                if args.lane:
                    raise LookupFailed(f"stack {args.stack!r} has no {lane} lane (output {queue_output})")
                continue  # a stack from before lanes: its one lane only
            found.append(
                _outside_or_aws(
                    given_send or outputs[queue_output],
                    given_dead_letter or outputs[dlq_output],
                    f"stack {args.stack}",
                    region,
                    lane,
                )
            )
        return found
    endpoint = env.get("AWS_ENDPOINT_URL")
    if endpoint:
        region = region or LOCAL_REGION
        sqs = _session(region, endpoint).client("sqs", endpoint_url=endpoint)
        local: list[Queues] = []
        for lane in lanes:
            name = f"{LOCAL_STACK_NAME}-send{LANES[lane][2]}"
            send = given_send or sqs.get_queue_url(QueueName=name)["QueueUrl"]
            dead_letter = given_dead_letter or sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
            local.append(Queues(send, dead_letter, f"the local stack at {endpoint}", region, endpoint, lane))
        return local
    raise LookupFailed(
        "which queues? Give --stack NAME (a deployed stack), or --queue-url and --dlq-url, "
        "or set AWS_ENDPOINT_URL to the local stack's moto (`make run` prints it)"
    )


def _outside_or_aws(
    send: str, dead_letter: str, origin: str, region: str | None, lane: str | None = None
) -> Queues:
    """Queues at these URLs: in AWS (region from the URL), or in a moto the URL points at."""
    endpoint = endpoint_of(send)
    return Queues(
        send,
        dead_letter,
        origin,
        region or region_of(send) or (LOCAL_REGION if endpoint else None),
        endpoint,
        lane,
    )


# -- talking to the operator ----------------------------------------------------------
def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def confirmed(ctx: Context, pairs: list[tuple[Queues, int]], args: argparse.Namespace) -> bool:
    scope = f" of request {args.request_id}" if args.request_id else ""
    most = f", at most {args.max}" if args.max else ""
    for queues, approximate in pairs:
        ctx.err.write(
            f"The dead-letter queue {queue_name(queues.dead_letter)} holds about {approximate} messages.\n"
        )
    if len(pairs) == 1:
        ctx.err.write(f"Move its chunk messages{scope}{most} to {queue_name(pairs[0][0].send)}? [y/N] ")
    else:
        targets = ", ".join(queue_name(q.send) for q, _ in pairs)
        ctx.err.write(f"Move their chunk messages{scope}{most}, each to its lane's queue ({targets})? [y/N] ")
    ctx.err.flush()
    answer = ctx.stdin.readline().decode("utf-8", errors="replace").strip().lower()
    return answer in ("y", "yes")


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in [header, *rows]
    ]


def letters_table(letters: Sequence[DeadLetter]) -> list[str]:
    rows = [
        (
            letter.message_id,
            _cell(letter.request_id),
            _cell(letter.chunk),
            str(letter.receive_count),
            _cell(letter.first_received),
            _cell(letter.reason),
        )
        for letter in letters
    ]
    return _table(("MESSAGE ID", "REQUEST ID", "CHUNK", "RECEIVES", "FIRST RECEIVED", "REASON"), rows)


def outcome_json(outcome: RedriveReport, queues: Queues) -> dict[str, Any]:
    chosen = "would_move" if outcome.dry_run else "moved"
    return {
        **({"lane": queues.lane} if queues.lane else {}),
        "dry_run": outcome.dry_run,
        "send_queue": queues.send,
        "dead_letter_queue": queues.dead_letter,
        "summary": {
            chosen: len(outcome.chosen),
            "skipped": len(outcome.skipped),
            "failed": len(outcome.failed),
        },
        chosen: [letter.as_json() for letter in outcome.chosen],
        "skipped": [{**s.letter.as_json(), "why": s.why} for s in outcome.skipped],
        "failed": [{**f.letter.as_json(), "step": f.step, "error": f.error} for f in outcome.failed],
        "unreleased": outcome.unreleased,
        "aborted": outcome.aborted,
    }


def summary_line(outcome: RedriveReport) -> str:
    counts = f"skipped {len(outcome.skipped)}, failed {len(outcome.failed)}"
    if outcome.dry_run:
        return f"would move {len(outcome.chosen)}, {counts} (dry run: nothing was moved)"
    return f"moved {len(outcome.chosen)}, {counts}"


def outcome_lines(outcome: RedriveReport) -> list[str]:
    lines: list[str] = []
    if outcome.chosen:
        lines += ["would move:" if outcome.dry_run else "moved:", *letters_table(outcome.chosen), ""]
    if outcome.skipped:
        skipped = [
            (s.letter.message_id, _cell(s.letter.request_id), _cell(s.letter.chunk), s.why)
            for s in outcome.skipped
        ]
        lines += ["skipped:", *_table(("MESSAGE ID", "REQUEST ID", "CHUNK", "WHY"), skipped), ""]
    if outcome.failed:
        failed = [
            (f.letter.message_id, _cell(f.letter.request_id), _cell(f.letter.chunk), f.step, f.error)
            for f in outcome.failed
        ]
        lines += ["failed:", *_table(("MESSAGE ID", "REQUEST ID", "CHUNK", "STEP", "ERROR"), failed), ""]
    return [*lines, summary_line(outcome)]


def outcome_notes(outcome: RedriveReport) -> list[str]:
    notes: list[str] = []
    if outcome.aborted:
        notes.append(f"error: the run stopped early: {outcome.aborted}")
    if any(f.step == "send" for f in outcome.failed):
        notes.append(
            "note: messages that failed at 'send' were not copied: they are still in the dead-letter queue"
        )
    if any(f.step == "delete" for f in outcome.failed):
        notes.append(
            "note: messages that failed at 'delete' were copied to the send queue but are still in the "
            "dead-letter queue too; moving them again later only makes a harmless duplicate"
        )
    if outcome.unreleased:
        notes.append(
            f"note: {outcome.unreleased} messages could not be made visible again at once; "
            f"they reappear within {HOLD_SECONDS} s"
        )
    if not outcome.ok:
        notes.append("hint: fix what the errors say, then run the same command again: it moves what is left")
    return notes


def aws_failure(ctx: Context, err: Exception, doing: str) -> Exit:
    """Explain a failed AWS call (botocore's exception) and choose the exit code."""
    from botocore.exceptions import (  # noqa: PLC0415 - see the module docstring
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    ctx.note(f"error: {doing}: {err}")
    if isinstance(err, NoCredentialsError):
        ctx.note("hint: configure AWS credentials (aws configure, AWS_PROFILE), or use the local stack")
        return Exit.REFUSED
    if isinstance(err, NoRegionError):
        ctx.note("hint: give --region, or set AWS_REGION")
        return Exit.REFUSED
    if isinstance(err, EndpointConnectionError):
        ctx.note("hint: is the endpoint up? (for the local stack: is `make run` running?)")
        return Exit.UNAVAILABLE
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in _REFUSED_CODES:
            return Exit.REFUSED
    return Exit.UNAVAILABLE


def run(args: argparse.Namespace, ctx: Context) -> int:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - see the module docstring

    try:
        found = find_queues(args, os.environ)
        if not found:
            return ctx.usage_error("no lane's queues were found")
        movers = [
            (
                queues,
                Redrive(
                    sqs_client(queues),
                    dead_letter_url=queues.dead_letter,
                    queue_url=queues.send,
                    wait_seconds=args.wait_seconds,
                ),
            )
            for queues in found
        ]
        for queues, _ in movers:
            lane = f"lane {queues.lane}: " if queues.lane else ""
            ctx.note(f"{lane}from {queues.dead_letter}", f"  to {queues.send}", f"  ({queues.origin})")
        if not args.dry_run and not args.yes:
            counts = [(queues, mover.approximate_count()) for queues, mover in movers]
            if not confirmed(ctx, counts, args):
                ctx.note("nothing moved (not confirmed; --yes skips the question)")
                return Exit.REFUSED
    except LookupFailed as err:
        return ctx.usage_error(str(err))
    except (BotoCoreError, ClientError) as err:
        return aws_failure(ctx, err, "cannot find or read the queues")
    outcomes: list[tuple[Queues, RedriveReport]] = []
    left = args.max
    for queues, mover in movers:
        if left is not None and left <= 0:
            break
        outcome = mover.run(dry_run=args.dry_run, limit=left, request_id=args.request_id)
        outcomes.append((queues, outcome))
        if left is not None:
            left -= len(outcome.chosen)
    report(ctx, outcomes, several=len(movers) > 1)
    return Exit.OK if all(outcome.ok for _, outcome in outcomes) else Exit.UNAVAILABLE


def report(ctx: Context, outcomes: list[tuple[Queues, RedriveReport]], *, several: bool) -> None:
    """Each lane's outcome (in JSON: one object, or ``{"lanes": [...]}`` for several)."""
    if ctx.options.json:
        replies = [outcome_json(outcome, queues) for queues, outcome in outcomes]
        ctx.say(json.dumps({"lanes": replies} if several else replies[0], ensure_ascii=False, indent=2))
    else:
        for queues, outcome in outcomes:
            ctx.say(*([f"lane {queues.lane}:"] if several else []), *outcome_lines(outcome))
    for _, outcome in outcomes:
        ctx.note(*outcome_notes(outcome))


COMMAND = Command(
    name="redrive",
    help="move dead-lettered sends back to their lane's send queue (--dry-run to look first)",
    description=DESCRIPTION,
    configure=configure,
    run=run,
    epilog=EPILOG,
)
