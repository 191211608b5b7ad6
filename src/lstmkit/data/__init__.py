"""lstmkit.data: getting sequences to the trainer. ``batches`` is the one resumable seeded batch source
(:class:`SeededBatches`, :class:`SeededDraws`); ``streams`` cuts long series and large files into TBPTT batches;
``buckets`` groups variable-length examples into batches of similar length."""

from lstmkit.data.batches import SeededBatches, SeededDraws, bucketed
from lstmkit.data.buckets import bucketed_batches
from lstmkit.data.streams import ByteStream, SeriesStream

__all__ = ["ByteStream", "SeededBatches", "SeededDraws", "SeriesStream", "bucketed", "bucketed_batches"]
