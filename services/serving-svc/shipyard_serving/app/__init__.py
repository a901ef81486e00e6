"""serving-svc's app layer (filled in by the serving issues)."""
