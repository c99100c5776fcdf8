"""nmt: a readable PyTorch encoder-decoder toolkit for machine translation and autoencoding."""
__version__ = "0.1.0"
