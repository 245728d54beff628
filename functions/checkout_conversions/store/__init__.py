"""The only code that touches DynamoDB: the Sessions table (provisioning markers and the delivery
ledger) and the Customers table (customer and subscription records)."""
