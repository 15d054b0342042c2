"""Trace readers: tidy frames from the real files, DataSourceError on malformed ones, and the
bundled statistics reproduce from ../shared."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

from wattbit.data.traces import (
    OPENB_COLUMNS,
    derive_workload_stats,
    read_azure_llm,
    read_azure_llm_traces,
    read_openb_pods,
    read_philly_runtime,
)
from wattbit.errors import DataSourceError

SHARED = Path(os.environ.get("WATTBIT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
TRACES = SHARED / "data" / "raw" / "gpu_traces"
RESOURCES = Path(__file__).resolve().parents[2] / "src" / "wattbit" / "resources" / "workload"
needs_shared = pytest.mark.skipif(not TRACES.is_dir(), reason="../shared/data/raw absent")

OPENB_HEADER = ",".join(OPENB_COLUMNS)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_openb_small_file(tmp_path):
    p = write(tmp_path, "pods.csv", OPENB_HEADER + "\n"
              "pod-1,1000,2048,1,1000,,LS,Running,0,7200,3600\n"
              "pod-2,1000,2048,0,0,,BE,Pending,10,20,\n")
    df = read_openb_pods(p)
    assert list(df["num_gpu"]) == [1, 0]
    assert df.loc[0, "duration_s"] == 3600
    assert df["duration_s"].isna().iloc[1]


def test_openb_bad_header(tmp_path):
    p = write(tmp_path, "pods.csv", "name,gpus\npod,1\n")
    with pytest.raises(DataSourceError, match=r"pods.csv:1: expected header name,cpu_milli.*found 'name,gpus'"):
        read_openb_pods(p)


def test_openb_bad_number_names_line(tmp_path):
    p = write(tmp_path, "pods.csv", OPENB_HEADER + "\n"
              "pod-1,1000,2048,1,1000,,LS,Running,0,7200,3600\n"
              "pod-2,1000,2048,two,1000,,LS,Running,0,7200,3600\n")
    with pytest.raises(DataSourceError) as err:
        read_openb_pods(p)
    assert err.value.line == 3 and err.value.found == "two"
    assert "num_gpu = a number >= 0" in str(err.value)


def test_openb_negative_gpu_and_time_travel(tmp_path):
    p = write(tmp_path, "pods.csv", OPENB_HEADER + "\npod-1,1000,2048,-1,1000,,LS,Running,0,7200,3600\n")
    with pytest.raises(DataSourceError, match=":2: expected num_gpu = a number >= 0"):
        read_openb_pods(p)
    p = write(tmp_path, "pods2.csv", OPENB_HEADER + "\npod-1,1000,2048,1,1000,,LS,Running,0,100,3600\n")
    with pytest.raises(DataSourceError, match="deletion_time >= scheduled_time"):
        read_openb_pods(p)


def test_missing_file():
    with pytest.raises(DataSourceError, match="no such file"):
        read_philly_runtime("/nonexistent/philly_runtime.csv")


def test_philly_and_azure_small(tmp_path):
    assert read_philly_runtime(write(tmp_path, "philly.csv", "runtime\n0.0\n12.5\n"))["runtime_s"].tolist() == [0.0, 12.5]
    with pytest.raises(DataSourceError, match=r"philly.csv:3: expected runtime = a number"):
        read_philly_runtime(write(tmp_path, "philly.csv", "runtime\n1\nabc\n"))
    az = read_azure_llm(write(tmp_path, "AzureLLMInferenceTrace_code.csv",
                              "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"))
    assert az.loc[0, "trace"] == "code" and az.loc[0, "context_tokens"] == 4808
    assert str(az.loc[0, "time"].tz) == "UTC"
    with pytest.raises(DataSourceError, match=r":2: expected TIMESTAMP = a date-time"):
        read_azure_llm(write(tmp_path, "conv.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n"))


@pytest.mark.shared
@needs_shared
def test_real_traces_read_as_documented():
    pods = read_openb_pods(TRACES / "alibaba_gpu_v2023" / "openb_pod_list_default.csv")
    assert len(pods) == 8152
    assert pods["num_gpu"].value_counts().to_dict() == {1: 6989, 0: 1088, 8: 44, 2: 16, 4: 15}
    philly = read_philly_runtime(TRACES / "alibaba_gpu_v2020_philly_runtime" / "philly_runtime.csv")
    assert len(philly) == 83154
    az = read_azure_llm_traces(TRACES)
    assert az["trace"].value_counts().to_dict() == {"conv": 19366, "code": 8819}
    assert az["time"].is_monotonic_increasing


@pytest.mark.shared
@needs_shared
def test_bundled_statistics_reproduce(tmp_path):
    written = derive_workload_stats(TRACES, tmp_path)
    for path in written.values():
        assert filecmp.cmp(path, RESOURCES / path.name, shallow=False), path.name
