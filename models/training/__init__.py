"""Training our own weights: a model-agnostic loop (``common``) plus one task module per model."""
