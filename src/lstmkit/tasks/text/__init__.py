"""Text: tokenizers, n-gram baselines, the character language model, the text classifier and
sequence-to-sequence translation."""
