"""lineage-svc's entry points: the event consumer and the gRPC API."""
