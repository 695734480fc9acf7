"""What an event earns: the rules applied to purchases, returns and activities."""
