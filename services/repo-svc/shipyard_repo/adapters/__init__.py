"""repo-svc's adapters: the document store behind its repositories, the outbox."""
