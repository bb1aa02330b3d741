"""Organisers: announce, status, export, audit, alerts."""
