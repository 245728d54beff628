"""Paid Stripe Checkout sessions to provisioned customers and TikTok conversions."""
