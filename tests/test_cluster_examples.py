"""The cluster launchers in deploy/: the Kubernetes pods' TF_CONFIG and the sbatch script."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_CONFIG_SH = os.path.join(ROOT, "deploy", "kubernetes", "tf_config.sh")


def tf_config(**env):
    done = subprocess.run(
        ["sh", TF_CONFIG_SH, "sh", "-c", 'printf %s "$TF_CONFIG"'],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], **env},
    )
    return done


@pytest.mark.parametrize("ordinal", [0, 1])
def test_each_pod_gets_its_tf_config_from_its_ordinal(ordinal):
    done = tf_config(HOSTNAME=f"alexnet-{ordinal}", WORKERS="2", SERVICE="alexnet")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "cluster": {"worker": ["alexnet-0.alexnet:2222", "alexnet-1.alexnet:2222"]},
        "task": {"type": "worker", "index": ordinal},
    }


def test_a_pod_name_without_an_ordinal_is_one_line_and_status_2():
    done = tf_config(HOSTNAME="alexnet", WORKERS="2", SERVICE="alexnet")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: HOSTNAME alexnet does not end in -<ordinal>"


def test_the_manifest_runs_the_script_and_the_sbatch_script_parses():
    manifest = pathlib.Path(ROOT, "deploy", "kubernetes", "alexnet-multiworker.yaml").read_text()
    assert "/app/deploy/kubernetes/tf_config.sh" in manifest and "kind: StatefulSet" in manifest
    sbatch = os.path.join(ROOT, "deploy", "slurm", "train.sbatch")
    assert subprocess.run(["bash", "-n", sbatch], timeout=30).returncode == 0
    assert "--strategy multi_worker" in pathlib.Path(sbatch).read_text()
