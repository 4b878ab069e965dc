"""Built-in commands plugins (each its own entry point)."""
