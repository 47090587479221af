"""The landing sensor's cost in requests: events against listing (issue 20, points 2 and 5)."""
