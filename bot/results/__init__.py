"""Results: tallies, charts, the results view."""
