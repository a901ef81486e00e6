"""run-svc's domain layer (filled in by the run issues)."""
