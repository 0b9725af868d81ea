"""Scripts around the project: preparing and running the one GPU training job (not shipped in the package)."""
