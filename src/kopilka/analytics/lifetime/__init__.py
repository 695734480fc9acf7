"""Customer-lifetime models (pure numpy/scipy): BG/NBD, Pareto/NBD and Gamma-Gamma fitted
by maximum likelihood, members' predictions, and their validation on a holdout period."""
