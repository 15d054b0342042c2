"""Quality of transmission: a closed-form GSNR model calibrated on GNPy, and mode choice.

The model (../shared/context/apn-optical-notes.md §4.3), all terms linear and in 0.1 nm::

    1/GSNR = 1/GSNR_floor(baud) + Σ_spans 1/GSNR_span(baud, span loss)
    GSNR_span(loss) [dB] = span_db(baud) + slope × (loss − reference loss)      slope ≈ −2/3

GSNR_floor holds the transceiver and ROADM add/drop noise; each amplified span adds its ASE and
nonlinear noise. A transceiver mode is feasible on a light path when GSNR ≥ its required OSNR +
a system margin; the best mode is the feasible one with the highest line rate (ties: the narrower
slot). Coefficients and modes are versioned data in ``resources/network/qot.toml``;
:func:`calibrate_with_gnpy` regenerates the coefficients with GNPy (``pip install 'wattbit[qot]'``).
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources

from wattbit.domain._validate import positive
from wattbit.errors import DataSourceError, InvalidInput, require_extra

__all__ = [
    "QotCoefficients",
    "QotModel",
    "TransceiverMode",
    "best_mode",
    "calibrate_with_gnpy",
    "coefficients_toml",
    "db_to_lin",
    "gsnr_db",
    "lin_to_db",
    "load_qot",
    "span_lengths_km",
]


def db_to_lin(value_db: float) -> float:
    """Decibels to a linear ratio.

    >>> db_to_lin(30.0)
    1000.0
    """
    return 10.0 ** (value_db / 10.0)


def lin_to_db(value: float) -> float:
    """Linear ratio to decibels.

    >>> lin_to_db(1000.0)
    30.0
    """
    return 10.0 * math.log10(value)


@dataclass(frozen=True, slots=True)
class TransceiverMode:
    """One operating mode of a coherent transceiver.

    name : e.g. ``"400G-16QAM-63G"``;  baud_gbd : symbol rate [GBd];  rate_gbps : line rate
    [Gbit/s];  required_osnr_db : OSNR needed before margin [dB, 0.1 nm];  slot_ghz : spectrum
    slot it occupies [GHz];  module_power_w : power of one pluggable/transponder end [W];
    source : where the figures come from.
    """

    name: str
    baud_gbd: float
    rate_gbps: float
    required_osnr_db: float
    slot_ghz: float
    module_power_w: float
    source: str = ""


@dataclass(frozen=True, slots=True)
class QotCoefficients:
    """Closed-form coefficients for one symbol-rate class.

    baud_gbd : symbol rate [GBd];  floor_db : GSNR floor (transceivers + add/drop) [dB, 0.1 nm];
    span_db : GSNR of one reference span [dB, 0.1 nm];  source : fit or assumption it comes from.
    """

    baud_gbd: float
    floor_db: float
    span_db: float
    source: str = ""


@dataclass(frozen=True, slots=True)
class QotModel:
    """The closed-form QoT model with its modes and line-system parameters.

    margin_db : system margin over the required OSNR [dB];  loss_db_per_km : fiber attenuation
    incl. splices [dB/km];  connector_loss_db : per span [dB];  span_km_max : largest amplifier
    spacing [km];  reference_span_loss_db : span loss at which span_db was fitted [dB];
    span_loss_slope_db_per_db : d GSNR_span / d span loss [dB/dB];  band_ghz : usable optical
    band per fiber [GHz];  coefficients, modes : the tables;  version : data version label.
    """

    margin_db: float
    loss_db_per_km: float
    connector_loss_db: float
    span_km_max: float
    reference_span_loss_db: float
    span_loss_slope_db_per_db: float
    band_ghz: float
    coefficients: tuple[QotCoefficients, ...]
    modes: tuple[TransceiverMode, ...]
    version: str = ""

    def __post_init__(self) -> None:
        for name in ("loss_db_per_km", "span_km_max", "band_ghz"):
            positive("QotModel", name, getattr(self, name))
        if not self.coefficients or not self.modes:
            raise InvalidInput("QotModel: needs at least one [[coefficients]] and one [[modes]] entry")

    def coefficients_for(self, baud_gbd: float) -> QotCoefficients:
        """The coefficient class nearest in log(baud) to a mode's symbol rate."""
        return min(self.coefficients, key=lambda c: abs(math.log(c.baud_gbd / baud_gbd)))

    def modes_for_slot(self, slot_ghz: float) -> tuple[TransceiverMode, ...]:
        """Modes that fit a grid slot, best (highest rate) first."""
        usable = [m for m in self.modes if m.slot_ghz <= slot_ghz + 1e-9]
        return tuple(sorted(usable, key=lambda m: (-m.rate_gbps, m.slot_ghz, m.required_osnr_db)))

    def with_coefficients(self, coefficients: Sequence[QotCoefficients], version: str) -> QotModel:
        return replace(self, coefficients=tuple(coefficients), version=version)


