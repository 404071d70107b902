"""A hit's path, in reading order: track (HTTP) -> clientip -> iphash ->
labeller (live label) -> recorder (durable group commit) -> readpixel (a
direct reader's pixel streamed to time the read) -> memory (recent hits for
context) -> relabel (late evidence changes stored labels)."""
