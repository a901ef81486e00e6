"""The gateway's adapters: its identity store and its channels to the services."""
