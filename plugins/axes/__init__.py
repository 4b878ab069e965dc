"""Built-in axes plugins (each its own entry point)."""
