"""The alignment's algorithms, each a plain function over arrays: locate, embed, index, dtw, spatial.

No Prefect and no store here: the stages read windows of frames from any array-like (`source.FrameSource`)
and return the frozen values of `vidkompy.models`. `vidkompy.pipeline.tasks` persists what they make.
"""
