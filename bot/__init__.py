"""gonogo service: engine, stores, chat adapters, config and CLI."""
