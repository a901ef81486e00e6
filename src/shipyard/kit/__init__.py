"""What every Shipyard service shares: settings, bus, outbox/inbox, stores, telemetry, errors."""
