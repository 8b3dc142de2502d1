"""The command line: `python -m vae.train` trains on digits with a progress bar and saves a checkpoint;
bad flags and bad values get argparse-style errors and write nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vae.train as train_module
from vae.checkpoints import load_checkpoint
from vae.train import EpochEvent
from vae.train_cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_cli_trains_on_digits_shows_progress_and_saves_a_checkpoint(tmp_path):
    out = tmp_path / "checkpoints" / "cli-digits"
    command = [sys.executable, "-m", "vae.train", "--dataset", "digits", "--arch", "mlp", "--latent-dim", "2",
               "--hidden", "32", "--epochs", "2", "--batch-size", "64", "--lr", "0.002", "--beta", "1.5",
               "--seed", "5", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "epoch   1" in done.stdout and "epoch   2" in done.stdout and "nats/image" in done.stdout
    assert f"Saved {out}" in done.stdout
    assert "step" in done.stderr and "100%" in done.stderr  # the tqdm progress bar
    checkpoint = load_checkpoint(out)
    assert checkpoint.model.config.latent_dim == 2 and checkpoint.model.config.hidden == (32,)
    train = checkpoint.config["train"]
    assert (train["epochs"], train["batch_size"], train["lr"], train["beta"], train["seed"]) == (2, 64, 0.002, 1.5, 5)
    assert train["device_used"] == "cpu" and train["status"] == "finished"
    assert [entry["epoch"] for entry in checkpoint.history] == [1, 2]
    assert checkpoint.config["dataset"]["name"] == "digits"


def run(argv, capsys):
    """main() in this process: (exit code, stdout, stderr); argparse errors exit with code 2."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def digits_args(out: Path, *extra: str) -> list[str]:
    return ["--dataset", "digits", "--latent-dim", "2", "--hidden", "16", "--epochs", "1", "--device", "cpu",
            "--out", str(out), *extra]


def test_defaults_are_those_the_issue_names():
    args = build_parser().parse_args(["--out", "x"])
    assert (args.dataset, args.arch, args.latent_dim, args.epochs, args.batch_size, args.lr, args.beta,
            args.likelihood, args.seed, args.device) == ("mnist5k", "mlp", 20, 10, 128, 1e-3, 1.0, "bernoulli", 0, "auto")


def test_conv_and_gaussian_options_reach_the_saved_model(tmp_path, capsys):
    out = tmp_path / "conv-gauss"
    code, stdout, _ = run(digits_args(out, "--arch", "conv", "--likelihood", "gaussian", "--warmup-epochs", "1"), capsys)
    assert code == 0 and "Saved" in stdout
    config = load_checkpoint(out).model.config
    assert config.arch == "conv" and config.likelihood == "gaussian"


BAD_ARGUMENTS = [
    (["--latent-dim", "0"], "latent dimension must be between 1 and 128, not 0"),
    (["--latent-dim", "129"], "latent dimension must be between 1 and 128"),
    (["--latent-dim", "two"], "latent dimension must be a whole number, not 'two'"),
    (["--lr", "abc"], "learning rate must be a number, not 'abc'"),
    (["--lr", "0"], "learning rate must be between"),
    (["--lr", "nan"], "learning rate must be between"),
    (["--epochs", "0"], "epochs must be between 1"),
    (["--epochs", "1.5"], "epochs must be a whole number"),
    (["--batch-size", "-3"], "batch size must be between 1"),
    (["--beta", "-1"], "beta must be between 0"),
    (["--beta", "inf"], "beta must be between 0"),
    (["--seed", "-1"], "seed must be between 0"),
    (["--hidden", "0"], "hidden units must be between 1"),
    (["--hidden", "8", "8", "8"], "one or two hidden layers"),
    (["--arch", "transformer"], "argument --arch: invalid choice: 'transformer'"),
    (["--likelihood", "poisson"], "argument --likelihood: invalid choice: 'poisson'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--device", "banana"], "'banana' is not a device name"),
]


@pytest.mark.parametrize("extra, message", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_flags_and_values_get_argparse_errors_and_write_nothing(tmp_path, capsys, extra, message):
    code, stdout, stderr = run(digits_args(tmp_path / "never", *extra), capsys)
    assert code == 2
    assert stderr.startswith("usage: python -m vae.train") and "error: " in stderr
    assert message in stderr
    assert list(tmp_path.iterdir()) == []


def test_out_is_required(capsys):
    code, _, stderr = run(["--dataset", "digits"], capsys)
    assert code == 2 and "the following arguments are required: --out" in stderr


@pytest.mark.parametrize("name", ["bad name!", ".hidden", "..", "x" * 65])
def test_a_bad_out_name_is_refused(tmp_path, capsys, name):
    code, _, stderr = run(digits_args(tmp_path / name), capsys)
    assert code == 2 and "not a valid checkpoint name" in stderr
    assert [p for p in tmp_path.iterdir() if p.name != name.rstrip(".")] == []


def test_a_missing_gpu_is_an_argparse_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, stderr = run(digits_args(tmp_path / "gpu", "--device", "cuda"), capsys)
    assert code == 2 and "no usable CUDA GPU" in stderr


def test_an_unknown_data_set_is_a_clear_error(tmp_path, capsys):
    code, _, stderr = run(digits_args(tmp_path / "x") + ["--dataset", "nope"], capsys)
    assert code == 2 and "Unknown data set 'nope'" in stderr and "Traceback" not in stderr


def test_an_existing_out_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "taken"
    assert run(digits_args(out), capsys)[0] == 0
    before = (out / "model.safetensors").read_bytes()
    code, _, stderr = run(digits_args(out, "--seed", "9"), capsys)
    assert code == 2 and "already exists; pass --overwrite" in stderr
    assert (out / "model.safetensors").read_bytes() == before
    code, stdout, _ = run(digits_args(out, "--seed", "9", "--overwrite"), capsys)
    assert code == 0 and "Saved" in stdout
    assert (out / "model.safetensors").read_bytes() != before
    assert load_checkpoint(out).config["train"]["seed"] == 9


def test_ctrl_c_stops_between_steps_and_saves_the_last_complete_epoch(tmp_path, capsys, monkeypatch):
    real_train = train_module.train

    def train_then_press_ctrl_c(*args, on_event, **kwargs):
        def hook(event):
            on_event(event)
            if isinstance(event, EpochEvent) and event.epoch == 1:
                signal.raise_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends

        return real_train(*args, on_event=hook, **kwargs)

    monkeypatch.setattr(train_module, "train", train_then_press_ctrl_c)
    handler_before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "interrupted"
    code, _, stderr = run(digits_args(out) + ["--epochs", "5"], capsys)
    assert code == 130
    assert "Stopped during epoch 2; kept the 1 complete epoch(s)." in stderr
    assert len(load_checkpoint(out).history) == 1
    assert signal.getsignal(signal.SIGINT) is handler_before  # Ctrl-C works normally again afterwards
