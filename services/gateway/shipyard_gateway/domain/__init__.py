"""The gateway's domain model: identity and the access policy. Pure, no I/O."""
