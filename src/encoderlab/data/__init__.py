"""Data loaders, one module per format family; `builtin/` holds the bundled sample data."""
