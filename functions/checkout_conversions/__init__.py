"""Paid Stripe Checkout sessions to provisioned customers and ad conversions (TikTok, Meta)."""
