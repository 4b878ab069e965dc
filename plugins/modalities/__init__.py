"""Built-in modalities plugins (each its own entry point)."""
