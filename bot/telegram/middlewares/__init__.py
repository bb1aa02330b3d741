"""Outer and inner middlewares: database session, member, throttling, locks."""
