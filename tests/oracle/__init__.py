"""The offline reference: KPIs by brute force from an event list, written apart from the engine."""
