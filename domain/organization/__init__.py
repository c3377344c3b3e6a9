"""organization capability."""
