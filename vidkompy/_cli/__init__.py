"""The command line: argument parsing and printing over `vidkompy.pipeline.entry`, and nothing else."""
