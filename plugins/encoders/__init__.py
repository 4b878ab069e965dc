"""Built-in encoders plugins (each its own entry point)."""
