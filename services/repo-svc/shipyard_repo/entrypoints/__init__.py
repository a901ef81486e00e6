"""repo-svc's entry points: translate requests, call the use cases."""
