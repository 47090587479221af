"""Issue 4: file-landing → gold latency with the real daemon, and the landing sensor's tick time."""
