"""Events other than purchases: sign-up, profile completed, review, birthday, custom."""
