"""Analysis of models and data: parameter inventories, comparisons, robustness, data statistics."""
