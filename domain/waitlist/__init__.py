"""waitlist capability."""
