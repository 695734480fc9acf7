"""The members' app (``/app/<program>/``): an installable web app with the card, points,
rewards, coupons, stores and support, for the signed-in member only."""
