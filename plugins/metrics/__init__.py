"""Built-in metrics plugins (each its own entry point)."""
