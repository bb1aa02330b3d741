"""Outer middlewares: database session, member + language, throttling."""
