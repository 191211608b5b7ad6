"""Speech recognition: audio features, the bundled spoken corpus and the CTC recognizer."""
