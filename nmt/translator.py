"""Translator: a trained model and its tokenizers, translating lists of sentences in batches.

from nmt import Translator
t = Translator.from_checkpoint("checkpoints/eng-fra/best.pt")
t.translate(["I am cold."])  # beam 5, as translate.py
t.translate(["I am cold."], beam_size=1)  # greedy: any field of nmt.search.SearchOptions
t = Translator.from_checkpoint(["run1/best.pt", "run2/best.pt"], quantize="int8")  # an int8 ensemble
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from nmt.checkpoint import load_checkpoint, restore_model
from nmt.data import make_batch
from nmt.models.ensemble import Ensemble
from nmt.models.shortlist import Shortlisted
from nmt.precision import Precision, PrecisionName
from nmt.quantize import quantize_int8
from nmt.search import Hypotheses, SearchOptions, greedy, search
from nmt.specials import EOS, UNK
from nmt.text import normalize
from nmt.workers import in_order, workers_for

log = logging.getLogger(__name__)

BATCH_SIZE = 64  # sentences searched at a time: sorted by length, a batch wastes little on padding


@dataclass
class Translation:
    source: str
    hypotheses: list[str]  # n-best, best first; an empty source has one, empty
    scores: list[float]  # what the search ranked by: log-probability / length penalty
    tokens: list[list[int]]  # the target ids of each hypothesis, without SOS and EOS
    attention: list[Tensor] | None = None  # per hypothesis (steps, src_len), see nmt.search.Hypotheses
    cut: list[bool] = field(default_factory=lambda: [False])  # per hypothesis: stopped by the length limit, no EOS


class Translator:
    def __init__(
        self,
        model,
        src_tok,
        trg_tok,
        *,
        device: str | torch.device = "cpu",
        config=None,
        corpus=None,
        precision: PrecisionName = "fp32",
        workers: int | None = 1,
    ):
        self.model = model.eval()
        # a Shortlisted model searches in positions of its list; translations give token ids
        self.output_ids = model.output_ids.tolist() if isinstance(model, Shortlisted) else None
        self.precision = Precision(precision, device)  # the search adds up log-probabilities in fp32 whatever this is
        self.src_tok = src_tok
        self.trg_tok = trg_tok
        self.device = torch.device(device)
        self.config = config
        self.corpus = corpus  # the fingerprint of the corpus it was trained on (nmt.corpora.fingerprint)
        if workers is not None and workers < 1:
            raise ValueError(f"at least one worker searches, not {workers}")
        # processes searching batches side by side on the CPU (nmt.workers); None: one per CPU thread
        self.workers = workers

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | Sequence[str | Path],
        device: str | torch.device = "cpu",
        *,
        quantize: str | None = None,
        precision: PrecisionName = "fp32",
        output_vocab: str = "trained",
        workers: int | None = 1,
    ) -> Translator:
        """The model of a checkpoint file, or an ensemble of several (``path`` a list), which
        must share their tokenizers; with ``quantize="int8"``, its CPU int8 twin (nmt.quantize);
        with ``precision`` bf16 or fp16, run under autocast. ``output_vocab="trained"`` keeps
        only the output tokens the checkpoints list as seen on the target side in training
        (nmt.models.shortlist; all of them for checkpoints that list none), ``"full"`` every
        token, which only models trained over every token can do. ``workers``: how many processes
        search batches side by side on the CPU (nmt.workers; None: one per CPU thread). The
        config and corpus are the first checkpoint's."""
        if quantize and precision != "fp32":
            raise ValueError(f"int8 quantization and {precision} do not mix; choose one")
        if quantize not in (None, "int8"):
            raise ValueError(f"unknown quantization {quantize!r}: the choice is int8")
        if output_vocab not in ("trained", "full"):
            raise ValueError(f"unknown output vocabulary {output_vocab!r}: the choice is trained or full")
        if quantize and torch.device(device).type != "cpu":
            raise ValueError("int8 quantization runs on the CPU only; leave out --quantize or use --device cpu")
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        checkpoints = [load_checkpoint(p) for p in paths]
        restored = [restore_model(checkpoint, p, device) for p, checkpoint in zip(paths, checkpoints)]
        model, src_tok, trg_tok, config = restored[0]
        vocabularies = (src_tok.to_dict(), trg_tok.to_dict())
        for p, (_, other_src, other_trg, _) in zip(paths[1:], restored[1:]):
            if (other_src.to_dict(), other_trg.to_dict()) != vocabularies:
                raise ValueError(f"{p}: its vocabulary differs from {paths[0]}'s; an ensemble needs one vocabulary")
        if len(restored) > 1:
            model = Ensemble([member for member, *_ in restored])
        listed = [checkpoint.get("output_ids") for checkpoint in checkpoints]
        # a model trained over its list never learned to keep the other tokens down: they stay out
        trained_listed = [
            (p, ids) for p, ids, (*_, c) in zip(paths, listed, restored) if ids and c.model.output_vocab == "trained"
        ]
        if trained_listed and output_vocab == "full":
            raise ValueError(
                f"{trained_listed[0][0]}: trained to score only the tokens of its training targets "
                "(output_vocab trained); it cannot translate with the full output vocabulary"
            )
        if any(ids != trained_listed[0][1] for _, ids in trained_listed):
            raise ValueError(
                f"{trained_listed[0][0]} and the other models were trained over different output tokens; "
                "an ensemble of such models needs the same training targets"
            )
        if trained_listed:
            model = Shortlisted(model, trained_listed[0][1])
        elif output_vocab == "trained" and all(listed):
            model = Shortlisted(model, sorted(set().union(*listed)))
        if quantize:
            model = quantize_int8(model)  # in place: loaded above for this translator alone
        corpus = checkpoints[0].get("corpus")
        return cls(
            model, src_tok, trg_tok, device=device, config=config, corpus=corpus, precision=precision, workers=workers
        )

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu", **options) -> Translator:
        """The model of a folder written by ``nmt export`` (config.json, model.safetensors, the
        tokenizers): the same as ``from_checkpoint``, which takes folders too."""
        return cls.from_checkpoint(folder, device, **options)

    @property
    def max_positions(self) -> int | None:
        """The longest source, and output, the model can represent: a Transformer's position
        table has a fixed size; an RNN has no limit (None)."""
        model = self.model.model if isinstance(self.model, Shortlisted) else self.model
        members = getattr(model, "members", [model])  # an Ensemble's, or the one model
        limits = [m.src_positions.max_positions for m in members if getattr(m, "src_positions", None) is not None]
        return min(limits, default=None)

    @torch.inference_mode()
    def has_attention(self) -> bool:
        """Whether the model's ``step`` gives attention weights, asked with a one-token source."""
        src = torch.full((1, 1), UNK, dtype=torch.long, device=self.device)
        return greedy(self.model, src, torch.tensor([1]), max_len=1, need_attention=True).attention is not None

    def check_options(self, options: SearchOptions) -> None:
        """Raise ValueError, with a message for the user, for options this model cannot search
        with (what no model can, SearchOptions refuses itself), so callers can check before
        reading any input."""
        vocab = self.model.trg_vocab_size
        if options.beam > vocab:  # search could run, but a user asking for it has mistaken the option
            raise ValueError(f"a beam of {options.beam} is wider than the target vocabulary ({vocab} tokens)")

    def translate(self, lines: Sequence[str], options: SearchOptions | None = None, **changes) -> list[str]:
        """The best translation of every line; arguments as for ``translate_n_best``."""
        return [t.hypotheses[0] for t in self.translate_n_best(lines, options, **changes)]

    def translate_n_best(
        self,
        lines: Sequence[str],
        options: SearchOptions | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        attention: bool = False,
        progress=None,
        first_line: int = 1,
        **changes,
    ) -> list[Translation]:
        """One Translation per line, in input order, searched as ``options`` say (SearchOptions'
        defaults when None), with ``changes`` to single fields of them (``beam_size=1``).

        Lines are sorted by length internally so that batches of ``batch_size`` carry little
        padding; a line's translation does not depend on its batch (in fp32). An empty line
        translates to an empty line. With ``attention``, each Translation carries the attention
        weights of its hypotheses (for plots). A source longer than the model's
        ``max_positions`` is cut to that length, with a warning naming its line (numbered from
        ``first_line``). With ``options.sample`` each line gets ``n_best`` samples, best first.
        With ``self.workers`` other than 1, processes search the batches side by side on the CPU
        (nmt.workers); the translations are the same as one batch at a time.
        """
        options = dataclasses.replace(options or SearchOptions(), **changes)
        self.check_options(options)
        # the normalisation the corpus had in training, whichever way the lines came in
        ids = [self._source_ids(normalize(line), number) for number, line in enumerate(lines, start=first_line)]
        results: list[Translation | None] = [
            Translation(line, [""], [0.0], [[]]) if not x else None for line, x in zip(lines, ids)
        ]
        order = sorted((i for i, x in enumerate(ids) if x), key=lambda i: len(ids[i]))
        # the longest batches first: workers then end on short ones, and none waits long for another
        chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)][::-1]
        # each batch draws from its own generator, so that samples do not depend on which worker ran first
        seeds = [None] * len(chunks)
        if options.sample:
            seed = torch.seed() if options.seed is None else options.seed
            seeds = torch.randint(2**62, (len(chunks),), generator=torch.Generator().manual_seed(seed)).tolist()

        def translate_batch(job: tuple[list[int], int | None]) -> list[Translation]:
            chunk, seed = job
            batch = make_batch([(ids[i], []) for i in chunk])
            src, src_len = batch.src.to(self.device), batch.src_len
            limit = self._output_limit(src_len, options)
            generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
            with torch.inference_mode(), self.precision.autocast():  # entered where the batch is searched
                hyps = search(
                    self.model, src, src_len, options, max_len=limit, need_attention=attention, generator=generator
                )
            return [self._translation(lines[i], hyps, row) for row, i in enumerate(chunk)]

        workers = workers_for(self.device, len(chunks), self.workers)
        for chunk, translations in zip(chunks, in_order(translate_batch, list(zip(chunks, seeds)), workers=workers)):
            for i, translation in zip(chunk, translations):
                results[i] = translation
            if progress is not None:
                progress.update(len(chunk))
        return results

    def _translation(self, source: str, hyps: Hypotheses, row: int) -> Translation:
        """The Translation of row ``row`` of a batch's search."""
        tokens = [self._token_ids(t) for t in hyps.tokens[row]]
        return Translation(
            source=source,
            hypotheses=[self.trg_tok.decode(t) for t in tokens],
            scores=list(hyps.scores[row]),
            tokens=tokens,
            attention=None if hyps.attention is None else hyps.attention[row],
            cut=hyps.cut[row],
        )

    def translate_stream(
        self, lines: Iterable[str], options: SearchOptions | None = None, *, chunk_lines: int = 10_000, **kwargs
    ) -> Iterator[Translation]:
        """``translate_n_best`` over ``lines`` read ``chunk_lines`` at a time, each Translation
        given in input order as soon as its chunk is done: memory stays flat however long the
        input, and sorting within a chunk still batches similar lengths. With a sampling seed,
        chunk i samples with the seed ``seed + i``."""
        options = options or SearchOptions()
        lines = iter(lines)
        for index in itertools.count():
            chunk = list(itertools.islice(lines, chunk_lines))
            if not chunk:
                return
            seed = None if options.seed is None else options.seed + index
            chunk_options = dataclasses.replace(options, seed=seed)
            yield from self.translate_n_best(chunk, chunk_options, first_line=index * chunk_lines + 1, **kwargs)

    def source_tokens(self, line: str) -> list[str]:
        """The source tokens the model reads for ``line``, for labelling attention plots."""
        return self.src_tok.tokens(line)[: self.max_positions]

    def output_tokens(self, translation: Translation, k: int = 0) -> list[str]:
        """The target tokens of hypothesis ``k``, with the end-of-sentence token when its
        attention has a row for it (when the hypothesis ended rather than hit its limit)."""
        tokens = [self.trg_tok.id_to_token(i) for i in translation.tokens[k]]
        if translation.attention is not None and translation.attention[k].size(0) > len(tokens):
            tokens.append(self.trg_tok.id_to_token(EOS))
        return tokens

    def _token_ids(self, outputs: list[int]) -> list[int]:
        """The token ids of the search's outputs, which for a Shortlisted model are positions in its list."""
        return outputs if self.output_ids is None else [self.output_ids[o] for o in outputs]

    def _source_ids(self, line: str, number: int) -> list[int]:
        ids = self.src_tok.encode(line)
        limit = self.max_positions
        if limit is not None and len(ids) > limit:
            log.warning(
                "line %d: %d source tokens, more than the model's %d positions; only the first %d are translated",
                number,
                len(ids),
                limit,
                limit,
            )
            return ids[:limit]
        return ids

    def _output_limit(self, src_len: Tensor, options: SearchOptions) -> Tensor:
        """(batch,) output limits: the options', never past the model's positions."""
        limit = options.output_limits(src_len)
        return limit if self.max_positions is None else limit.clamp(max=self.max_positions)
