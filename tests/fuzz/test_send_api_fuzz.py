"""``POST /v1/messages`` against anything a client can send.

The contract: 202, or 400 (validation_failed, invalid_json, too_many_invalid), 409
(idempotency_key_reused), 429 (frequency_capped); errors as
``{"error": {"code", "message", "details"}}``; never a 5xx for bad input; a refused
request stores nothing and queues nothing; an accepted one is stored whole.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import SEND_ANSWERS, Answer, Effects, FuzzedGateway, error_problems
from tests.fuzz.strategies import content_types, idempotency_keys, send_body_texts


def accepted_problems(fuzzed: FuzzedGateway, answer: Answer, effects: Effects) -> list[str]:
    """A 202 names a request that is stored whole: its header, every chunk, every message."""
    reply = answer.json()
    request_id = reply.get("id")
    if reply.get("status") != "accepted" or not isinstance(reply.get("recipients"), int):
        return [f"a 202 without the accepted reply: {answer.body[:300]}"]
    header = fuzzed.item(f"REQ#{request_id}", "META")
    if header is None:
        return [f"202 for request {request_id}, which is not stored"]
    if f"REQ#{request_id}/META" not in effects.written:
        return []  # an idempotent replay: nothing more is stored or sent
    chunk_count = int(header["chunk_count"]["N"])
    chunks = {name for name in effects.written if name.startswith(f"REQ#{request_id}/CHUNK#")}
    problems = []
    if len(chunks) != chunk_count:
        problems.append(f"request {request_id}: {len(chunks)} chunks stored, {chunk_count} planned")
    if effects.queued != chunk_count:
        problems.append(f"request {request_id}: {effects.queued} messages queued for {chunk_count} chunks")
    return problems


def post_and_check(
    fuzzed: FuzzedGateway, body: str, headers: dict[str, str], *, base64_encoded: bool = False
) -> tuple[Answer, list[str]]:
    answer, effects = fuzzed.send(body, headers=headers, base64_encoded=base64_encoded)
    problems = error_problems(answer, SEND_ANSWERS)
    if answer.status == 202:
        problems += accepted_problems(fuzzed, answer, effects)
        fuzzed.drain_send_queue()
    else:
        problems += [f"stored by a refused request: {change}" for change in effects.stored()[:5]]
    return answer, problems


@settings(settings.get_profile("fuzz"), max_examples=250)
@given(
    body=send_body_texts,
    key=idempotency_keys,
    content_type=content_types,
    base64_encoded=st.sampled_from([False] * 9 + [True]),
)
def test_the_send_api_answers_only_what_the_contract_documents(
    fuzzed: FuzzedGateway, body: str, key: str | None, content_type: str, base64_encoded: bool
) -> None:
    """Given any body (near-valid or hostile) with any Idempotency-Key and Content-Type,
    when it is posted to /v1/messages,
    then the answer is 202 or a documented 4xx with the contract's error body, a refused
    request writes and queues nothing, and an accepted one is stored whole."""
    headers = {"Content-Type": content_type, **({"Idempotency-Key": key} if key is not None else {})}

    answer, problems = post_and_check(fuzzed, body, headers, base64_encoded=base64_encoded)

    event(f"HTTP {answer.status} {answer.code}")
    assert not problems, f"HTTP {answer.status} for {body[:300]!r}:\n" + "\n".join(problems)


HOSTILE_BODIES = {
    # Boundaries and traps that must stay refused with a 4xx.
    "1001 invalid numbers": json.dumps({"to": ["x"] * 1001, "content": "【测试】hi"}),
    "NaN validity": '{"to": ["13800138000"], "content": "【测试】hi", "valid_for": NaN}',
    "send_at beyond year 9999": '{"to": ["13800138000"], "content": "【测试】hi", "send_at": 1e400}',
    "a key twice": '{"to": 5, "to": ["13800138000"], "content": 7}',
    "form-encoded": "to=13800138000&content=hi",
    "an array": '[{"to": ["13800138000"], "content": "hi"}]',
    # Found by the fuzzer (see the report): answered 5xx.
    "nested 100000 deep": "[" * 100_000 + "]" * 100_000,
    "content with half an emoji": '{"to": ["13800138000"], "content": "【测试】\\ud83d"}',
    "a recipient with half an emoji": '{"to": ["13800138006", "\\ud83d"], "content": "【测试】hi"}',
    "a 420 KB junk recipient": json.dumps({"to": ["13800138007", "x" * 420_000], "content": "【测试】hi"}),
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_hostile_body_gets_a_documented_answer_and_stores_nothing_if_refused(
    fuzzed: FuzzedGateway, body: str
) -> None:
    """Given a body built to hit a boundary or a trap,
    when it is posted to /v1/messages,
    then the answer is a documented one, and a refusal leaves nothing stored or queued."""
    answer, problems = post_and_check(fuzzed, body, {"Content-Type": "application/json"})

    assert not problems, f"HTTP {answer.status}: {answer.body[:200]}\n" + "\n".join(problems)


def test_a_reused_idempotency_key_with_another_body_is_refused_and_changes_nothing(
    fuzzed: FuzzedGateway,
) -> None:
    """Given a request accepted under an Idempotency-Key,
    when the same key comes with a different body,
    then the answer is 409 idempotency_key_reused and nothing is stored or queued."""
    headers = {"Idempotency-Key": "fuzz-reused-key"}
    first, problems = post_and_check(
        fuzzed, json.dumps({"to": ["13800138008"], "content": "【测试】一"}), headers
    )
    assert first.status == 202, problems

    second, problems = post_and_check(
        fuzzed, json.dumps({"to": ["13800138008"], "content": "【测试】二"}), headers
    )

    assert second.status == 409, second.body
    assert not problems, "\n".join(problems)
