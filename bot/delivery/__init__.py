"""Delivery: the durable outbox, Telegram's limits, instances and claims."""
