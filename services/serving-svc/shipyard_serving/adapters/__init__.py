"""serving-svc's adapters layer (filled in by the serving issues)."""
