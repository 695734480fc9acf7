"""Members signed in to the app: one-time codes by e-mail or SMS, sessions that see only
their own member."""
