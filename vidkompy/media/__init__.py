"""PyAV and the files themselves: probing, decoding, encoding in chunks, audio, joins, output paths.

Everything that touches a container or a codec lives here; nothing above it opens a file with PyAV.
"""
