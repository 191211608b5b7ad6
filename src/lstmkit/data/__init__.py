"""lstmkit.data: getting sequences to the trainer. ``streams`` cuts long series and large files into TBPTT batches;
``buckets`` groups variable-length examples into batches of similar length."""

from lstmkit.data.buckets import bucketed_batches
from lstmkit.data.streams import ByteStream, SeriesStream

__all__ = ["ByteStream", "SeriesStream", "bucketed_batches"]
