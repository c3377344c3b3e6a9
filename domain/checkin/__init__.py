"""checkin capability."""
