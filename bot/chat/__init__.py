"""Chat adapters: Slack (Bolt), the terminal console, and a recording fake for tests."""
