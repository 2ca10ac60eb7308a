"""The benchmarks' own arithmetic (bench/), which the BENCHMARKS.md figures rest on."""

from __future__ import annotations

import pytest

from bench.streaming import crossing, processed_rate


def test_crossing_interpolates_between_the_samples_around_the_level() -> None:
    timeline = [(0.0, 0), (10.0, 0), (12.0, 100), (14.0, 300)]
    assert crossing(timeline, 50) == pytest.approx(11.0)
    assert crossing(timeline, 200) == pytest.approx(13.0)
    assert crossing(timeline, 400) is None


def test_the_processed_rate_is_taken_between_10_and_90_percent_not_over_the_start_up() -> None:
    # 20 s of start-up, then 1,000 events/s: the start-up is not in the rate
    timeline = [(0.0, 0), (20.0, 0)] + [(20.0 + s, 1000 * s) for s in range(1, 11)] + [(40.0, 10_000)]
    assert processed_rate(timeline, 10_000) == pytest.approx(1000)


def test_no_processed_rate_when_the_count_never_reached_90_percent() -> None:
    assert processed_rate([(0.0, 0), (5.0, 500), (9.0, 800)], 1000) is None
