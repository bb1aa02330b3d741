"""Communes: the consultation's list (model), finding one by postal code or name (lookup),
and each member's commune (service, dialog)."""
