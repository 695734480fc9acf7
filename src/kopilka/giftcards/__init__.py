"""Gift cards and member wallets: stored value in money, with its own journal."""
