"""nmt: a readable PyTorch encoder-decoder toolkit for machine translation and autoencoding."""
__version__ = "0.1.0"

from nmt.translator import Translator  # noqa: E402  (after __version__, which the checkpoint module reads)

__all__ = ["Translator", "__version__"]
