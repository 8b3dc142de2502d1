"""The one training loop, used by the CLI (`python -m vae.train`) and by the app's jobs.

It maximises the ELBO with Adam, evaluates the test split after every epoch, reports events to
a callback, stops between steps when asked (keeping the last complete epoch) and refuses to go
on when a loss turns NaN or infinite (keeping the last good weights).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from vae.data import DEFAULT_DATASET, Dataset, DataError, dataset_names, load_dataset
from vae.devices import DeviceError, resolve_device
from vae.losses import ELBOParts, elbo_parts, kl_weight
from vae.models import ARCHITECTURES, LIKELIHOODS, MAX_LATENT_DIM, VAE, ModelConfig, ModelConfigError, build_model

PREVIEW_COUNT = 8  # test images (a spread of labels) whose reconstructions travel with the events
PREVIEW_SECONDS = 1.0  # at most one in-epoch preview this often


class TrainConfigError(ValueError):
    """Training settings that make no sense."""


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    warmup_epochs: float = 0.0  # KL weight ramps from 0 to beta over these epochs
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and 1 <= self.epochs <= 10_000):
            raise TrainConfigError("epochs must be a whole number from 1 to 10000.")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536):
            raise TrainConfigError("batch size must be a whole number from 1 to 65536.")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise TrainConfigError("learning rate must be in (0, 1].")
        if not (math.isfinite(self.beta) and 0 <= self.beta <= 1000):
            raise TrainConfigError("beta must be between 0 and 1000.")
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise TrainConfigError("warm-up epochs must be zero or more.")

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
    record: dict  # the history entry for this epoch
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


def _means(parts: ELBOParts) -> dict:
    return {"recon": float(parts.recon.mean()), "kl": float(parts.kl.mean()), "total": float(parts.total.mean())}


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
    return [name for name, value in model.state_dict().items() if value.is_floating_point() and not torch.isfinite(value).all()]


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
        raise ModelConfigError(f"The model expects images {model_config.image_shape}, the data set has {dataset.image_shape}.")
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
                message = (f"The loss became {float(loss.detach())} at epoch {epoch}, step {step}; training was refused from there. "
                           f"Kept the weights of the last complete epoch ({len(history)}). Try a smaller learning rate.")
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
        record = {
            "epoch": epoch,
            "train": dict(zip(("recon", "kl", "total"), train_means)),
            "test": {k: test[k] for k in ("recon", "kl", "total")},
            "kl_per_dim": test["kl_per_dim"],
            "beta": kl_weight(train_config.beta, train_config.warmup_epochs, epoch),
            "seconds": time.perf_counter() - epoch_started,
            "images_per_second": images_seen / max(train_seconds, 1e-9),
        }
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


def checkpoint_story(model_config: ModelConfig, train_config: TrainConfig, dataset: Dataset, result: TrainResult) -> dict:
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


# ---------------------------------------------------------------- command line

def _bounded(kind, low, high, what):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be {'a whole number' if kind is int else 'a number'}, not {text!r}")
        if not (low <= value <= high) or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, not {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae.train", description="Train a VAE and save it as a checkpoint folder.")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"one of {', '.join(dataset_names())} (default {DEFAULT_DATASET})")
    parser.add_argument("--data-dir", default=None, help="folder for downloadable data sets")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="mlp")
    parser.add_argument("--latent-dim", type=_bounded(int, 1, MAX_LATENT_DIM, "latent dimension"), default=20)
    parser.add_argument("--hidden", type=_bounded(int, 1, 8192, "hidden units"), nargs="+", default=None,
                        help="dense layer width(s), one or two (default 400 for mlp, 256 for conv)")
    parser.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    parser.add_argument("--beta", type=_bounded(float, 0.0, 1000.0, "beta"), default=1.0)
    parser.add_argument("--warmup-epochs", type=_bounded(float, 0.0, 10_000.0, "warm-up epochs"), default=0.0)
    parser.add_argument("--epochs", type=_bounded(int, 1, 10_000, "epochs"), default=10)
    parser.add_argument("--batch-size", type=_bounded(int, 1, 65_536, "batch size"), default=128)
    parser.add_argument("--lr", type=_bounded(float, 1e-8, 1.0, "learning rate"), default=1e-3)
    parser.add_argument("--seed", type=_bounded(int, 0, 2**31 - 1, "seed"), default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder to write (its name: letters, digits, - and _)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from vae.checkpoints import CheckpointError, save_checkpoint, validate_name

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        validate_name(args.out.name)
    except CheckpointError as error:
        parser.error(str(error))
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} already exists; pass --overwrite to replace it")
    try:
        train_config = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
                                   lr=args.lr, beta=args.beta, warmup_epochs=args.warmup_epochs, seed=args.seed, device=args.device)
        resolve_device(args.device)
    except (TrainConfigError, DeviceError) as error:
        parser.error(str(error))
    try:
        dataset = load_dataset(args.dataset, args.data_dir)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C during a download: nothing was trained
        print("Stopped while loading the data set; nothing was trained or written.", file=sys.stderr)
        return 130
    if dataset.notes:
        print(f"note: {dataset.notes}", file=sys.stderr)
    try:
        model_config = ModelConfig(arch=args.arch, latent_dim=args.latent_dim, likelihood=args.likelihood,
                                   hidden=tuple(args.hidden or ()), image_shape=dataset.image_shape)
    except ModelConfigError as error:
        parser.error(str(error))

    stop = threading.Event()
    # Ctrl-C stops between steps and the last complete epoch is saved; the old handler comes back after.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop.set()) if in_main_thread else None
    bar = tqdm(total=args.epochs * math.ceil(len(dataset.train_images) / args.batch_size), unit="step", dynamic_ncols=True)

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, StepEvent):
            bar.update(1)
            bar.set_postfix(epoch=event.epoch, loss=f"{event.total:.1f}", img_s=f"{event.images_per_second:.0f}", refresh=False)
        else:
            test = event.record["test"]
            bar.write(f"epoch {event.epoch:3d}  test recon {test['recon']:8.2f}  kl {test['kl']:7.2f}  -ELBO {test['total']:8.2f} nats/image")

    try:
        result = train(model_config, train_config, dataset=dataset, on_event=on_event, stop=stop)
    finally:
        bar.close()
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_handler)
    print(result.message, file=sys.stderr if result.status != "finished" else sys.stdout)
    if not result.history:
        print("No epoch completed, so no checkpoint was written.", file=sys.stderr)
        return 1
    try:
        save_checkpoint(args.out, result.model, overwrite=args.overwrite, **checkpoint_story(model_config, train_config, dataset, result))
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Saved {args.out} ({result.device}, {result.seconds:.1f} s).")
    return {"finished": 0, "stopped": 130, "nan": 1}[result.status]


if __name__ == "__main__":
    sys.exit(main())
