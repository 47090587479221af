"""Landing benchmarks at twelve thousand sources (issue 20): latency, events against listing."""