def _model_from_dict(raw: dict, origin: str) -> QotModel:
    try:
        m = raw["model"]
        return QotModel(
            margin_db=float(m["margin_db"]),
            loss_db_per_km=float(m["loss_db_per_km"]),
            connector_loss_db=float(m["connector_loss_db"]),
            span_km_max=float(m["span_km_max"]),
            reference_span_loss_db=float(m["reference_span_loss_db"]),
            span_loss_slope_db_per_db=float(m["span_loss_slope_db_per_db"]),
            band_ghz=float(m["band_ghz"]),
            coefficients=tuple(QotCoefficients(**c) for c in raw["coefficients"]),
            modes=tuple(TransceiverMode(**x) for x in raw["modes"]),
            version=str(raw.get("version", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataSourceError(origin, None, "the [model], [[coefficients]] and [[modes]] tables of qot.toml", repr(exc)) from None


@functools.lru_cache(maxsize=1)
def load_qot() -> QotModel:
    """The QoT model shipped with wattbit (``resources/network/qot.toml``)."""
    res = resources.files("wattbit").joinpath("resources", "network", "qot.toml")
    return _model_from_dict(tomllib.loads(res.read_text(encoding="utf-8")), "wattbit/resources/network/qot.toml")


def span_lengths_km(link_km: float, span_km_max: float) -> list[float]:
    """Equal spans a link is cut into by in-line amplifiers (ceil(L / span max) of them).

    >>> span_lengths_km(200.0, 90.0)
    [66.66666666666667, 66.66666666666667, 66.66666666666667]
    """
    n = max(1, math.ceil(link_km / span_km_max - 1e-9))
    return [link_km / n] * n


def gsnr_db(model: QotModel, baud_gbd: float, spans_km: Sequence[float]) -> float:
    """GSNR at the receiver of a light path through the given spans [dB, 0.1 nm].

    model : the QoT model;  baud_gbd : symbol rate [GBd];  spans_km : length of each span [km]

    >>> m = load_qot()
    >>> round(gsnr_db(m, 126.2, [90.0] * 13), 2)  # 13 reference spans ~ Tokyo-Fukuoka (GNPy 21.6)
    21.95
    """
    c = model.coefficients_for(baud_gbd)
    inv = 1.0 / db_to_lin(c.floor_db)
    for km in spans_km:
        loss_db = km * model.loss_db_per_km + model.connector_loss_db
        span_db = c.span_db + model.span_loss_slope_db_per_db * (loss_db - model.reference_span_loss_db)
        inv += 1.0 / db_to_lin(span_db)
    return lin_to_db(1.0 / inv)


def best_mode(model: QotModel, spans_km: Sequence[float], slot_ghz: float) -> tuple[TransceiverMode | None, float]:
    """Highest-rate mode feasible over the spans within a grid slot, and its GSNR [dB].

    Returns (None, GSNR of the most robust mode) when no mode closes the path.

    >>> m = load_qot()
    >>> mode, g = best_mode(m, [85.0] * 6, slot_ghz=75.0)  # ~515 km, Tokyo-Osaka
    >>> mode.name, round(g, 1)
    ('200G-QPSK-63G', 22.9)
    """
    candidates = model.modes_for_slot(slot_ghz)
    if not candidates:
        raise InvalidInput(
            f"grid slot {slot_ghz:.1f} GHz is narrower than every transceiver mode "
            f"(narrowest {min(m.slot_ghz for m in model.modes)} GHz); use fewer wavelengths_per_pair"
        )
    for mode in candidates:
        g = gsnr_db(model, mode.baud_gbd, spans_km)
        if g >= mode.required_osnr_db + model.margin_db:
            return mode, g
    robust = min(candidates, key=lambda m: m.required_osnr_db)
    return None, gsnr_db(model, robust.baud_gbd, spans_km)


# --- optional calibration with GNPy ------------------------------------------------------------


def _fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares y = a + b x. Returns (a, b).

    >>> _fit_line([1, 2, 3], [3, 5, 7])
    (1.0, 2.0)
    """
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def _gnpy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gnpy")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree
        return "(source)"


def _TX_OSNR_DB(baud_gbd: float) -> float:
    """Transmitter OSNR of the probe [dB, 0.1 nm]: 36 dB up to 63 GBd, 40 dB at 126 GBd — the
    values of the notes' calibration setup (apn-optical-notes §1.3 script A)."""
    return 40.0 if baud_gbd > 100 else 36.0


def calibrate_with_gnpy(
    model: QotModel | None = None,
    *,
    spans: Sequence[int] = (1, 2, 4, 8, 16, 24, 32),
    bauds_gbd: Sequence[float] = (31.6, 63.1, 126.2),
    span_km: float | None = None,
) -> QotModel:
    """Regenerate the closed-form coefficients by fitting GNPy runs (needs ``wattbit[qot]``).

    For each symbol rate, GNPy designs a two-ROADM line of N equal spans (N in ``spans``, each
    ``span_km`` long, default the model's span_km_max) loaded with that rate on its slot, and
    propagates a probe channel. The GSNR it returns is fitted to 1/GSNR = 1/floor + N/span by
    least squares. Returns a copy of ``model`` with the new coefficients (classes not in
    ``bauds_gbd`` are kept).

    model : model to recalibrate (default: the shipped one);  spans : span counts to run [-];
    bauds_gbd : symbol rates to fit [GBd];  span_km : span length [km]
    """
    require_extra("gnpy", "qot")
    import contextlib
    import copy
    import io
    import logging

    from gnpy.core import elements  # noqa: F401  (ensures the core is importable)
    from gnpy.core.parameters import SimParams
    from gnpy.tools.json_io import (
        DEFAULT_EQPT_CONFIG,
        load_eqpt_topo_from_json,
        load_gnpy_json,
        requests_from_json,
    )
    from gnpy.tools.worker_utils import designed_network
    from gnpy.topology.request import (
        compute_path_dsjctn,
        compute_path_with_disjunction,
        correct_json_route_list,
    )
    from gnpy.topology.spectrum_assignment import build_oms_list

    model = model or load_qot()
    span_km = float(span_km or model.span_km_max)
    logging.getLogger("gnpy").setLevel(logging.ERROR)
    base = load_gnpy_json(DEFAULT_EQPT_CONFIG)
    base["Span"][0]["max_length"] = span_km + 1.0
    for roadm in base["Roadm"]:  # PSD equalisation (notes §1.2 pitfall 1): -20 dBm per 32 GBd
        roadm.pop("target_pch_out_db", None)
        roadm["target_psd_out_mWperGHz"] = 3.125e-4
    new: dict[float, QotCoefficients] = {c.baud_gbd: c for c in model.coefficients}
    for baud in bauds_gbd:
        mode = min(model.modes, key=lambda m: (abs(math.log(m.baud_gbd / baud)), m.required_osnr_db))
        slot_hz = mode.slot_ghz * 1e9
        eq = copy.deepcopy(base)
        eq["Transceiver"].append({
            "type_variety": "wattbit", "frequency": {"min": 191.35e12, "max": 196.1e12},
            "mode": [{"format": "probe", "baud_rate": baud * 1e9, "OSNR": 0.0, "bit_rate": mode.rate_gbps * 1e9,
                      "roll_off": 0.15, "tx_osnr": _TX_OSNR_DB(baud), "min_spacing": slot_hz, "cost": 1}],
        })
        power_dbm = 10.0 * math.log10(baud / 32.0)  # PSD-scaled launch power, notes §1.3 set_si
        eq["SI"][0].update(baud_rate=baud * 1e9, spacing=slot_hz, power_dbm=power_dbm, tx_power_dbm=power_dbm, roll_off=0.15)
        xs, ys = [], []
        for n in spans:
            km = n * span_km
            topo = {"network_name": "calibration", "elements": [], "connections": []}
            for c in ("A", "B"):
                topo["elements"] += [{"uid": f"trx {c}", "type": "Transceiver"}, {"uid": f"roadm {c}", "type": "Roadm"}]
                topo["connections"] += [{"from_node": f"trx {c}", "to_node": f"roadm {c}"},
                                        {"from_node": f"roadm {c}", "to_node": f"trx {c}"}]
            for s, d in (("A", "B"), ("B", "A")):
                uid = f"fiber {s}->{d}"
                topo["elements"].append({
                    "uid": uid, "type": "Fiber", "type_variety": "SSMF",
                    "params": {"length": km, "length_units": "km", "loss_coef": model.loss_db_per_km,
                               "con_in": model.connector_loss_db / 2, "con_out": model.connector_loss_db / 2},
                })
                topo["connections"] += [{"from_node": f"roadm {s}", "to_node": uid}, {"from_node": uid, "to_node": f"roadm {d}"}]
            request = {"path-request": [{
                "request-id": "probe", "source": "trx A", "destination": "trx B", "src-tp-id": "trx A",
                "dst-tp-id": "trx B", "bidirectional": False,
                "path-constraints": {"te-bandwidth": {
                    "technology": "flexi-grid", "trx_type": "wattbit", "trx_mode": "probe",
                    "effective-freq-slot": [{"N": None, "M": None}], "spacing": slot_hz,
                    "max-nb-of-channel": None, "output-power": None, "path_bandwidth": mode.rate_gbps * 1e9}}}]}
            SimParams.set_params({})
            equipment, network = load_eqpt_topo_from_json(eq, topo)
            with contextlib.redirect_stdout(io.StringIO()):
                network, _, _ = designed_network(equipment, network)
                build_oms_list(network, equipment)
                rqs = correct_json_route_list(network, requests_from_json(request, equipment))
                paths = compute_path_dsjctn(network, equipment, rqs, [])
                propagated, _, _ = compute_path_with_disjunction(network, equipment, rqs, paths)
            trx = propagated[0][-1]
            snr = [float(x) for x in trx.snr_01nm]
            xs.append(float(n))
            ys.append(1.0 / db_to_lin(sum(snr) / len(snr)))
        a, b = _fit_line(xs, ys)
        if a <= 0 or b <= 0:
            raise DataSourceError("GNPy calibration", None, "a positive floor and span term", (a, b))
        residual_db = max(abs(lin_to_db(1.0 / (a + b * x)) - lin_to_db(1.0 / y)) for x, y in zip(xs, ys))
        # span_db is fitted at this span length; refer it to the model's reference loss.
        loss_db = span_km * model.loss_db_per_km + model.connector_loss_db
        span_db = lin_to_db(1.0 / b) - model.span_loss_slope_db_per_db * (loss_db - model.reference_span_loss_db)
        new[baud] = QotCoefficients(baud, round(lin_to_db(1.0 / a), 2), round(span_db, 2),
                                    f"GNPy {_gnpy_version()} fit, "
                                    f"{len(xs)} runs of {min(spans)}-{max(spans)} x {span_km:g} km spans, "
                                    f"max residual {residual_db:.2f} dB")
    return model.with_coefficients(sorted(new.values(), key=lambda c: c.baud_gbd), version="gnpy-calibrated")


def coefficients_toml(model: QotModel) -> str:
    """The ``[[coefficients]]`` tables of a model, to paste into ``resources/network/qot.toml``.

    >>> print(coefficients_toml(load_qot()).splitlines()[0])
    [[coefficients]]
    """
    out = []
    for c in model.coefficients:
        out += ["[[coefficients]]", f"baud_gbd = {c.baud_gbd:g}", f"floor_db = {c.floor_db:g}",
                f"span_db = {c.span_db:g}", f"source = {c.source!r}".replace("'", '"'), ""]
    return "\n".join(out)
