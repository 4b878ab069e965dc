"""Built-in reporters plugins (each its own entry point)."""
