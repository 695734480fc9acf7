"""Seeded demo data: a simulated population of members, purchases and returns."""
