"""Slurm sites and the local test clusters: whole numbers checked as such, without a cluster."""

from __future__ import annotations

import numpy as np
import pytest

from wattbit.control.slurm import SlurmSite, load_slurm_sites
from wattbit.control.slurm_local import LocalSlurm
from wattbit.errors import InvalidInput


def test_cpus_per_gpu_takes_a_numpy_integer_and_keeps_a_python_one(tmp_path):
    site = SlurmSite("kyushu-dc", tmp_path / "slurm.conf", tmp_path, cpus_per_gpu=np.int64(4))
    assert site.cpus_per_gpu == 4 and type(site.cpus_per_gpu) is int


@pytest.mark.parametrize("bad", [0, 1.5, True, "4"])
def test_cpus_per_gpu_must_be_a_whole_number(tmp_path, bad):
    with pytest.raises(InvalidInput, match=rf"slurm site 'kyushu-dc': cpus_per_gpu = {bad!r}"):
        SlurmSite("kyushu-dc", tmp_path / "slurm.conf", tmp_path, cpus_per_gpu=bad)


def test_a_clusters_file_with_a_fraction_of_a_cpu_is_refused_not_rounded(tmp_path):
    path = tmp_path / "clusters.toml"
    path.write_text('[sites.kyushu-dc]\nslurm_conf = "slurm.conf"\nstorage_dir = "ckpt"\ncpus_per_gpu = 1.5\n',
                    encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"clusters.toml: slurm site 'kyushu-dc': cpus_per_gpu = 1.5"):
        load_slurm_sites(path)


@pytest.mark.parametrize("field, bad", [("gpus", 1.5), ("cpus", 0), ("gpus", True)])
def test_local_clusters_need_whole_gpus_and_cpus(field, bad):
    with pytest.raises(InvalidInput, match=rf"local slurm: {field} = {bad!r}"):
        LocalSlurm(("tokyo-dc",), **{field: bad})
