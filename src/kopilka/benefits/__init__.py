"""Members\x27 benefits and personal offers: listed, granted, applied at the till, gated."""
