"""repo-svc's use cases; they take ports, never adapters."""
