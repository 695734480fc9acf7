"""Domain events: typed, written to the outbox in the transaction that caused them."""
