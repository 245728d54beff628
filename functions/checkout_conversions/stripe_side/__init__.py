"""Stripe's side: the webhook request, its signature, what an event asks of us, and the mapping of
Stripe's objects to a customer and a purchase. Knows nothing of ad platforms or DynamoDB."""
