"""No sliding second exceeds the limit across several worker processes: real processes,
one moto server, the simulator's own received timestamps (bench/ratewindow.py, which
section 10 of the benchmarks runs at 20, 200 and 1,000 submits a second)."""

from __future__ import annotations

from bench import ratewindow


def test_no_sliding_second_exceeds_the_limit_across_worker_processes() -> None:
    # Given a limit of 20 submits a second and 12 workers in 4 processes, each submitting as
    # fast as the limiter lets it, for 4 seconds (real time: no scaling at this rate)
    result = ratewindow.run(20, seconds=4, processes=4, threads=3)
    assert result["scale"] == 1.0
    # Then no one-second window of what the platform received, wherever it begins, holds
    # more than 20
    assert result["busiest_window"] <= 20, result
    # And the workers really pressed on the limit (else the check above proves nothing):
    # the limit was reached, and the rate came near its ceiling of 20 / 1.1
    assert result["busiest_window"] >= 18, result
    assert result["share_of_limit"] >= 0.85, result
    assert result["submits"] >= 60
