"""Analytics: the program's figures for the console's dashboard (members, activity, the
points' flow and liability, purchases and average check by week, the tiers), each a few
aggregate queries over the core's tables, never a loop over members."""
