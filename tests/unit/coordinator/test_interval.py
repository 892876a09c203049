"""At most once per period: one rule (``coordinator.loop.Interval``) for the coordinator's
ticks, the lease renewal and the progress bar's redraws."""

from __future__ import annotations

from distopt.coordinator.lease import Lease
from distopt.coordinator.loop import Interval
from distopt.storage import MemoryStorage


def test_due_at_most_once_per_period_the_first_call_always():
    interval = Interval(2.0)
    assert [interval.due(t) for t in (10.0, 11.0, 11.9, 12.0, 13.0, 14.5)] == [True, False, False, True, False, True]


def test_restart_counts_the_next_period_from_then():
    interval = Interval(2.0)
    interval.restart(10.0)
    assert not interval.due(11.5) and interval.due(12.0)


def test_the_lease_renews_through_an_interval_of_a_third_of_its_ttl():
    lease = Lease(MemoryStorage(), "s", ttl=30.0)  # type: ignore[arg-type]
    assert isinstance(lease._renewal, Interval) and lease._renewal.seconds == 10.0
