"""serving-svc's entrypoints layer (filled in by the serving issues)."""
