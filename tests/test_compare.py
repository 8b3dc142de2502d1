"""vae.compare and vae.sweeps: comparability, the rate-distortion plane, traversals, and sweeps on the job queue."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHIPPED
from vae import jobs
from vae.checkpoints import read_config
from vae.compare import ComparedModel, comparability, equal_elbo_levels, rate_distortion, traversal_codes, traverse
from vae.history import read_history
from vae.sweeps import SweepError, parse_values, run_name, stop_group, submit_sweep
from vae.train import TrainConfig


def compared(name: str, **changes) -> ComparedModel:
    model = ComparedModel.from_config(name, read_config(SHIPPED / "digits-mlp-z2"))
    return ComparedModel(**{**model.__dict__, **changes})


def test_models_of_one_data_set_and_likelihood_are_comparable_and_a_beta_difference_is_named():
    ok, sentence = comparability([compared("a"), compared("b", beta=4.0)])
    assert ok and "digits" in sentence and "β (1, 4)" in sentence


@pytest.mark.parametrize("change, words", [({"dataset": "mnist5k"}, "different data sets (digits, mnist5k)"),
                                           ({"likelihood": "gaussian"}, "different likelihoods (bernoulli, gaussian)")])
def test_different_data_sets_or_likelihoods_are_not_comparable_and_the_sentence_says_why(change, words):
    ok, sentence = comparability([compared("a"), compared("b", **change)])
    assert not ok and words in sentence


def test_rate_distortion_points_are_the_test_kl_and_reconstruction_of_each_epoch():
    history = read_config(SHIPPED / "digits-mlp-z2")["history"]
    rate, distortion = rate_distortion(read_history(history))
    assert len(rate) == len(history)
    assert rate[-1] == pytest.approx(history[-1]["test"]["kl"])
    assert rate[-1] + distortion[-1] == pytest.approx(history[-1]["test"]["total"], rel=1e-6)


def test_equal_elbo_lines_span_every_model_and_are_round():
    levels = equal_elbo_levels(np.array([118.3, 167.9, 25.3]))
    assert levels.min() <= 25.3 and levels.max() >= 167.9
    assert np.allclose(np.diff(levels), np.diff(levels)[0]) and 3 <= len(levels) <= 8


def test_traversal_codes_move_one_dimension_per_row_and_keep_the_others_at_the_base():
    base = np.array([0.5, -1.0, 2.0])
    codes = traversal_codes(base, [2, 0], np.array([-3.0, 0.0, 3.0]))
    assert codes.shape == (6, 3)
    np.testing.assert_allclose(codes[:3, 2], [-3, 0, 3])
    np.testing.assert_allclose(codes[:3, :2], np.tile(base[:2], (3, 1)))
    np.testing.assert_allclose(codes[3:, 0], [-3, 0, 3])
    np.testing.assert_allclose(codes[3:, 1:], np.tile(base[1:], (3, 1)))


def test_a_traversal_has_one_row_per_active_dimension_most_kl_first_named_z1_to_zd():
    from vae.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(SHIPPED / "mnist5k-conv-z16")
    kl = checkpoint.history[-1]["kl_per_dim"]
    traversal = traverse(checkpoint.model, read_history(checkpoint.history), None, steps=5)
    active = sorted((i for i in range(16) if kl[i] >= 0.1), key=lambda i: -kl[i])[:10]
    assert traversal.dimensions == active
    assert traversal.row_labels[0].startswith(f"z{active[0] + 1} · KL")
    assert tuple(traversal.images.shape) == (len(active) * 5, 1, 28, 28)
    labelled = traverse(checkpoint.model, read_history(checkpoint.history), None, factor_of=lambda index: ("x", 0.5), steps=5)
    assert labelled.row_labels[0].endswith("· x (50%)")


@pytest.mark.parametrize("setting, text, values", [("beta", "1, 4, 8", [1.0, 4.0, 8.0]), ("beta", "{0.5 2 2}", [0.5, 2.0]),
                                                   ("latent_dim", "2, 10", [2, 10]), ("likelihood", "Bernoulli gaussian", ["bernoulli", "gaussian"])])
def test_sweep_values_are_read_from_what_a_person_types(setting, text, values):
    assert parse_values(setting, text) == values


@pytest.mark.parametrize("setting, text, message", [("beta", "1", "2 to 6"), ("beta", "1, x", "'x' is not"), ("latent_dim", "2, 500", "'500'"),
                                                    ("likelihood", "bernoulli, poisson", "'poisson'"), ("beta", "1 2 3 4 5 6 7", "got 7")])
def test_bad_sweep_values_are_refused_with_the_reason(setting, text, message):
    with pytest.raises(SweepError, match=message):
        parse_values(setting, text)


def test_run_names_are_derived_from_the_base_name_and_stay_valid():
    assert run_name("shapes-run-1", "beta", 4.0) == "shapes-run-1-beta4"
    assert run_name("shapes-run-1", "beta", 0.5) == "shapes-run-1-beta0p5"
    assert run_name("m", "latent_dim", 10) == "m-z10"
    assert run_name("m", "likelihood", "gaussian") == "m-gaussian"


def test_a_sweep_queues_one_run_per_value_as_one_group(tmp_path):
    manager = jobs.JobManager(start=False)  # no worker: the runs stay queued
    queued = submit_sweep(manager, "digits-s", {"arch": "mlp", "latent_dim": 2, "likelihood": "bernoulli"},
                          TrainConfig(dataset="digits", epochs=1), "beta", [1.0, 4.0], root=tmp_path)
    views = [job.view() for job in queued]
    assert [v.name for v in views] == ["digits-s-beta1", "digits-s-beta4"]
    assert [v.train["beta"] for v in views] == [1.0, 4.0]
    assert views[0].group == views[1].group and views[0].group.startswith("digits-s:")
    assert [v.status for v in views] == [jobs.QUEUED, jobs.QUEUED]


def test_a_sweep_with_a_taken_name_queues_nothing(tmp_path):
    manager = jobs.JobManager(start=False)
    (tmp_path / "digits-s-beta4").mkdir()
    with pytest.raises(SweepError, match="digits-s-beta4 already exist"):
        submit_sweep(manager, "digits-s", {"arch": "mlp", "latent_dim": 2}, TrainConfig(dataset="digits"), "beta", [1.0, 4.0],
                     root=tmp_path)
    assert manager.jobs() == []
    manager.submit("digits-t-z3", {"arch": "mlp", "latent_dim": 3}, TrainConfig(dataset="digits"), root=tmp_path)  # a pending run
    with pytest.raises(SweepError, match="already queued"):
        submit_sweep(manager, "digits-t", {"arch": "mlp"}, TrainConfig(dataset="digits"), "latent_dim", [2, 3], root=tmp_path)
    assert [job.view().status for job in manager.jobs() if job.group] == [jobs.STOPPED]  # the z2 run was taken off again


def test_stopping_a_sweep_keeps_its_finished_runs(tmp_path, one_torch_thread):
    manager = jobs.JobManager(start=False)  # the first run is trained here, by hand, so the test knows what is done
    queued = submit_sweep(manager, "digits-stop", {"arch": "mlp", "latent_dim": 2, "hidden": (16,)},
                          TrainConfig(dataset="digits", epochs=1, batch_size=256), "beta", [1.0, 2.0, 4.0], root=tmp_path)
    jobs.run_job(queued[0])
    stop_group(manager, queued[0].group)
    finals = [job.view() for job in queued]
    assert [view.status for view in finals] == [jobs.FINISHED, jobs.STOPPED, jobs.STOPPED]
    assert (tmp_path / "digits-stop-beta1" / "model.safetensors").exists()
    assert not (tmp_path / "digits-stop-beta2").exists() and not (tmp_path / "digits-stop-beta4").exists()
    from vae.sweeps import saved_names

    assert saved_names(finals) == ["digits-stop-beta1"]
