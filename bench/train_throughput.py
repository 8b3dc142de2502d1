"""Training speed and quality: the project's loop against a plain canonical PyTorch VAE loop.

    python bench/train_throughput.py [--epochs 10] [--repeats 2] [--threads N]

Both train an MLP VAE 784-400-20 on mnist5k (Bernoulli likelihood, Adam, lr 1e-3, batch 128) in this
one process, on the same batches in the same order. The project side is `vae.train.train` itself; the
canonical side is written out below in the style of pytorch/examples `vae/main.py` (fc1, fc21, fc22,
fc3, fc4; BCE summed + KLD; Adam).

Quality: one run of each for --epochs (default 10); prints the test -ELBO per image after the last
epoch (target: the project within 1 nat of the canonical loop).
Speed: --rounds short runs (--speed-epochs each) alternating project, canonical, project, ... so
that load on a shared machine hits both alike; images/s counts training steps only, as both loops
do; prints the best and the median of each and the ratio of the bests (target >= 1.0). The best
run is the least disturbed one, which is what a busy machine lets us measure.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vae.datasets import load_dataset  # noqa: E402
from vae.history import EpochRecord  # noqa: E402
from vae.models import ModelConfig  # noqa: E402
from vae.train import TrainConfig, train  # noqa: E402

BATCH_SIZE, LR, SEED = 128, 1e-3, 0


class CanonicalVAE(nn.Module):
    """The pytorch/examples VAE: 784-400-20, ReLU, sigmoid output."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    """Reconstruction + KL summed over the batch (Kingma & Welling, Appendix B)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def canonical_run(train_images: torch.Tensor, test_images: torch.Tensor, epochs: int) -> tuple[float, float]:
    """(images/s over training steps, test loss per image after the last epoch)."""
    torch.manual_seed(SEED)
    model = CanonicalVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    # The same batches as vae.train.train: one seeded generator, one permutation per epoch.
    shuffler = torch.Generator().manual_seed(SEED)
    n = len(train_images)
    seconds, images = 0.0, 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=shuffler)
        for start in range(0, n, BATCH_SIZE):
            started = time.perf_counter()
            data = train_images[order[start:start + BATCH_SIZE]]
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - started
            images += len(data)
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for start in range(0, len(test_images), 1000):
            data = test_images[start:start + 1000]
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
    return images / seconds, test_loss / len(test_images)


def project_run(dataset, epochs: int) -> tuple[float, float]:
    model_config = ModelConfig(arch="mlp", image_shape=(1, 28, 28), latent_dim=20, hidden=(400,))
    train_config = TrainConfig(dataset="mnist5k", epochs=epochs, batch_size=BATCH_SIZE, lr=LR, seed=SEED, device="cpu")
    result = train(model_config, train_config, dataset=dataset)
    assert result.status == "finished", result.message
    last = EpochRecord.from_dict(result.history[-1])
    return last.images_per_second, last.test.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the quality runs")
    parser.add_argument("--rounds", type=int, default=5, help="alternating speed runs of each loop")
    parser.add_argument("--speed-epochs", type=int, default=2, help="epochs of each speed run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: PyTorch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist5k")
    print(f"mnist5k: {len(dataset.train_images)} train / {len(dataset.test_images)} test images; "
          f"MLP 784-400-20, batch {BATCH_SIZE}, lr {LR}, {torch.get_num_threads()} torch threads")
    # Warm-up: the first optimizer step anywhere imports torch._dynamo (seconds); keep it out of both timings.
    project_run(dataset, 1)
    canonical_run(dataset.train_images, dataset.test_images, 1)

    project_speeds, canonical_speeds = [], []
    for round_ in range(args.rounds):
        project_speeds.append(project_run(dataset, args.speed_epochs)[0])
        canonical_speeds.append(canonical_run(dataset.train_images, dataset.test_images, args.speed_epochs)[0])
        print(f"speed round {round_ + 1}: project {project_speeds[-1]:6.0f} img/s | canonical {canonical_speeds[-1]:6.0f} img/s",
              flush=True)
    best_project, best_canonical = max(project_speeds), max(canonical_speeds)
    print(f"images/s, best of {args.rounds}: project {best_project:.0f}, canonical {best_canonical:.0f}, "
          f"ratio {best_project / best_canonical:.2f} (target >= 1.0); medians {statistics.median(project_speeds):.0f} "
          f"and {statistics.median(canonical_speeds):.0f}, ratio {statistics.median(project_speeds) / statistics.median(canonical_speeds):.2f}")

    project_speed, project_loss = project_run(dataset, args.epochs)
    canonical_speed, canonical_loss = canonical_run(dataset.train_images, dataset.test_images, args.epochs)
    print(f"test loss after {args.epochs} epochs, nats/image: project {project_loss:.2f}, canonical {canonical_loss:.2f}, "
          f"difference {project_loss - canonical_loss:+.2f} (target within 1); "
          f"these runs went at {project_speed:.0f} and {canonical_speed:.0f} img/s")
    assert math.isfinite(project_loss) and math.isfinite(canonical_loss)


if __name__ == "__main__":
    main()
