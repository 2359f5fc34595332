"""fg laid over bg: the placement and edge masks, the write loop, and the composite in segments."""
