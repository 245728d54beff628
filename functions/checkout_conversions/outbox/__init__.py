"""The delivery ledger (the transactional outbox), platform-neutral: one delivery per purchase and
destination, its states, its policy, and the sender and redrive that move it along."""
