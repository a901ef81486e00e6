"""serving-svc's domain layer (filled in by the serving issues)."""
