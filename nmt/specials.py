"""The special tokens, at the same ids in every vocabulary: data, models and search all use them."""

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")  # their strings, at ids PAD, SOS, EOS, UNK
