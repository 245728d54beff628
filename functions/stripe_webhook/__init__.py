"""The webhook's Lambda entry point (app.py)."""
