"""Download a named corpus into corpora/: checksum verified, progress bar, written atomically.

Names: eng-fra (the archive the project's results use, with a known checksum) and every
manythings.org pair by its archive's name, deu-eng, spa-eng, rus-eng ... Those archives change
when Tatoeba grows, so their checksum is recorded beside the file on its first download
(deu-eng.zip.sha1) and checked each time the file is used after.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from nmt.files import atomic_write
from nmt.text import CorpusError
from nmt.version import __version__

log = logging.getLogger(__name__)


TATOEBA_LICENCE = "cc-by-2.0"
TATOEBA_ATTRIBUTION = "sentence pairs from the Tatoeba Project (tatoeba.org), as packaged by manythings.org/anki"


@dataclass(frozen=True)
class Download:
    """Where a named corpus comes from, how to check it, and the file name it is kept under."""

    url: str
    sha1: str | None  # None: recorded on the first download, checked after
    filename: str
    columns: tuple[str, str]  # the languages of its sentence file's columns
    licence: str = TATOEBA_LICENCE  # an SPDX-style identifier, as a model card's metadata wants it
    attribution: str = TATOEBA_ATTRIBUTION


DOWNLOADS = {
    # manythings.org's Tatoeba archive of 2019-04-07, 167,130 pairs, as mirrored for d2l.ai
    "eng-fra": Download(
        url="http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip",
        sha1="94646ad1522d915e7b0f9296181140edcf86a4f5",
        filename="fra-eng.zip",
        columns=("en", "fr"),
    ),
}

MANYTHINGS_URL = "https://www.manythings.org/anki/{name}.zip"
MANYTHINGS_FIRST = "eng"  # every manythings.org archive pairs English (first column) with another language
_MANYTHINGS_NAME = re.compile(rf"([a-z]{{3}})-{MANYTHINGS_FIRST}")


def is_download(name: str) -> bool:
    """Whether ``name`` is a corpus ``fetch`` knows: eng-fra or a manythings.org pair such as deu-eng."""
    return name in DOWNLOADS or bool(_MANYTHINGS_NAME.fullmatch(name))


def download_for(name: str) -> Download:
    """Where corpus ``name`` comes from; CorpusError for a name ``fetch`` does not know."""
    if name in DOWNLOADS:
        return DOWNLOADS[name]
    match = _MANYTHINGS_NAME.fullmatch(name)
    if not match:
        raise CorpusError(
            f"unknown corpus {name!r}: give eng-fra or a manythings.org archive's name, "
            f"such as deu-eng (see {MANYTHINGS_URL.format(name='')[:-5]})"
        )
    return Download(url=MANYTHINGS_URL.format(name=name), sha1=None, filename=f"{name}.zip", columns=("en", match[1]))


def fetch(
    name: str = "eng-fra",
    dest_dir: Path = Path("corpora"),
    *,
    url: str | None = None,
    sha1: str | None = None,
) -> Path:
    """Path of corpus ``name`` in ``dest_dir``, downloaded first when it is not there yet.

    A file already in place is used as it is when no checksum was recorded for it: users may
    place their own copy (the shared eng-fra copy has had pairs removed, so its checksum differs).
    ``url`` and ``sha1`` replace the known ones, e.g. with a file:// URL in tests.
    """
    known = download_for(name)
    dest = Path(dest_dir) / known.filename
    record = dest.with_name(dest.name + ".sha1")
    if dest.exists():
        _check_record(dest, record)
        return dest
    url, expected = url or known.url, sha1 or known.sha1
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as out:
            digest = _copy_url(url, out)
            if expected and digest != expected:
                raise CorpusError(f"checksum mismatch for {url}: sha1 {digest}, expected {expected}; nothing was saved")
    except (OSError, http.client.HTTPException) as err:  # urllib's URLError is an OSError
        reason = getattr(err, "reason", err)
        raise CorpusError(
            f"could not download {name} from {url} ({reason}); offline? "
            f"download it by hand and place it at {dest.resolve()}"
        ) from err
    if not expected:
        record.write_text(f"{digest}  {dest.name}\n", encoding="utf-8")
        log.info("recorded its sha1 in %s", record)
    log.info("downloaded %s to %s", name, dest)
    return dest


def _check_record(path: Path, record: Path) -> None:
    """Refuse ``path`` when a checksum recorded at its download no longer matches it."""
    if not record.exists():
        return
    recorded = record.read_text(encoding="utf-8").split()[0]
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    if digest != recorded:
        raise CorpusError(
            f"{path} changed since it was downloaded (sha1 {digest}, recorded {recorded} in {record}); "
            "delete both files to download it again"
        )


def _copy_url(url: str, out: BinaryIO) -> str:
    """Copy ``url`` into ``out`` behind a progress bar; returns the sha1 of the bytes copied."""
    digest = hashlib.sha1()
    # the client named: some hosts refuse urllib's default User-Agent
    request = urllib.request.Request(url, headers={"User-Agent": f"nmt/{__version__} (corpus download)"})
    with urllib.request.urlopen(request, timeout=60) as response:
        size = int(response.headers.get("Content-Length") or 0) or None
        label = PurePosixPath(urllib.parse.urlparse(url).path).name
        with tqdm(total=size, unit="B", unit_scale=True, desc=label, disable=None) as progress:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                progress.update(len(chunk))
    return digest.hexdigest()
