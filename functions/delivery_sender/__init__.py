"""The stream sender's Lambda entry point (app.py)."""
