import pytest
import torch

from scoreaware.train.model import MODELS, Conditioning, ModelConfig, build_model
from scoreaware.train.objective import NullConditioning, Trainable
from scoreaware.train.repa import RepaLoss, align_frames

C, D_TEXT = 8, 32


def cond(n=3, length=5, score=True):
    g = torch.Generator().manual_seed(0)
    return Conditioning(torch.randn(n, length, D_TEXT, generator=g), torch.ones(n, length, dtype=torch.bool),
                        torch.randn(n, 512, generator=g), torch.randn(n, generator=g),
                        torch.tensor([True, False, True][:n]) if score else torch.zeros(n, dtype=torch.bool))


@pytest.mark.parametrize("preset, low, high", [("small", 5e6, 6e6), ("S", 110e6, 130e6), ("L", 450e6, 480e6)])
def test_preset_parameter_counts(preset, low, high):
    model = build_model(preset, latent_channels=64, text_dim=1024)
    count = sum(p.numel() for p in model.parameters())
    assert low <= count <= high, count


@pytest.mark.parametrize("head", ["none", "global_adaln", "input_add", "token"])
@pytest.mark.parametrize("with_repa", [False, True])
def test_backward_and_shapes_for_every_head(head, with_repa):
    torch.manual_seed(0)
    model = build_model("tiny", latent_channels=C, text_dim=D_TEXT, score_head=head)
    repa = RepaLoss(64, {"clap": ("global", 512), "muq": ("frames", 24)}, width=32) if with_repa else None
    net = Trainable(model, repa)
    x = torch.randn(3, 20, C)
    v, hidden = net(x, torch.rand(3), cond())
    assert v.shape == x.shape
    loss = v.pow(2).mean()
    if with_repa:
        assert hidden.shape == (3, 20, 64)
        loss = loss + repa(hidden, {"clap": torch.randn(3, 512), "muq": torch.randn(3, 7, 24)})
    else:
        assert hidden is None
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:5])
    if head != "none":  # the zero-initialized score output still receives a gradient
        assert model.score_embed.mlp[-1].weight.grad is not None


def test_zero_init_makes_the_first_prediction_zero_and_score_a_no_op():
    model = build_model("tiny", latent_channels=C, text_dim=D_TEXT, score_head="global_adaln")
    v = model(torch.randn(2, 10, C), torch.rand(2), cond(2))
    assert torch.count_nonzero(v) == 0


def test_cfg_with_weight_one_equals_the_conditional_prediction():
    torch.manual_seed(1)
    model = build_model("tiny", latent_channels=C, text_dim=D_TEXT, score_head="token")
    for p in model.parameters():  # leave the zero-init so the outputs are not trivially 0
        torch.nn.init.normal_(p, std=0.05)
    x, t, c = torch.randn(3, 12, C), torch.rand(3), cond()
    nulls = NullConditioning(torch.randn(2, D_TEXT), torch.randn(512))
    null = nulls.batch(3, "cpu")
    assert torch.allclose(model.forward_with_cfg(x, t, c, null, 1.0), model(x, t, c))
    guided = model.forward_with_cfg(x, t, c, null, 4.0)
    assert torch.allclose(guided, 4 * model(x, t, c) - 3 * model(x, t, null), atol=1e-5)


def test_text_padding_does_not_change_the_prediction():
    torch.manual_seed(2)
    model = build_model("tiny", latent_channels=C, text_dim=D_TEXT)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    c = cond(2)
    padded = Conditioning.cat([c, Conditioning(torch.zeros(1, 9, D_TEXT), torch.zeros(1, 9, dtype=torch.bool)
                                               .index_fill(1, torch.tensor([0]), True), torch.zeros(1, 512),
                                               torch.zeros(1), torch.zeros(1, dtype=torch.bool))]).index(slice(0, 2))
    x, t = torch.randn(2, 10, C), torch.rand(2)
    assert padded.text.shape[1] == 9
    assert torch.allclose(model(x, t, c), model(x, t, padded), atol=1e-5)


def test_null_dropout_replaces_text_and_clap_together():
    c = cond(3)
    nulls = NullConditioning(torch.full((2, D_TEXT), 7.0), torch.full((512,), 3.0))
    out = nulls.apply(c, torch.tensor([False, True, False]))
    assert torch.equal(out.text[0, :5], c.text[0]) and torch.all(out.text[1, :2] == 7.0)
    assert out.text_mask[1].tolist() == [True, True, False, False, False]
    assert torch.all(out.clap[1] == 3.0) and torch.equal(out.clap[2], c.clap[2])


def test_repa_aligns_frames_by_interpolation_and_is_minus_one_when_aligned():
    target = torch.arange(4.0)[None, :, None].expand(1, 4, 2)
    assert align_frames(target, 8).shape == (1, 8, 2)
    loss = RepaLoss(4, {"g": ("global", 4)}, width=8)
    with torch.no_grad():  # identity-like projector: hidden already equals the target direction
        for layer in loss.projectors["g"]:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(torch.eye(*layer.weight.shape))
                layer.bias.zero_()
    hidden = torch.ones(2, 5, 4)
    assert float(loss(hidden, {"g": torch.ones(2, 4)}).detach()) == pytest.approx(-1.0, abs=1e-5)


def test_unknown_preset_and_head():
    with pytest.raises(ValueError, match="not implemented"):
        build_model("XL")
    with pytest.raises(ValueError, match="score head"):
        build_model("tiny", score_head="cross")
    assert set(MODELS) == {"tiny", "small", "S", "L"}


def test_latent_padding_does_not_change_the_prediction():
    torch.manual_seed(3)
    model = build_model("tiny", latent_channels=C, text_dim=D_TEXT)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    c = cond(1)
    x, t = torch.randn(1, 10, C), torch.rand(1)
    padded = torch.cat([x, torch.randn(1, 6, C)], dim=1)
    mask = torch.tensor([[True] * 10 + [False] * 6])
    masked = Conditioning(c.text, c.text_mask, c.clap, c.score, c.score_mask, latent_mask=mask)
    assert torch.allclose(model(x, t, c), model(padded, t, masked)[:, :10], atol=1e-5)


def test_even_conv_kernels_are_refused():
    with pytest.raises(ValueError, match="must be odd"):
        ModelConfig(mlp_kernel=2)


def test_rope_rotates_without_changing_norms_and_scores_depend_on_offset_only():
    """RoPE's closed form: |R_m q| = |q|, and <R_m q, R_n k> depends only on m − n."""
    from scoreaware.train.model import apply_rope, rope_frequencies

    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    rotations = rope_frequencies(40, 16, "cpu")
    rq = apply_rope(q.expand(1, 1, 40, 16), rotations)[0, 0]  # (40, 16): q at every position
    rk = apply_rope(k.expand(1, 1, 40, 16), rotations)[0, 0]
    assert torch.allclose(rq.norm(dim=-1), q.norm().expand(40), atol=1e-5)
    assert torch.allclose(rq[0], q[0, 0, 0])  # position 0 is not rotated
    for offset in (0, 3, 17):
        scores = torch.stack([rq[m] @ rk[m + offset] for m in range(40 - offset)])
        assert torch.allclose(scores, scores[0].expand_as(scores), atol=1e-4)
    assert not torch.allclose(rq[0] @ rk[3], rq[0] @ rk[0])  # and the offset matters
