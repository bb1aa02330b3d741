"""Shared interface: the menu, dialog states, widgets, presenters, error handling."""
