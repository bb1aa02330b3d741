"""Phases: timeline, transitions, the scheduler, rehearsal."""
