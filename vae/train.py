"""The one training loop, used by the CLI (`python -m vae.train`, in vae.train_cli) and by the app's jobs.

It maximises the ELBO with Adam, evaluates the test split after every epoch, reports events to
a callback, stops between steps when asked (keeping the last complete epoch) and refuses to go
on when a loss turns NaN or infinite (keeping the last good weights).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from vae.datasets import DEFAULT_DATASET, Dataset, load_dataset
from vae.devices import resolve_device
from vae.history import EpochLosses, EpochRecord
from vae.hyperparameters import HYPERPARAMETERS
from vae.losses import elbo_parts, kl_weight
from vae.models import VAE, ModelConfig, ModelConfigError, build_model

PREVIEW_COUNT = 8  # test images (a spread of labels) whose reconstructions travel with the events
PREVIEW_SECONDS = 1.0  # at most one in-epoch preview this often

TRAINING_SETTINGS = ("epochs", "batch_size", "lr", "beta", "warmup_epochs", "seed")  # declared in vae.hyperparameters


class TrainConfigError(ValueError):
    """Training settings that make no sense."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train (saved verbatim under "train" in a checkpoint's config.json); raises TrainConfigError
    naming the first setting outside its declared bounds (vae.hyperparameters)."""

    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    epochs: int = HYPERPARAMETERS["epochs"].default
    batch_size: int = HYPERPARAMETERS["batch_size"].default
    lr: float = HYPERPARAMETERS["lr"].default
    beta: float = HYPERPARAMETERS["beta"].default
    warmup_epochs: float = HYPERPARAMETERS["warmup_epochs"].default  # KL weight ramps from 0 to beta over these epochs
    seed: int = HYPERPARAMETERS["seed"].default
    device: str = "auto"

    def __post_init__(self) -> None:
        # The bounds are declared once, in vae.hyperparameters; the CLI and the Train page use the same.
        for name in TRAINING_SETTINGS:
            HYPERPARAMETERS[name].check(getattr(self, name), TrainConfigError)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StepEvent:
    epoch: int  # 1-based, the epoch in progress
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    epochs: int
    recon: float  # this batch, per image in nats
    kl: float
    total: float
    images_per_second: float
    elapsed_seconds: float
    preview: torch.Tensor | None = None  # (2 * PREVIEW_COUNT, C, H, W): originals then reconstructions


@dataclass(frozen=True)
class EpochEvent:
    epoch: int
    epochs: int
    record: dict  # the history entry for this epoch: vae.history.EpochRecord.to_dict(), as config.json stores it
    preview: torch.Tensor  # (2 * PREVIEW_COUNT, C, H, W): originals then reconstructions
    weights: dict | None = None  # this epoch's state_dict (a copy): a cluster run sends it to the server


@dataclass
class TrainResult:
    model: VAE
    history: list[dict]
    status: str  # "finished", "stopped" or "nan"
    message: str
    device: str
    seconds: float = 0.0

    @property
    def epochs_completed(self) -> int:
        return len(self.history)


TrainEvent = StepEvent | EpochEvent


@torch.no_grad()
def evaluate(model: VAE, images: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> dict:
    """Mean recon, KL, total (= -ELBO) and per-dimension KL per image over `images`, one z sample each."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    sums = {"recon": 0.0, "kl": 0.0, "total": 0.0}
    kl_per_dim = torch.zeros(model.config.latent_dim, dtype=torch.float64)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(model.device)
        parts = elbo_parts(model, batch, generator=generator)
        sums["recon"] += float(parts.recon.sum())
        sums["kl"] += float(parts.kl.sum())
        sums["total"] += float(parts.total.sum())
        kl_per_dim += parts.kl_per_dim.sum(0).double().cpu()
    model.train(was_training)
    n = max(len(images), 1)
    return {**{k: v / n for k, v in sums.items()}, "kl_per_dim": (kl_per_dim / n).tolist()}


@torch.no_grad()
def preview(model: VAE, images: torch.Tensor) -> torch.Tensor:
    """Originals stacked over their reconstructions from the posterior mean, on the CPU."""
    was_training = model.training
    model.eval()
    reconstructions = model.reconstruct(images.to(model.device)).cpu()
    model.train(was_training)
    return torch.cat([images.cpu(), reconstructions])


def preview_indices(labels: torch.Tensor | None, count: int, size: int) -> list[int]:
    """`count` indices into a split of `size` images whose labels are spread out: the first image
    of each label in label order, then the second of each, and so on (a split sorted by label, like
    mnist5k's, would otherwise preview eight zeros); evenly spaced indices when there are no labels."""
    count = min(count, size)
    if labels is None or len(labels) != size:
        return torch.linspace(0, size - 1, count).round().long().tolist() if count else []
    by_label = [torch.nonzero(labels == label).flatten().tolist() for label in torch.unique(labels).tolist()]
    picked = [rows[rank] for rank in range(count) for rows in by_label if rank < len(rows)]
    return picked[:count]


def non_finite_weights(model: VAE) -> list[str]:
    """Names of the model's tensors holding a NaN or an infinity (empty when every weight is finite)."""
    return [name for name, value in model.state_dict().items() if value.is_floating_point()
            and not torch.isfinite(value).all()]


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    return not isinstance(value, float) or math.isfinite(value)


