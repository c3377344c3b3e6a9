"""group capability."""
