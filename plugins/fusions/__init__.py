"""Built-in fusions plugins (each its own entry point)."""