def _snapshot(model: VAE) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def _adam(model: VAE, lr: float, device: torch.device) -> torch.optim.Optimizer:
    # The fused kernel runs Adam's update in one pass per tensor; it exists for CPU and CUDA.
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def train(model_config: ModelConfig, train_config: TrainConfig, *, dataset: Dataset | None = None,
          on_event: Callable[[TrainEvent], None] | None = None, stop: threading.Event | None = None) -> TrainResult:
    """Train a new VAE; returns the model of the last complete epoch and its history.

    Raises DataError, DeviceError or ModelConfigError (user-facing messages) before training starts.
    """
    device = resolve_device(train_config.device)
    dataset = dataset or load_dataset(train_config.dataset, train_config.data_dir)
    if tuple(model_config.image_shape) != tuple(dataset.image_shape):
        raise ModelConfigError(f"The model expects images {model_config.image_shape}, "
                               f"the data set has {dataset.image_shape}.")
    torch.manual_seed(train_config.seed)
    model = build_model(model_config, device)
    model.start_output_at_mean(dataset.train_images)
    optimizer = _adam(model, train_config.lr, device)
    train_images = dataset.train_images.to(device)
    test_images = dataset.test_images.to(device)
    preview_images = test_images[preview_indices(dataset.test_labels, PREVIEW_COUNT, len(test_images))]
    shuffler = torch.Generator().manual_seed(train_config.seed)
    n = len(train_images)
    steps_per_epoch = math.ceil(n / train_config.batch_size)
    history: list[dict] = []
    last_good = _snapshot(model)
    started = time.perf_counter()
    train_seconds = 0.0
    images_seen = 0
    status, message = "finished", f"Trained {train_config.epochs} epochs."

    def emit(event: TrainEvent) -> None:
        if on_event is not None:
            on_event(event)

    model.train()
    for epoch in range(1, train_config.epochs + 1):
        order = torch.randperm(n, generator=shuffler).to(device)
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        epoch_started = time.perf_counter()
        last_preview = epoch_started
        for step in range(1, steps_per_epoch + 1):
            if stop is not None and stop.is_set():
                status, message = "stopped", f"Stopped during epoch {epoch}; kept the {len(history)} complete epoch(s)."
                break
            step_started = time.perf_counter()
            batch = train_images[order[(step - 1) * train_config.batch_size: step * train_config.batch_size]]
            beta = kl_weight(train_config.beta, train_config.warmup_epochs, epoch - 1 + (step - 1) / steps_per_epoch)
            parts = elbo_parts(model, batch)
            loss = parts.loss(beta)
            if not torch.isfinite(loss):
                status = "nan"
                message = (f"The loss became {float(loss.detach())} at epoch {epoch}, step {step}; training was "
                           f"refused from there. Kept the weights of the last complete epoch ({len(history)}). Try a "
                           "smaller learning rate.")
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            batch_sums = torch.stack([parts.recon.sum(), parts.kl.sum(), parts.total.sum()]).detach()
            sums += batch_sums
            train_seconds += time.perf_counter() - step_started
            images_seen += len(batch)
            if on_event is not None:
                now = time.perf_counter()
                batch_means = (batch_sums / len(batch)).tolist()
                show = now - last_preview >= PREVIEW_SECONDS
                if show:
                    last_preview = now
                emit(StepEvent(epoch, step, steps_per_epoch, train_config.epochs, *batch_means,
                               images_per_second=images_seen / max(train_seconds, 1e-9), elapsed_seconds=now - started,
                               preview=preview(model, preview_images) if show else None))
        if status != "finished":
            model.load_state_dict(last_good)
            break
        train_means = (sums / n).tolist()
        test = evaluate(model, test_images, seed=train_config.seed)
        record = EpochRecord(
            epoch=epoch,
            train=EpochLosses(*train_means),
            test=EpochLosses(recon=test["recon"], kl=test["kl"], total=test["total"]),
            kl_per_dim=test["kl_per_dim"],
            beta=kl_weight(train_config.beta, train_config.warmup_epochs, epoch),
            seconds=time.perf_counter() - epoch_started,
            images_per_second=images_seen / max(train_seconds, 1e-9),
        ).to_dict()
        broken = non_finite_weights(model)
        if broken or not _finite(record):
            # The epoch's last update can blow up after its loss was checked (one step per epoch is
            # common for a small folder): nothing non-finite may enter the history or the kept weights.
            status = "nan"
            what = f"weights ({', '.join(broken[:3])})" if broken else "test figures"
            message = (f"Epoch {epoch} ended with non-finite {what}; training was refused from there. "
                       f"Kept the weights of the last complete epoch ({len(history)}). Try a smaller learning rate.")
            model.load_state_dict(last_good)
            break
        history.append(record)
        last_good = _snapshot(model)
        emit(EpochEvent(epoch, train_config.epochs, record, preview(model, preview_images), weights=last_good))
    model.eval()
    return TrainResult(model, history, status, message, device=str(device), seconds=time.perf_counter() - started)


def checkpoint_story(model_config: ModelConfig, train_config: TrainConfig, dataset: Dataset,
                     result: TrainResult) -> dict:
    """The keyword arguments save_checkpoint needs to record this run."""
    return {
        "dataset": {"name": dataset.name, "image_shape": list(dataset.image_shape),
                    "train_size": len(dataset.train_images), "test_size": len(dataset.test_images),
                    "label_names": list(dataset.label_names) if dataset.label_names else None,
                    "preprocessing": "pixels scaled to [0, 1]"},
        "train": {**train_config.to_dict(), "device_used": result.device, "status": result.status,
                  "seconds": round(result.seconds, 2)},
        "history": result.history,
    }


if __name__ == "__main__":  # `python -m vae.train`: the command line lives in vae.train_cli
    from vae.train_cli import main

    sys.exit(main())
