"""vidkompy: overlay a foreground video on the background it was cut from."""
