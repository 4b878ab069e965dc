"""Built-in attacks plugins (each its own entry point)."""
