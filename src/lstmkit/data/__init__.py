"""lstmkit.data: getting sequences to the trainer. ``streams`` cuts long series and large files into TBPTT batches."""

from lstmkit.data.streams import ByteStream, SeriesStream

__all__ = ["ByteStream", "SeriesStream"]
