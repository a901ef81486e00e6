"""run-svc's adapters layer (filled in by the run issues)."""
