"""run-svc's entrypoints layer (filled in by the run issues)."""
