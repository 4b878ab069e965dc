"""Built-in models plugins (each its own entry point)."""
