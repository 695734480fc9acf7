"""Wallet passes: the loyalty card in Apple Wallet (a signed .pkpass kept current by Apple's
pass web service) and in Google Wallet (a signed "save" link)."""
