"""One Prefect task per stage: key -> (load from the store | compute + store). No algorithm here."""

from vidkompy_tasks.stages import composite, decode, dtw, embed, index, locate, spatial

__all__ = ["composite", "decode", "dtw", "embed", "index", "locate", "spatial"]
