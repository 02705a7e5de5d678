"""Retry delays and settings: the knobs an operator turns."""

from __future__ import annotations

import pytest

from smsgw.services.submit import RetryPolicy
from smsgw.settings import Settings, SettingsError


def test_retry_delays_grow_with_jitter_and_stop_at_the_cap() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=900, max_attempts=8)
    lowest = [policy.backoff(n, rng=lambda: 0.0) for n in range(1, 10)]
    highest = [policy.backoff(n, rng=lambda: 0.999999) for n in range(1, 10)]
    assert lowest == [5, 10, 20, 40, 80, 160, 320, 450, 450]
    assert highest == [9, 19, 39, 79, 159, 319, 639, 899, 899]


def test_zero_base_means_retry_at_once() -> None:
    assert RetryPolicy(base_seconds=0).backoff(5) == 0


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MESSAGES_TABLE": "t",
            "SUBMIT_MAX_ATTEMPTS": "5",
            "RESEND_AMBIGUOUS": "true",
            "GUODU_ACCOUNT_PREFIX": "10690013",
        }
    )
    assert (settings.messages_table, settings.submit_max_attempts, settings.resend_ambiguous) == (
        "t",
        5,
        True,
    )
    assert settings.numbers_per_submit == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MESSAGES_TABLE"),
        ({"MESSAGES_TABLE": "t", "GUODU_NUMBERS_PER_SUBMIT": "201"}, "between 1 and 200"),
        ({"MESSAGES_TABLE": "t", "RESEND_AMBIGUOUS": "maybe"}, "true or false"),
        ({"MESSAGES_TABLE": "t", "GUODU_ACCOUNT_PREFIX": "10a"}, "digits"),
        ({"MESSAGES_TABLE": "t", "RETRY_BASE_SECONDS": "ten"}, "integer"),
    ],
)
def test_bad_settings_stop_the_cold_start_with_the_variables_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_a_function_names_the_settings_it_lacks() -> None:
    with pytest.raises(SettingsError, match="send_queue_url"):
        Settings.from_env({"MESSAGES_TABLE": "t"}).require("send_queue_url")
