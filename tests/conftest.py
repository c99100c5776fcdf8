"""Shared fixtures. The real corpus is required: a missing one fails, it is never skipped."""

from pathlib import Path

import pytest
import torch
from training_runs import tiny_config

from nmt.readers import read_corpus
from nmt.training import train

ROOT = Path(__file__).resolve().parent.parent
REAL_CORPUS_PLACES = [ROOT / "corpora" / "fra-eng.zip", ROOT.parent / "shared" / "corpora" / "fra-eng.zip"]


@pytest.fixture(scope="session")
def real_corpus() -> Path:
    """Path of the real Tatoeba fra-eng.zip archive."""
    for place in REAL_CORPUS_PLACES:
        if place.exists():
            return place
    pytest.fail(
        f"the real corpus is missing; looked in {', '.join(map(str, REAL_CORPUS_PLACES))} "
        "(python -m nmt fetch eng-fra downloads it into corpora/)"
    )


@pytest.fixture(scope="session")
def short_sentences(real_corpus, tmp_path_factory):
    """500 distinct short real English sentences (with their French), as a corpus file."""
    seen, rows = set(), []
    for en, fr in read_corpus(real_corpus):
        if len(en.split()) <= 4 and en not in seen:
            seen.add(en)
            rows.append(f"{en}\t{fr}")
    rows = rows[:: max(1, len(rows) // 500)][:500]
    path = tmp_path_factory.mktemp("corpus") / "short.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def corpus(real_corpus, tmp_path_factory) -> Path:
    """200 short real English/French pairs as a tab file: what the tiny training runs learn from."""
    pairs = [(en, fr) for en, fr in read_corpus(real_corpus) if len(en.split()) <= 4]
    path = tmp_path_factory.mktemp("corpus") / "short.txt"
    path.write_text("".join(f"{en}\t{fr}\n" for en, fr in pairs[:: len(pairs) // 200][:200]), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _one_thread_and_a_fixed_seed():
    """Every model in the tests is tiny: a second thread only adds synchronisation, and on a
    busy 2-core machine it makes training many times slower. Set again for every test because
    ``--threads`` in an in-process training run changes it for the whole process."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def kept_run(tmp_path_factory):
    """24 steps, validating every 6 and keeping the last 3 models."""
    run_dir = tmp_path_factory.mktemp("kept")
    train(tiny_config(run_dir, max_steps=24, valid_every=6, keep_checkpoints=3))
    return run_dir
