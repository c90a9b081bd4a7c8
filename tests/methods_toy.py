"""A tiny, separable audio-visual zero-shot toy problem shared by the method tests (no I/O)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from avzsl.model.registry import FeatureBatch, FeatureDims, Method, build_method

DIMS = FeatureDims(audio_dim=12, visual_dim=10, text_dim=8)


def toy_problem(seed: int = 0, classes: int = 5, per_class: int = 24, noise: float = 0.15
                ) -> tuple[FeatureBatch, torch.Tensor, torch.Tensor]:
    """Features that are a fixed linear map of the class embedding plus noise.

    Returns:
        batch with ``(N, 12)`` audio and ``(N, 10)`` visual features, ``(N,)`` labels, ``(C, 8)`` class embeddings.
    """
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(classes, DIMS.text_dim, generator=g), dim=1)
    map_a = torch.randn(DIMS.text_dim, DIMS.audio_dim, generator=g)
    map_v = torch.randn(DIMS.text_dim, DIMS.visual_dim, generator=g)
    labels = torch.arange(classes).repeat_interleave(per_class)
    audio = emb[labels] @ map_a + noise * torch.randn(len(labels), DIMS.audio_dim, generator=g)
    visual = emb[labels] @ map_v + noise * torch.randn(len(labels), DIMS.visual_dim, generator=g)
    return FeatureBatch(audio, visual), labels, emb


def train_steps(method: Method, batch: FeatureBatch, labels: torch.Tensor, emb: torch.Tensor, steps: int,
                lr: float = 3e-3, batch_size: int = 40, seed: int = 0) -> list[float]:
    """Plain training loop over random batches; returns the loss of every step."""
    torch.manual_seed(seed)
    method.prepare(batch, labels, emb)
    opt = method.configure_optimizer(lr)
    losses = []
    method.train()
    for _ in range(steps):
        rows = torch.randperm(len(labels))[:batch_size]
        out = method.training_loss(batch.index(rows), labels[rows], emb)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        losses.append(float(out.total.detach()))
    method.eval()
    return losses


def accuracy(method: Method, batch: FeatureBatch, labels: torch.Tensor, emb: torch.Tensor) -> float:
    with torch.no_grad():
        scores = method.scores(batch, emb)
    return float((scores.argmax(dim=1) == labels).float().mean())


def build(name: str, **options: object) -> Method:
    torch.manual_seed(0)
    return build_method(name, DIMS, dict(options))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test's tiny models on one intra-op thread: on a loaded machine, OpenMP threads of such small ops wait
    on each other far longer than they compute."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
