"""The command line, `python -m vae.train`: train a VAE with the one loop (vae.train) and save a checkpoint.

Its options that set the model or the training are built from the declarations in
vae.hyperparameters, so it accepts and refuses what the library and the Train page do.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path

from vae import train as loop  # the module, so a test may replace loop.train
from vae.datasets import DEFAULT_DATASET, DataError, dataset_names, load_dataset
from vae.devices import DeviceError, resolve_device
from vae.history import EpochRecord
from vae.hyperparameters import HYPERPARAMETERS, Hyperparameter
from vae.models import ModelConfig, ModelConfigError
from vae.train import StepEvent, TrainConfig, TrainConfigError, TrainEvent, checkpoint_story

MODEL_OPTIONS = ("arch", "latent_dim", "hidden", "likelihood")


def _parser_of(setting: Hyperparameter):
    def parse(text: str):
        try:
            return setting.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def add_option(parser: argparse.ArgumentParser, setting: Hyperparameter) -> None:
    """`--name` for one declared setting: its choices or its bounds, its default, its help."""
    if setting.choices:
        parser.add_argument(setting.flag, choices=setting.choices, default=setting.default, help=setting.described)
    elif isinstance(setting.default, tuple):  # a list of values; empty means "the architecture's default"
        parser.add_argument(setting.flag, type=_parser_of(setting), nargs="+", default=None, help=setting.described)
    else:
        parser.add_argument(setting.flag, type=_parser_of(setting), default=setting.default, help=setting.described)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae.train",
                                     description="Train a VAE and save it as a checkpoint folder.")
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help=f"one of {', '.join(dataset_names())} (default {DEFAULT_DATASET})")
    parser.add_argument("--data-dir", default=None, help="folder for downloadable data sets")
    for name in (*MODEL_OPTIONS, *loop.TRAINING_SETTINGS):
        add_option(parser, HYPERPARAMETERS[name])
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", required=True, type=Path,
                        help="checkpoint folder to write (its name: letters, digits, - and _)")
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
        train_config = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, device=args.device,
                                   **{name: getattr(args, name) for name in loop.TRAINING_SETTINGS})
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
    bar = tqdm(total=args.epochs * math.ceil(len(dataset.train_images) / args.batch_size), unit="step",
               dynamic_ncols=True)

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, StepEvent):
            bar.update(1)
            bar.set_postfix(epoch=event.epoch, loss=f"{event.total:.1f}", img_s=f"{event.images_per_second:.0f}",
                            refresh=False)
        else:
            test = EpochRecord.from_dict(event.record).test
            bar.write(f"epoch {event.epoch:3d}  test recon {test.recon:8.2f}  kl {test.kl:7.2f}  -ELBO "
                      f"{test.total:8.2f} nats/image")

    try:
        result = loop.train(model_config, train_config, dataset=dataset, on_event=on_event, stop=stop)
    finally:
        bar.close()
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_handler)
    print(result.message, file=sys.stderr if result.status != "finished" else sys.stdout)
    if not result.history:
        print("No epoch completed, so no checkpoint was written.", file=sys.stderr)
        return 1
    try:
        save_checkpoint(args.out, result.model, overwrite=args.overwrite,
                        **checkpoint_story(model_config, train_config, dataset, result))
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Saved {args.out} ({result.device}, {result.seconds:.1f} s).")
    return {"finished": 0, "stopped": 130, "nan": 1}[result.status]


if __name__ == "__main__":
    sys.exit(main())
