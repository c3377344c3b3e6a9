"""checkin capability: tickets and check-in at the door."""
