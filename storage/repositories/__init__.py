"""Repositories: the only place that writes SQL. Each takes an AsyncSession."""
