"""Download a named corpus into corpora/: checksum verified, progress bar, written atomically."""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from nmt.files import atomic_write
from nmt.text import CorpusError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Download:
    """Where a named corpus comes from, how to check it, and the file name it is kept under."""

    url: str
    sha1: str
    filename: str
    licence: str = ""  # an SPDX-style identifier, as a model card's metadata wants it
    attribution: str = ""


DOWNLOADS = {
    # manythings.org's Tatoeba archive of 2019-04-07, 167,130 pairs, as mirrored for d2l.ai
    "eng-fra": Download(
        url="http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip",
        sha1="94646ad1522d915e7b0f9296181140edcf86a4f5",
        filename="fra-eng.zip",
        licence="cc-by-2.0",
        attribution="sentence pairs from the Tatoeba Project (tatoeba.org), as packaged by manythings.org/anki",
    ),
}


def fetch(
    name: str = "eng-fra",
    dest_dir: Path = Path("corpora"),
    *,
    url: str | None = None,
    sha1: str | None = None,
) -> Path:
    """Path of corpus ``name`` in ``dest_dir``, downloaded first when it is not there yet.

    A file already in place is used as it is, with no checksum check: users may place their own
    copy (the shared copy has had pairs removed, so its checksum differs). ``url`` and ``sha1``
    replace the known ones, e.g. with a file:// URL in tests.
    """
    if name not in DOWNLOADS:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(DOWNLOADS)}")
    known = DOWNLOADS[name]
    dest = Path(dest_dir) / known.filename
    if dest.exists():
        return dest
    url = url or known.url
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as out:
            digest = _copy_url(url, out)
            if digest != (sha1 or known.sha1):
                raise CorpusError(
                    f"checksum mismatch for {url}: sha1 {digest}, expected {sha1 or known.sha1}; nothing was saved"
                )
    except (OSError, http.client.HTTPException) as err:  # urllib's URLError is an OSError
        reason = getattr(err, "reason", err)
        raise CorpusError(
            f"could not download {name} from {url} ({reason}); offline? "
            f"download it by hand and place it at {dest.resolve()}"
        ) from err
    log.info("downloaded %s to %s", name, dest)
    return dest


def _copy_url(url: str, out: BinaryIO) -> str:
    """Copy ``url`` into ``out`` behind a progress bar; returns the sha1 of the bytes copied."""
    digest = hashlib.sha1()
    with urllib.request.urlopen(url, timeout=60) as response:
        size = int(response.headers.get("Content-Length") or 0) or None
        label = PurePosixPath(urllib.parse.urlparse(url).path).name
        with tqdm(total=size, unit="B", unit_scale=True, desc=label, disable=None) as progress:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                progress.update(len(chunk))
    return digest.hexdigest()
