"""Readers of the public AI-workload traces, and the compact statistics derived from them.

Sources (all in ``../shared/data/raw/gpu_traces``, see its PROVENANCE.md):

* Alibaba "openb" GPU pods, ``cluster-trace-gpu-v2023`` (Weng et al., "Beware of Fragmentation:
  Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC 2023):
  8,152 pods with GPU count, GPU share, QoS, creation/scheduling/deletion times in seconds from
  an anonymised origin. The v2023 folder states no licence; wattbit ships only derived columns,
  with this citation.
* Microsoft Philly job run times, as copied in Alibaba ``cluster-trace-gpu-v2020/analysis``
  (CC BY 4.0; Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN Training
  Workloads", USENIX ATC 2019): 83,154 DNN-training run times [s].
* Azure LLM inference trace 2023 (CC BY 4.0; Patel et al., "Splitwise", ISCA 2024): one hour of
  requests (code: 8,819; conversation: 19,366) with prompt and output token counts.

Readers return tidy frames with units in the column names and raise
:class:`~wattbit.errors.DataSourceError` naming the file, the line, what was expected and what
was found. :func:`derive_workload_stats` writes the compact, attributed statistics the workload
builder uses at run time into ``src/wattbit/resources/workload/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from wattbit.errors import DataSourceError

__all__ = [
    "OPENB_COLUMNS",
    "RAW_FILES",
    "derive_workload_stats",
    "read_azure_llm",
    "read_azure_llm_traces",
    "read_openb_pods",
    "read_philly_runtime",
]

OPENB_COLUMNS = (
    "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
    "creation_time", "deletion_time", "scheduled_time",
)
"""Header of ``openb_pod_list_default.csv`` (times in seconds from an anonymised origin)."""

RAW_FILES = {
    "openb": "alibaba_gpu_v2023/openb_pod_list_default.csv",
    "philly": "alibaba_gpu_v2020_philly_runtime/philly_runtime.csv",
    "azure_code": "azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv",
    "azure_conv": "azure_llm_inference_2023/AzureLLMInferenceTrace_conv.csv",
}
"""Where each trace lives under ``data/raw/gpu_traces``."""


def _read_csv(path: Path, expected_header: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(path, None, "an existing trace file", "no such file")
    with path.open(encoding="utf-8-sig") as fh:
        header = fh.readline().strip()
    cols = tuple(c.strip() for c in header.split(","))
    if cols != expected_header:
        raise DataSourceError(path, 1, f"header {','.join(expected_header)}", header)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        raise DataSourceError(path, None, f"{len(expected_header)} comma-separated columns", str(exc)) from None


def _numeric(df: pd.DataFrame, column: str, path: Path, *, allow_empty: bool = False,
             minimum: float | None = None) -> pd.Series:
    """Parse one column as numbers; the first bad cell becomes a DataSourceError with its line."""
    raw = df[column].str.strip()
    values = pd.to_numeric(raw.replace("", np.nan), errors="coerce")
    bad = values.isna() & ~(raw.eq("") & allow_empty)
    if minimum is not None:
        bad |= values < minimum
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        what = f"a number >= {minimum:g}" if minimum is not None else "a number"
        if allow_empty:
            what += " or an empty cell"
        raise DataSourceError(path, i + 2, f"{column} = {what}", df[column].iloc[i])
    return values


def read_openb_pods(path: str | Path) -> pd.DataFrame:
    """Alibaba openb pod list (cluster-trace-gpu-v2023) as a tidy frame.

    Columns: ``name``, ``cpu_milli`` [milli-core], ``memory_mib`` [MiB], ``num_gpu`` [-],
    ``gpu_milli`` [1/1000 of one GPU, for shared GPUs], ``qos``, ``pod_phase``, ``creation_s``,
    ``scheduled_s`` (NaN if never scheduled), ``deletion_s`` [s from the anonymised origin] and
    ``duration_s`` = deletion − scheduled [s] (NaN if never scheduled).
    """
    path = Path(path)
    df = _read_csv(path, OPENB_COLUMNS)
    out = pd.DataFrame({"name": df["name"]})
    out["cpu_milli"] = _numeric(df, "cpu_milli", path, minimum=0)
    out["memory_mib"] = _numeric(df, "memory_mib", path, minimum=0)
    out["num_gpu"] = _numeric(df, "num_gpu", path, minimum=0).astype(int)
    out["gpu_milli"] = _numeric(df, "gpu_milli", path, minimum=0)
    out["qos"] = df["qos"]
    out["pod_phase"] = df["pod_phase"]
    out["creation_s"] = _numeric(df, "creation_time", path, minimum=0)
    out["scheduled_s"] = _numeric(df, "scheduled_time", path, allow_empty=True, minimum=0)
    out["deletion_s"] = _numeric(df, "deletion_time", path, minimum=0)
    out["duration_s"] = out["deletion_s"] - out["scheduled_s"]
    neg = out["duration_s"] < 0
    if neg.any():
        i = int(np.flatnonzero(neg.to_numpy())[0])
        raise DataSourceError(path, i + 2, "deletion_time >= scheduled_time",
                              f"{df['deletion_time'].iloc[i]} < {df['scheduled_time'].iloc[i]}")
    return out


def read_philly_runtime(path: str | Path) -> pd.DataFrame:
    """Philly DNN-training job run times: one column ``runtime_s`` [s]."""
    path = Path(path)
    df = _read_csv(path, ("runtime",))
    return pd.DataFrame({"runtime_s": _numeric(df, "runtime", path, minimum=0)})


def read_azure_llm(path: str | Path, trace: str | None = None) -> pd.DataFrame:
    """One Azure LLM inference trace file (2023, Splitwise) as a tidy frame.

    Columns: ``time`` (UTC; the source does not state its zone — taken as UTC, an assumption in
    docs/assumptions.md), ``context_tokens`` [-], ``generated_tokens`` [-], ``trace``
    (``"code"`` / ``"conv"``, from the file name unless given).
    """
    path = Path(path)
    df = _read_csv(path, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    time = pd.to_datetime(df["TIMESTAMP"].str.strip(), errors="coerce", format="mixed")
    if time.isna().any():
        i = int(np.flatnonzero(time.isna().to_numpy())[0])
        raise DataSourceError(path, i + 2, "TIMESTAMP = a date-time like 2023-11-16 18:17:03.98",
                              df["TIMESTAMP"].iloc[i])
    if trace is None:
        trace = "code" if "code" in path.name.lower() else "conv" if "conv" in path.name.lower() else path.stem
    return pd.DataFrame({
        "time": time.dt.tz_localize("UTC"),
        "context_tokens": _numeric(df, "ContextTokens", path, minimum=0).astype(int),
        "generated_tokens": _numeric(df, "GeneratedTokens", path, minimum=0).astype(int),
        "trace": trace,
    })


def read_azure_llm_traces(folder: str | Path) -> pd.DataFrame:
    """Both Azure LLM inference traces (code and conversation) of a ``gpu_traces`` folder,
    sorted by time."""
    folder = Path(folder)
    frames = [read_azure_llm(folder / RAW_FILES[key], trace=key.removeprefix("azure_"))
              for key in ("azure_code", "azure_conv")]
    return pd.concat(frames, ignore_index=True).sort_values("time", kind="stable", ignore_index=True)


def derive_workload_stats(gpu_traces_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the compact statistics the workload builder needs at run time.

    gpu_traces_dir : ``data/raw/gpu_traces``;  out_dir : usually ``src/wattbit/resources/workload``.

    Files written (all small, attributed in ``ATTRIBUTION.md`` there):

    * ``openb_gpu_pods.csv`` — every openb pod that asked for a GPU and was scheduled:
      ``creation_s``, ``num_gpu``, ``gpu_milli``, ``duration_s``, ``qos``, ``pod_phase``;
    * ``philly_runtime_quantiles.csv`` — 2,001 quantiles of the Philly run time [s]
      (q = 0, 0.0005, ..., 1);
    * ``azure_llm_summary.json`` — per trace: requests, span, mean rate, token means and
      percentiles, and requests per minute.
    """
    src, out = Path(gpu_traces_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    pods = read_openb_pods(src / RAW_FILES["openb"])
    gpu = pods[(pods["num_gpu"] > 0) & pods["scheduled_s"].notna()]
    gpu = gpu.sort_values("creation_s", kind="stable")
    cols = ["creation_s", "num_gpu", "gpu_milli", "duration_s", "qos", "pod_phase"]
    frame = gpu[cols].astype({"creation_s": "int64", "gpu_milli": "int64", "duration_s": "int64"})
    written["openb"] = out / "openb_gpu_pods.csv"
    frame.to_csv(written["openb"], index=False)

    philly = read_philly_runtime(src / RAW_FILES["philly"])["runtime_s"].to_numpy()
    q = np.linspace(0.0, 1.0, 2001)
    written["philly"] = out / "philly_runtime_quantiles.csv"
    pd.DataFrame({"q": q.round(4), "runtime_s": np.quantile(philly, q).round(1)}).to_csv(
        written["philly"], index=False)

    azure = read_azure_llm_traces(src)
    summary: dict[str, dict] = {}
    pct = [5, 10, 25, 50, 75, 90, 95, 99]
    for name, g in azure.groupby("trace", sort=True):
        span_s = (g["time"].max() - g["time"].min()).total_seconds()
        per_min = g.set_index("time").resample("1min").size()
        summary[str(name)] = {
            "requests": len(g),
            "start_utc": g["time"].min().isoformat(),
            "span_s": round(span_s, 1),
            "rate_per_s": round(len(g) / span_s, 4),
            "context_tokens_mean": round(float(g["context_tokens"].mean()), 2),
            "generated_tokens_mean": round(float(g["generated_tokens"].mean()), 2),
            "context_tokens_pct": {str(p): round(float(np.percentile(g["context_tokens"], p)), 1) for p in pct},
            "generated_tokens_pct": {str(p): round(float(np.percentile(g["generated_tokens"], p)), 1) for p in pct},
            "requests_per_min": [int(v) for v in per_min.to_numpy()],
        }
    written["azure"] = out / "azure_llm_summary.json"
    written["azure"].write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":  # python -m wattbit.data.traces <gpu_traces_dir> <out_dir>
    import sys

    for key, p in derive_workload_stats(sys.argv[1], sys.argv[2]).items():
        print(f"{key}: {p}")
