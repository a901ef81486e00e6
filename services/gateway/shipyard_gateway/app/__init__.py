"""The gateway's use cases; they take ports, never adapters."""
