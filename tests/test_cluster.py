"""A study on a real two-node Ray cluster, attached with ``--address`` as a user would."""

from __future__ import annotations

import io

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
