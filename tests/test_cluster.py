"""A study on a real two-node Ray cluster, attached with ``--address`` as a user would."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from conftest import tiny_spec
from rich.console import Console

from sweeplab.studies import load_spec, run_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a second node on this machine (Ray's own multi-node test cluster)."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def test_trials_run_on_both_nodes_of_a_cluster(two_nodes, tmp_path) -> None:
    import ray

    assert not ray.is_initialized()
    spec = load_spec(tiny_spec(tmp_path, n_trials=6, max_epochs=6, scheduler="none"))
    summary = run_study(spec, address=two_nodes.address, console=Console(file=io.StringIO()))
    assert summary.counts["complete"] == 6
    study = optuna.load_study(study_name=spec.study.name, storage=spec.study.storage)
    nodes = {t.user_attrs["node_id"] for t in study.trials}
    assert len(nodes) == 2, f"trials ran on {nodes}"
    assert nodes == {node.node_id for node in two_nodes.list_all_nodes()}


USER_MODULE = """
import os
import pathlib


def train(hp, trial):
    # Where this module was imported from, on whichever node runs the trial.
    mark = pathlib.Path(hp["marks"]) / f"{os.getpid()}-{trial.number}"
    mark.write_text(__file__, encoding="utf-8")
    for epoch in range(1, trial.max_epochs + 1):
        trial.report(epoch, score=hp["x"] * epoch)
    return {"done": 1.0}
"""


def test_a_users_module_reaches_every_node_through_the_runtime_env(two_nodes, tmp_path) -> None:
    """The user's module lives in a folder no node has on its path (not installed, not the
    driver's working directory); sweeplab ships it as the job's working_dir."""
    import ray

    assert not ray.is_initialized()
    project, marks = tmp_path / "project", tmp_path / "marks"
    project.mkdir()
    marks.mkdir()
    (project / "mytrain_cluster.py").write_text(USER_MODULE, encoding="utf-8")
    (project / "data").mkdir()  # excluded from what is shipped
    (project / "data" / "big.bin").write_bytes(b"0" * 1024)
    (project / "study.toml").write_text(
        f"""
[study]
name = "cluster-fn"
storage = "sqlite:///{tmp_path / "study.db"}"
objective = "score"
direction = "maximize"
[trainable]
function = "mytrain_cluster:train"
[budget]
n_trials = 6
max_epochs = 2
[search]
sampler = "random"
scheduler = "none"
[space.x]
type = "float"
low = 0.0
high = 1.0
[space.marks]
value = "{marks}"
""",
        encoding="utf-8",
    )
    spec = load_spec(project / "study.toml")
    summary = run_study(spec, address=two_nodes.address, console=Console(file=io.StringIO()))
    assert summary.counts["complete"] == 6
    study = optuna.load_study(study_name="cluster-fn", storage=spec.study.storage)
    assert len({t.user_attrs["node_id"] for t in study.trials}) == 2
    imported_from = {Path(p.read_text(encoding="utf-8")).parent for p in marks.iterdir()}
    assert len(list(marks.iterdir())) == 6
    assert project not in imported_from, "workers imported the module from the user's folder"
    assert all("runtime_resources" in str(folder) for folder in imported_from), imported_from
    assert all(not (folder / "data").exists() for folder in imported_from)
