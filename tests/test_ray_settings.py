"""The operator's cluster settings (vae.settings) and the executor they choose; no Ray needed to run these."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vae import jobs
from vae.executors.in_process import InProcessExecutor
from vae.settings import SettingsError, load_settings


def test_ray_settings_default_to_training_in_this_process():
    settings = load_settings(environ={})
    assert settings.ray_address is None and settings.ray_num_cpus == 1 and settings.ray_num_gpus == 0
    assert isinstance(jobs.chosen_executor({}), InProcessExecutor)


def test_ray_settings_come_from_the_environment_and_secrets():
    settings = load_settings({"ray_num_gpus": 0.25}, {"LATENT_LAB_RAY_ADDRESS": "ray://head:10001", "LATENT_LAB_RAY_NUM_CPUS": "2",
                                                      "LATENT_LAB_RAY_MAX_RUNS": "200"})
    assert (settings.ray_address, settings.ray_num_cpus, settings.ray_num_gpus, settings.ray_max_runs) == \
        ("ray://head:10001", 2.0, 0.25, 200)
    assert load_settings(environ={"LATENT_LAB_RAY_ADDRESS": "auto"}).ray_address == "auto"


@pytest.mark.parametrize("name, value, says", [
    ("RAY_ADDRESS", "head", "ray://HOST:PORT"), ("RAY_ADDRESS", "ray://head:port", "ray://HOST:PORT"),
    ("RAY_NUM_CPUS", "0", "from 0.1 to 256"), ("RAY_NUM_CPUS", "many", "must be a number"),
    ("RAY_NUM_GPUS", "-1", "from 0 to 8"), ("RAY_NUM_GPUS", "nan", "from 0 to 8"), ("RAY_MAX_RUNS", "0.5", "must be a number"),
])
def test_ray_settings_out_of_bounds_are_refused_by_name(name, value, says):
    with pytest.raises(SettingsError, match=name.lower()) as refused:
        load_settings(environ={f"LATENT_LAB_{name}": value})
    assert says in str(refused.value)


def test_ray_is_not_imported_by_a_server_that_trains_in_process(tmp_path):
    script = ("import sys; from vae.jobs import JobManager; from vae.train import TrainConfig; "
              "m = JobManager(); j = m.submit('r', {'arch': 'mlp', 'latent_dim': 2, 'hidden': (8,)}, "
              f"TrainConfig(dataset='digits', epochs=1, batch_size=512), root={str(tmp_path)!r}); "
              "assert j.wait(120).status == 'finished', j.view().message; "
              "assert not any(name == 'ray' or name.startswith('ray.') for name in sys.modules); "
              "import os; os._exit(0)")  # as the server ends: no teardown racing PyTorch's native threads
    subprocess.run([sys.executable, "-c", script], check=True, timeout=180, cwd=Path(__file__).resolve().parent.parent)
