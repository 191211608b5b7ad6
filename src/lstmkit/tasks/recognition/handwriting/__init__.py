"""Handwriting recognition: pen strokes, the bundled data and the CTC recognizer."""
