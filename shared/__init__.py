"""What every clustergov service shares: event store, HTTP surface, auth, metrics, config, CLI."""
