"""Quantities as people read them."""

from __future__ import annotations

import pytest

from shipyard.kit.units import human_size


@pytest.mark.parametrize(("count", "shown"), [(0, "0 B"), (1023, "1,023 B"), (1024, "1.0 KiB"),
                                              (6_451, "6.3 KiB"), (1 << 30, "1.0 GiB"), (3 << 40, "3.0 TiB"),
                                              (5 << 50, "5,120.0 TiB")])
def test_sizes_in_binary_units(count: int, shown: str) -> None:
    assert human_size(count) == shown
