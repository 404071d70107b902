"""A hit's path, in reading order: track (HTTP) -> clientip -> iphash ->
labeller (live label) -> recorder (durable group commit) -> memory (recent
hits for context) -> relabel (late evidence changes stored labels)."""
