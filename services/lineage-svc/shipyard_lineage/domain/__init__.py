"""lineage-svc's domain model: pure, no I/O."""
