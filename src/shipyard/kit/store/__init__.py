"""Document store port and adapters (SQLite embedded, MongoDB in production)."""
