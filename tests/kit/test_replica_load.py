"""A model server's load page (shipyard.kit.replica_load): written by the model server, read by
serving-svc's replica scaling."""

from __future__ import annotations

import pytest

from shipyard.kit.replica_load import ReplicaLoad, format_load, parse_load


def test_the_load_page_is_prometheus_text_and_reads_back() -> None:
    load = ReplicaLoad(in_flight=3, accepted=1200, rejected=7)
    page = format_load(load)
    assert "# TYPE shipyard_model_requests_in_flight gauge" in page
    assert "shipyard_model_requests_rejected_total 7\n" in page
    assert parse_load(page) == load
    assert parse_load(page.replace(" 1200", " 1.2e3")) == load  # any Prometheus number


@pytest.mark.parametrize("page", [
    "",
    "shipyard_model_requests_in_flight 1\nshipyard_model_requests_total 2\n",
    "shipyard_model_requests_in_flight -1\nshipyard_model_requests_total 2\n"
    "shipyard_model_requests_rejected_total 0\n",
    "shipyard_model_requests_in_flight NaN\nshipyard_model_requests_total 2\n"
    "shipyard_model_requests_rejected_total 0\n",
])
def test_a_load_page_without_sane_counts_is_refused(page: str) -> None:
    with pytest.raises(ValueError, match="shipyard_model_requests"):
        parse_load(page)
