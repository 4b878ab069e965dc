"""Built-in training plugins (each its own entry point)."""
