"""repo-svc's domain model: pure, no I/O."""
