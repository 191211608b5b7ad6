"""Recognition of sequences without alignment: CTC, speech and handwriting."""
