"""Music generation: MIDI corpora as note events and the LSTM that samples them."""
