"""The training loss: cross-entropy per real target token, label smoothing onto real outputs only."""

import math

import pytest
import torch
import torch.nn.functional as F

from nmt.loss import sequence_loss, smoothed_loss_plain
from nmt.specials import EOS, PAD, SOS

V = 7  # PAD, SOS, EOS, UNK and three words


def test_without_smoothing_it_is_torchs_cross_entropy_and_the_objective_is_the_cross_entropy():
    logits, target = torch.randn(2, 3, V), torch.tensor([[4, 5, EOS], [6, EOS, PAD]])
    loss = sequence_loss(logits, target)
    expected = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD)
    assert torch.equal(loss.objective, expected) and torch.equal(loss.cross_entropy, expected)


def test_padding_changes_nothing_and_every_real_token_weighs_the_same():
    logits, target = torch.randn(2, 4, V), torch.tensor([[4, EOS, PAD, PAD], [4, 5, 6, EOS]])
    per_token = -logits.log_softmax(-1).gather(2, target.clamp(min=0)[..., None]).squeeze(2)  # (2, 4)
    real = target != PAD
    for smoothing in (0.0, 0.1):
        loss = sequence_loss(logits, target, label_smoothing=smoothing)
        torch.testing.assert_close(loss.cross_entropy, per_token[real].mean())  # 6 tokens, not 2 sentences
        padded = sequence_loss(
            torch.cat([logits, torch.randn(2, 2, V)], 1), F.pad(target, (0, 2), value=PAD), label_smoothing=smoothing
        )
        torch.testing.assert_close(padded.objective, loss.objective)


def test_smoothing_spreads_its_mass_over_the_tokens_a_model_can_output_and_never_onto_pad_or_sos():
    epsilon, target = 0.2, torch.tensor([[4]])
    outputs = V - 2  # all but PAD and SOS
    wanted = torch.full((V,), epsilon / outputs)
    wanted[4] += 1 - epsilon
    wanted[[PAD, SOS]] = 0.0
    logits = wanted.clamp(min=1e-30).log().view(1, 1, V).requires_grad_()
    loss = sequence_loss(logits, target, label_smoothing=epsilon)
    loss.objective.backward()
    # the smoothed target distribution is where the objective is lowest: no gradient there
    assert logits.grad.abs().max() < 1e-6
    assert loss.cross_entropy.item() == pytest.approx(-math.log(1 - epsilon + epsilon / outputs), rel=1e-5)
    assert loss.objective.item() > loss.cross_entropy.item()  # smoothing costs a confident model


def test_torchs_own_smoothing_would_give_pad_and_sos_a_share():
    """Why nmt does not pass label_smoothing to F.cross_entropy: its optimum is not ours."""
    epsilon = 0.2
    logits = torch.zeros(1, 1, V, requires_grad=True)
    F.cross_entropy(logits.flatten(0, 1), torch.tensor([4]), label_smoothing=epsilon).backward()
    ours = torch.zeros(1, 1, V, requires_grad=True)
    sequence_loss(ours, torch.tensor([[4]]), label_smoothing=epsilon).objective.backward()
    # the gradient is softmax - target: torch's target keeps epsilon / V on PAD, ours keeps none
    assert ours.grad[0, 0, PAD] == pytest.approx(1 / V) and logits.grad[0, 0, PAD] == pytest.approx((1 - epsilon) / V)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_smoothed_objectives_written_out_gradient_is_autograds_of_the_plain_version(dtype):
    torch.manual_seed(0)
    target = torch.randint(EOS, V, (4, 6))
    target[1, 3:] = PAD
    target[3, 1:] = PAD
    logits = (3 * torch.randn(4, 6, V)).to(dtype).requires_grad_()
    reference = logits.detach().clone().requires_grad_()
    loss = sequence_loss(logits, target, label_smoothing=0.1)
    expected_objective, expected_cross_entropy = smoothed_loss_plain(reference, target, 0.1)
    torch.testing.assert_close(loss.objective, expected_objective)
    torch.testing.assert_close(loss.cross_entropy, expected_cross_entropy)
    (2 * loss.objective).backward()
    (2 * expected_objective).backward()
    assert logits.grad.dtype == dtype
    torch.testing.assert_close(logits.grad, reference.grad)
    assert not logits.grad[target == PAD].any()  # padding gets no gradient
