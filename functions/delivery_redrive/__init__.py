"""The scheduled redrive's Lambda entry point (app.py)."""
