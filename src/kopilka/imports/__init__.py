"""Bulk import of purchase history from files (CDNOW purchase logs and Kopilka CSV)."""
