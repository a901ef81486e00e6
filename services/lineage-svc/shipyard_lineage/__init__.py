"""lineage-svc: projections built purely from the event stream (activity feed first)."""
