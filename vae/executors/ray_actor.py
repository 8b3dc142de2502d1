"""One training run on a Ray worker: what `vae.executors.ray_cluster` starts as an actor per run.

It loads its data set where it runs (the embedded sets and `shapes` need nothing shared; an
uploaded set arrives through Ray's object store; a `folder:` set must be on storage the node
mounts at the same path), trains with `vae.train.train` on a thread of its own, and keeps what
the server polls: the events since the server's last poll, the last complete epoch's weights and,
at the end, the outcome. Nothing here imports Ray: `ray_cluster` wraps this class with
`ray.remote`, so the module is plain Python wherever it is imported.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

import torch

from vae.datasets import DataError, Dataset, load_dataset
from vae.devices import DeviceError, resolve_device
from vae.models import ModelConfig, ModelConfigError
from vae.train import EpochEvent, TrainConfig, TrainEvent, train

KEPT_STEP_EVENTS = 2000  # step events kept for a server that reattaches (every epoch event is kept)


def folder_missing_message(name: str) -> str | None:
    """Why a `folder:` data set cannot be read on this node, or None when it can (or `name` is no folder).

    The message names the node, never the path: other students read run messages.
    """
    if not name.startswith("folder:"):
        return None
    from vae.datasets.names import parse_folder_argument

    try:
        request = parse_folder_argument(name.removeprefix("folder:"))
    except DataError as error:
        return str(error)
    if request.path.is_dir():
        return None
    return (f"The server folder this run trains on is not on the cluster node '{socket.gethostname()}': on a "
            "cluster, a server folder must be on storage every node mounts at the same path "
            "(see docs/serving.md, On a cluster).")


class RunActor:
    """A run on a cluster node. Its methods are called by the server (a threaded actor: `poll` and
    `stop` answer while training goes on in the run's own thread).

    model: ModelConfig settings except image_shape; train_config: TrainConfig.to_dict();
    dataset: the Dataset itself (an upload, through the object store) or None to load it by name here;
    threads: torch threads (the CPUs Ray reserved for this run).
    """

    def __init__(self, model: dict, train_config: dict, dataset: Dataset | None = None, threads: int = 1):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: list[tuple[int, TrainEvent]] = []  # (sequence number, event), in order
        self._seq = 0
        self._steps = 0  # step events in self._events
        self._epochs = 0  # complete epochs, whose weights are in self._weights
        self._weights: dict[str, torch.Tensor] | None = None
        self._facts: dict | None = None  # what the checkpoint records of the data set, once loaded
        self._outcome: dict | None = None
        self._thread = threading.Thread(target=self._run, args=(model, train_config, dataset, threads),
                                        name="latent-lab-run", daemon=True)
        self._thread.start()

    def _run(self, model: dict, train_config: dict, dataset: Dataset | None, threads: int) -> None:
        try:
            torch.set_num_threads(max(1, threads))
            config = TrainConfig(**train_config)
            device = resolve_device(config.device)
            if dataset is None:
                if (missing := folder_missing_message(config.dataset)) is not None:
                    raise DataError(missing)
                dataset = load_dataset(config.dataset, config.data_dir)
            model_config = ModelConfig(**model, image_shape=dataset.image_shape)
            with self._lock:
                self._facts = {"name": dataset.name, "image_shape": list(dataset.image_shape),
                               "train_size": len(dataset.train_images), "test_size": len(dataset.test_images),
                               "label_names": list(dataset.label_names) if dataset.label_names else None,
                               "notes": getattr(dataset, "notes", "") or "", "device": str(device),
                               "node": socket.gethostname()}
            result = train(model_config, config, dataset=dataset, on_event=self._on_event, stop=self._stop)
            outcome = {"status": result.status, "message": result.message, "seconds": result.seconds,
                       "device": result.device, "history": result.history}
        except (DataError, DeviceError, ModelConfigError) as error:
            outcome = {"error": str(error)}
        except Exception as error:  # reported to the server as the run's message
            outcome = {"error": f"Training failed unexpectedly on the cluster: {type(error).__name__}: {error}"}
        with self._lock:
            self._outcome = outcome

    def _on_event(self, event: TrainEvent) -> None:
        with self._lock:
            self._seq += 1
            if isinstance(event, EpochEvent):
                # The epoch's weights go to the server (a few MB), so it keeps them if this node dies.
                self._weights = {key: value.detach().cpu() for key, value in (event.weights or {}).items()}
                self._epochs = event.epoch
                event = replace(event, weights=None)
            else:
                self._steps += 1
            self._events.append((self._seq, event))
            if self._steps > 2 * KEPT_STEP_EVENTS:  # drop the oldest steps, now and then rather than every step
                drop = self._steps - KEPT_STEP_EVENTS
                kept = []
                for item in self._events:
                    if drop and not isinstance(item[1], EpochEvent):
                        drop -= 1
                        continue
                    kept.append(item)
                self._events, self._steps = kept, KEPT_STEP_EVENTS

    def poll(self, since: int, epochs_known: int) -> dict:
        """What happened after event `since`: events, the data set's facts, the newest complete epoch's
        weights (only when the server holds fewer than `epochs` of them) and the outcome once ended."""
        with self._lock:
            return {"events": [item for item in self._events if item[0] > since], "seq": self._seq,
                    "facts": self._facts, "epochs": self._epochs,
                    "weights": self._weights if self._epochs > epochs_known else None, "outcome": self._outcome}

    def stop(self) -> None:
        """End the run after its current step (it keeps the last complete epoch)."""
        self._stop.set()
