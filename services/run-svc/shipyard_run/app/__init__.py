"""run-svc's app layer (filled in by the run issues)."""
