"""Dialog (FSM) storages, SQL and Redis, and the member lock."""
