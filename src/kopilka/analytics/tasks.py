"""Analytics' scheduled jobs: customer-lifetime models refitted, members' predictions kept."""
