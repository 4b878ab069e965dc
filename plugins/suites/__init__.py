"""Built-in suites plugins (each its own entry point)."""
