"""Fast numerics: bf16 detection, channels-last conversion, and bf16 steps that stay fp32 where
they must (gradients, optimizer state, checkpoints)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from histo_gan.modules import CycleGANModule, SegmenterModule
from histo_gan.networks import PatchDiscriminator, ResnetGenerator, SmpUnet
from histo_gan.precision import convert_to_channels_last, cpu_has_bf16, fast_precision


def cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return str(path)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("avx512f avx512_bf16", True), ("amx_tile amx_bf16", True), ("avx512f avx512_vnni", False)],
)
def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    assert cpu_has_bf16(cpuinfo(tmp_path, flags)) is expected


def test_fast_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr("histo_gan.precision.cpu_has_bf16", lambda: True)
    assert fast_precision("cpu") == "bf16-mixed"
    monkeypatch.setattr("histo_gan.precision.cpu_has_bf16", lambda: False)
    assert fast_precision("cpu") == "32-true"
    assert fast_precision("mps") == "32-true"


def test_only_networks_that_prefer_channels_last_are_converted():
    module = CycleGANModule(
        ResnetGenerator(3, 3, base_channels=4, n_blocks=1),
        ResnetGenerator(3, 3, base_channels=4, n_blocks=1),
        PatchDiscriminator(3, base_channels=4, n_layers=1),
        PatchDiscriminator(3, base_channels=4, n_layers=1),
    )
    segmenter = SegmenterModule(SmpUnet("resnet18", 3, (16, 8, 4)))
    assert convert_to_channels_last(module) == []
    assert convert_to_channels_last(segmenter) == ["head.network"]
    conv = next(p for p in segmenter.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert conv.dtype == torch.float32


def _batches(n: int, size: int = 32, unpaired: bool = False) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        label = torch.zeros(2, size, size, dtype=torch.int32)
        label[:, 4:12, 4:12], label[:, 18:28, 16:26] = 1, 2
        batch = {"image": torch.rand(2, 3, size, size, generator=generator), "label": label}
        if unpaired:
            batch["real"] = torch.rand(2, 3, size, size, generator=generator)
        batches.append(batch)
    return batches


def _tiny_segmenter() -> SegmenterModule:
    return SegmenterModule(SmpUnet("resnet18", 3, (16, 8, 4)), boundary_width=1)


def _tiny_cyclegan() -> CycleGANModule:
    return CycleGANModule(
        ResnetGenerator(3, 3, base_channels=4, n_blocks=1),
        ResnetGenerator(3, 3, base_channels=4, n_blocks=1),
        PatchDiscriminator(3, base_channels=4, n_layers=2, spectral_norm=True),
        PatchDiscriminator(3, base_channels=4, n_layers=2, spectral_norm=True),
        pool_size=0,
    )


class GradientProbe(L.Callback):
    """Records dtype and finiteness of every gradient before each optimizer step."""

    def __init__(self) -> None:
        self.seen: list[tuple[torch.dtype, bool]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.seen.append((p.grad.dtype, bool(torch.isfinite(p.grad).all())))


def _fit(module, batches, precision, tmp_path, ckpt_path=None, callbacks=()):
    trainer = L.Trainer(
        accelerator="cpu",
        precision=precision,
        max_steps=-1,
        max_epochs=1 if ckpt_path is None else 2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
    )
    loader = DataLoader(batches, batch_size=None)
    trainer.fit(module, loader, ckpt_path=ckpt_path, weights_only=False)
    return trainer


@pytest.mark.parametrize("make", [_tiny_segmenter, _tiny_cyclegan], ids=["segmenter", "cyclegan"])
def test_a_bf16_step_gives_finite_fp32_gradients_and_an_fp32_checkpoint(tmp_path, make):
    unpaired = make is _tiny_cyclegan
    module = make()
    convert_to_channels_last(module)
    probe = GradientProbe()
    trainer = _fit(
        module, _batches(2, unpaired=unpaired), "bf16-mixed", tmp_path, callbacks=[probe]
    )
    assert probe.seen, "no optimizer step saw a gradient"
    assert all(dtype == torch.float32 and finite for dtype, finite in probe.seen)
    path = tmp_path / "bf16.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    floats = [t for t in checkpoint["state_dict"].values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)
    for state in checkpoint["optimizer_states"]:
        moments = [v for s in state["state"].values() for v in s.values() if torch.is_tensor(v)]
        assert all(m.dtype == torch.float32 for m in moments if m.is_floating_point())


@pytest.mark.parametrize(
    ("first", "second"), [("bf16-mixed", "32-true"), ("32-true", "bf16-mixed")]
)
def test_a_checkpoint_resumes_in_the_other_precision(tmp_path, first, second):
    batches = _batches(2)
    trainer = _fit(_tiny_segmenter(), batches, first, tmp_path)
    path = tmp_path / "first.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=False)["state_dict"]
    resumed_module = _tiny_segmenter()
    resumed = _fit(resumed_module, batches, second, tmp_path, ckpt_path=str(path))
    assert resumed.global_step == 4  # 2 steps restored + 2 more
    moved = [
        not torch.equal(saved[name], value)
        for name, value in resumed_module.state_dict().items()
        if value.is_floating_point() and "num_batches" not in name
    ]
    assert any(moved), "the resumed run did not train"


def test_bf16_probabilities_are_fp32_and_close_to_fp32_ones():
    torch.manual_seed(0)
    module = _tiny_segmenter().eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        exact = module(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = module(image)
    assert fast.dtype == torch.float32
    assert torch.allclose(fast.sum(1), torch.ones(1, 32, 32), atol=1e-5)
    assert (fast - exact).abs().max() < 0.05
