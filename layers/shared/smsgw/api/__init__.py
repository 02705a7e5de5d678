"""The public HTTP contract (v1): request models and the one error-to-HTTP mapping."""
