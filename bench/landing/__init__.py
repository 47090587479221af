"""Landing at twelve thousand sources (issue 20): requests per tick and per day (``requests``) and
latency (``latency``), events against listing."""
