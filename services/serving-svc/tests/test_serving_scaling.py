"""Replica scaling by load: the rules (domain.scaling)."""

from __future__ import annotations

import pytest
from shipyard_serving.domain.scaling import UNLIMITED_TARGET, LoadSample, ScaleRule, desired_replicas

RULE = ScaleRule.of(min_replicas=1, max_replicas=4, max_concurrency=10, down_delay_s=30.0)  # target 7


def _steady(in_flight: int, since: float, until: float, rejected: int = 0) -> list[LoadSample]:
    """A sample every half second from ``since`` to ``until``."""
    count = int((until - since) * 2) + 1
    return [LoadSample(since + i / 2, in_flight, rejected) for i in range(count)]


def test_the_rule_targets_70_percent_of_the_concurrency_limit() -> None:
    assert RULE.target == pytest.approx(7.0)
    assert ScaleRule.of(1, 3, 1, 30).target == 1.0  # never under one request per replica
    assert ScaleRule.of(1, 3, 0, 30).target == UNLIMITED_TARGET
    assert not ScaleRule.of(2, 2, 8, 30).scales and not ScaleRule.of(2, 0, 8, 30).scales
    assert ScaleRule.of(2, 0, 8, 30).max_replicas == 2


def test_load_above_the_target_scales_up_at_once_to_what_it_needs() -> None:
    samples = _steady(20, 98.0, 100.0)
    assert desired_replicas(RULE, samples, replicas=1, starting=0, last_change=0.0, now=100.0) == 3


def test_scaling_up_stops_at_the_maximum() -> None:
    samples = _steady(100, 98.0, 100.0)
    assert desired_replicas(RULE, samples, replicas=2, starting=0, last_change=99.0, now=100.0) == 4


def test_a_refused_request_adds_a_replica_even_when_the_average_looks_low() -> None:
    samples = [*_steady(3, 98.0, 99.5), LoadSample(100.0, 3, rejected=1)]
    assert desired_replicas(RULE, samples, replicas=1, starting=0, last_change=0.0, now=100.0) == 2


def test_nothing_more_while_a_replica_is_still_starting() -> None:
    samples = _steady(30, 98.0, 100.0, rejected=2)
    assert desired_replicas(RULE, samples, replicas=2, starting=1, last_change=99.0, now=100.0) == 2


def test_load_within_the_target_keeps_the_count() -> None:
    samples = _steady(6, 60.0, 100.0)
    assert desired_replicas(RULE, samples, replicas=1, starting=0, last_change=0.0, now=100.0) == 1


def test_idle_replicas_go_only_after_the_load_stayed_low_for_the_whole_delay() -> None:
    busy_then_idle = [*_steady(20, 60.0, 80.0), *_steady(0, 80.5, 100.0)]
    # The last 30 s still hold the busy part: keep 3.
    assert desired_replicas(RULE, busy_then_idle, replicas=3, starting=0, last_change=60.0, now=100.0) == 3
    idle = [*busy_then_idle, *_steady(0, 100.5, 111.0)]
    assert desired_replicas(RULE, idle, replicas=3, starting=0, last_change=60.0, now=111.0) == 1


def test_down_to_what_the_highest_load_of_the_window_needs_never_below_the_minimum() -> None:
    rule = ScaleRule.of(min_replicas=2, max_replicas=6, max_concurrency=10, down_delay_s=30.0)
    samples = [*_steady(10, 60.0, 80.0), LoadSample(80.5, 20), *_steady(4, 81.0, 100.0)]
    assert desired_replicas(rule, samples, replicas=6, starting=0, last_change=50.0, now=100.0) == 3
    assert desired_replicas(rule, _steady(0, 60.0, 100.0), replicas=6, starting=0,
                            last_change=50.0, now=100.0) == 2


def test_no_scale_down_soon_after_a_change_or_without_samples_for_the_window() -> None:
    idle = _steady(0, 60.0, 100.0)
    assert desired_replicas(RULE, idle, replicas=3, starting=0, last_change=90.0, now=100.0) == 3
    late_start = _steady(0, 95.0, 100.0)  # sampling began only 5 s ago (serving-svc restarted)
    assert desired_replicas(RULE, late_start, replicas=3, starting=0, last_change=50.0, now=100.0) == 3
    refusing = [*idle[:-1], LoadSample(100.0, 0, rejected=1)]
    assert desired_replicas(RULE, refusing, replicas=4, starting=1, last_change=50.0, now=100.0) == 4
