"""Built-in datasets plugins (each its own entry point)."""
