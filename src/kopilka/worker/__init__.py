"""``kopilka worker``: delivers domain events to consumers, webhooks and NATS, and runs the
scheduled jobs. Nothing in the core imports this package."""
