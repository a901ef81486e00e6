"""lineage-svc's adapters: projections in the document store."""
