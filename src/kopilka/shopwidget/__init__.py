"""The web-shop widget: a signed-in shop customer's balance, tier and rewards on the shop's
pages, and points at checkout."""
