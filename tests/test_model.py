"""The RNN encoder-decoder: shapes, padding, the bridge, attention, teacher forcing."""

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data import make_batch
from nmt.loss import sequence_loss
from nmt.models.attention import BahdanauAttention
from nmt.models.seq2seq import RNNSeq2Seq
from nmt.quantize import quantize_int8
from nmt.specials import PAD, SOS

VOCAB = 30


def tiny(**overrides) -> RNNSeq2Seq:
    cfg = ModelConfig(**{"emb_size": 16, "enc_hidden": 12, "dec_hidden": 20, "dropout": 0.0, **overrides})
    return RNNSeq2Seq(cfg, src_vocab_size=VOCAB, trg_vocab_size=VOCAB).eval()


def examples(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        src_len, trg_len = 2 + i % 5, 1 + (i * 3) % 6
        rows.append(
            (
                torch.randint(4, VOCAB, (src_len,), generator=g).tolist(),
                torch.randint(4, VOCAB, (trg_len,), generator=g).tolist(),
            )
        )
    return rows


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_forward_gives_one_distribution_per_target_position(cell, bidirectional, attention):
    model = tiny(cell=cell, bidirectional=bidirectional, attention=attention, layers=2)
    b = make_batch(examples())
    logits = model(b.src, b.src_len, b.trg_in)
    assert logits.shape == (len(b), b.trg_in.size(1), VOCAB)


@pytest.mark.parametrize("impl", ["torch", "scratch"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_appending_padding_to_the_source_changes_nothing(impl, cell):
    model = tiny(cell=cell, rnn_impl=impl, layers=2)
    b = make_batch(examples())
    padded_src = torch.cat([b.src, torch.full((len(b), 7), PAD)], dim=1)
    encoded, encoded_padded = model.encode(b.src, b.src_len), model.encode(padded_src, b.src_len)
    torch.testing.assert_close(encoded_padded.final, encoded.final)
    torch.testing.assert_close(encoded_padded.outputs[:, : b.src.size(1)], encoded.outputs)
    assert encoded_padded.outputs[:, b.src.size(1) :].abs().max() == 0
    torch.testing.assert_close(model(padded_src, b.src_len, b.trg_in), model(b.src, b.src_len, b.trg_in))


def test_a_sentence_gives_the_same_output_alone_and_in_a_batch():
    model = tiny()
    rows = examples()
    b = make_batch(rows)
    together = model(b.src, b.src_len, b.trg_in)
    for i, row in enumerate(rows):
        alone = make_batch([row])
        out = model(alone.src, alone.src_len, alone.trg_in)
        torch.testing.assert_close(out[0], together[i, : out.size(1)], atol=1e-5, rtol=1e-5)


def test_the_bridge_is_trained_by_the_one_optimizer():
    model = tiny().train()
    before = [p.detach().clone() for p in model.bridge.parameters()]
    assert before, "a linear bridge has weights"
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    b = make_batch(examples())
    sequence_loss(model(b.src, b.src_len, b.trg_in), b.trg_out).objective.backward()
    optimizer.step()
    assert all(not torch.equal(old, new) for old, new in zip(before, model.bridge.parameters()))


def test_identity_bridge_needs_matching_sizes_and_zero_bridge_starts_from_zeros():
    with pytest.raises(ValueError, match="identity bridge"):
        tiny(bridge="identity")
    identity = RNNSeq2Seq(
        ModelConfig(emb_size=8, enc_hidden=10, dec_hidden=20, bridge="identity"),
        src_vocab_size=VOCAB,
        trg_vocab_size=VOCAB,
    )
    assert not list(identity.bridge.parameters())
    zero = tiny(bridge="zero")
    b = make_batch(examples())
    state = zero.init_state(zero.encode(b.src, b.src_len))
    assert all(s.abs().max() == 0 for s in state.hidden)


def test_encoder_and_decoder_sizes_may_differ_with_several_layers():
    model = tiny(layers=3, enc_hidden=7, dec_hidden=33)
    b = make_batch(examples())
    state = model.init_state(model.encode(b.src, b.src_len))
    assert [tuple(s.shape) for s in state.hidden] == [(3, len(b), 33)] * 2


def test_attention_gives_no_weight_to_padding_and_sums_to_one():
    attention = BahdanauAttention(query_size=5, key_size=6, hidden=4)
    values = torch.randn(2, 4, 6)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    context, weights = attention(torch.randn(2, 5), attention.project_keys(values), values, mask)
    assert context.shape == (2, 6)
    assert weights[0, 2:].abs().max() == 0
    torch.testing.assert_close(weights.sum(1), torch.ones(2))


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
@pytest.mark.parametrize("quantize", [None, "int8"])
@torch.no_grad()
def test_the_beams_of_a_sentence_read_one_copy_of_its_source(attention, quantize):
    """Beam search keeps one encoder row per sentence for its k beams: each step equals the one
    that reads a copy of the source per beam."""
    model = tiny(attention=attention)
    if quantize:
        model = quantize_int8(model)
    b = make_batch(examples(n=3))
    encoded = model.encode(b.src, b.src_len)
    beams = torch.arange(3).repeat_interleave(4)  # four beams per sentence, on consecutive rows
    shared, copied = (model.reorder(model.init_state(encoded), beams) for _ in range(2))
    prev = torch.randint(4, VOCAB, (12, 5))
    for t in range(5):
        logits, shared, weights = model.step(prev[:, t], shared, encoded)
        expected, copied, expected_weights = model.step(prev[:, t], copied, encoded.index_select(beams))
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
        if attention == "none":
            assert weights is None and expected_weights is None
        else:
            torch.testing.assert_close(weights, expected_weights, rtol=0, atol=1e-6)


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("impl", ["torch", "scratch"])
@pytest.mark.parametrize("layers", [1, 2])
def test_step_by_step_decoding_equals_the_teacher_forced_forward_and_its_gradients(attention, cell, impl, layers):
    # Training writes the recurrence out with the tokens' share of the gates computed up front;
    # search steps the RNN module. Both must be the same function, down to the gradients.
    model = tiny(attention=attention, cell=cell, rnn_impl=impl, layers=layers)
    b = make_batch(examples())

    def stepped():
        encoded = model.encode(b.src, b.src_len)
        state = model.init_state(encoded)
        steps = []
        for t in range(b.trg_in.size(1)):
            logits, state, _ = model.step(b.trg_in[:, t], state, encoded)
            steps.append(logits)
        return torch.stack(steps, 1)

    def gradients(logits):
        model.zero_grad()
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    step_logits, forced_logits = stepped(), model(b.src, b.src_len, b.trg_in)
    torch.testing.assert_close(step_logits, forced_logits, atol=1e-5, rtol=1e-5)
    step_grads, forced_grads = gradients(step_logits), gradients(forced_logits)
    assert step_grads.keys() == forced_grads.keys()
    for name in step_grads:
        torch.testing.assert_close(step_grads[name], forced_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_scheduled_sampling_feeds_tokens_sampled_from_the_model_and_never_pad_or_sos():
    model = tiny()
    with torch.no_grad():
        model.decoder.out_proj.bias[[PAD, SOS]] += 50.0  # unmasked, PAD and SOS would win every draw
    fed = []
    model.decoder.embed.register_forward_hook(lambda module, args, output: fed.append(args[0]))
    b = make_batch(examples())
    forced = model(b.src, b.src_len, b.trg_in, teacher_forcing=1.0)
    fed.clear()
    free_running = model(b.src, b.src_len, b.trg_in, teacher_forcing=0.0)
    torch.testing.assert_close(free_running[:, 0], forced[:, 0])  # the first position reads SOS either way
    sampled = torch.stack(fed[1:], dim=1)  # fed[0] is the reference, embedded once
    assert not ((sampled == PAD) | (sampled == SOS)).any()
    encoded = model.encode(b.src, b.src_len)
    state, prev = model.init_state(encoded), b.trg_in[:, 0]
    for t in range(b.trg_in.size(1)):  # the same thing written out: each step reads what was sampled
        logits, state, _ = model.step(prev, state, encoded)
        torch.testing.assert_close(logits, free_running[:, t], atol=1e-5, rtol=1e-5)
        if t + 1 < b.trg_in.size(1):
            prev = sampled[:, t]


def test_scheduled_sampling_flips_a_coin_per_sentence_and_position():
    model = tiny()
    b = make_batch(examples(n=64))
    forced = model(b.src, b.src_len, b.trg_in, teacher_forcing=1.0)
    torch.manual_seed(0)
    mixed = model(b.src, b.src_len, b.trg_in, teacher_forcing=0.5)
    # position 1 reads the reference in the sentences whose coin said so, a sample in the others
    same = torch.isclose(mixed[:, 1], forced[:, 1], atol=1e-6).all(dim=1)
    assert 10 < int(same.sum()) < 54


def test_under_bf16_autocast_the_training_recurrence_keeps_its_state_in_fp32():
    # the matrix products run in bf16; the state, which adds up over every position, does not
    model = tiny(layers=2)
    b = make_batch(examples())
    encoded = model.encode(b.src, b.src_len)
    emb = model.decoder.embed(b.trg_in)
    expected, _ = model.decoder._teacher_forced(emb, model.init_state(encoded), encoded)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs, _ = model.decoder._teacher_forced(emb, model.init_state(encoded), encoded)
    assert outs.dtype == torch.float32
    torch.testing.assert_close(outs, expected, atol=0.05, rtol=0)
