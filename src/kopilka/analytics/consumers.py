"""Analytics' reactions to domain events: the KPIs' daily aggregates."""
