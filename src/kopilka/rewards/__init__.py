"""The rewards shop: a catalog of rewards members redeem with points."""
