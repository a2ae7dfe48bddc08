"""Context / held-out splits of the published extrapolation benchmarks.

Each function takes the rows of one curve and returns ``(train, heldout)``: the points a
model may see, and the points it is scored on. The rules are those of the evaluation
protocol the published figures used (NSL-PFN, arXiv 2505.23032; BNSL, arXiv 2210.14891), so
that scores here can be set beside them. Rows keep all their columns; the index is reset.
Nothing here looks at y (a split that depended on the held-out values would leak them),
except :func:`steepest_cut_split`, a stress test that cuts a curve where the whole curve
says a transition follows, to ask how intervals behave when the data end just before one.
:func:`match_resolution` changes what is scored, not what is seen: it averages held-out
points over windows set by the context's spacing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "ADDITION_CONTEXT",
    "HOLDOUT_UNITS",
    "ADDITION_CUT",
    "addition_cut_split",
    "addition_split",
    "check_holdout",
    "benchmark_split",
    "double_descent_context",
    "double_descent_split",
    "future_split",
    "match_resolution",
    "steepest_cut_split",
]

Split = tuple[pd.DataFrame, pd.DataFrame]

#: 4-digit addition: the first 14 points (by x) are context, as in arXiv 2210.14891.
ADDITION_CONTEXT = 14
#: The addition curve cut before its transition: context is x <= 390.
ADDITION_CUT = 390.0


def _sorted(curve: pd.DataFrame, x: str) -> pd.DataFrame:
    if x not in curve.columns:
        raise ValueError(f"column {x!r} not found; columns: {list(curve.columns)}")
    # A stable sort keeps the given order of repeated x values (several seeds at one size).
    return curve.sort_values(x, kind="mergesort").reset_index(drop=True)


def _parts(frame: pd.DataFrame, train_mask, held_mask) -> Split:
    return (
        frame[train_mask].reset_index(drop=True),
        frame[held_mask].reset_index(drop=True),
    )


def benchmark_split(curve: pd.DataFrame, split: str = "split") -> Split:
    """The 92-curve benchmark of arXiv 2209.06640: the authors' own ``split`` column.

    ``train`` rows are context and ``extrapolate`` rows are held out; any other value is an
    error, since a silently ignored row would change what is scored.
    """
    if split not in curve.columns:
        raise ValueError(f"column {split!r} not found; columns: {list(curve.columns)}")
    unknown = sorted(set(curve[split]) - {"train", "extrapolate"})
    if unknown:
        raise ValueError(f"column {split!r} holds {unknown}; expected 'train' or 'extrapolate'")
    is_train = curve[split] == "train"
    if not is_train.any() or is_train.all():
        raise ValueError("a curve needs both 'train' and 'extrapolate' rows")
    return _parts(curve, is_train.to_numpy(), ~is_train.to_numpy())


#: What a holdout measures: a share of the rows, or decades of the ordering key.
HOLDOUT_UNITS = ("share", "decades")


def check_holdout(holdout: float, unit: str = "share") -> None:
    """A holdout is a share in (0, 1) or a positive number of decades."""
    if unit not in HOLDOUT_UNITS:
        raise ValueError(f"holdout unit must be one of {HOLDOUT_UNITS}, got {unit!r}")
    if not (0.0 < holdout < 1.0 or (unit == "decades" and holdout > 0)):
        bounds = "strictly between 0 and 1" if unit == "share" else "above 0"
        raise ValueError(f"a holdout in {unit} must lie {bounds}, got {holdout!r}")


def future_split(
    frame: pd.DataFrame, key, holdout: float, *, min_heldout: int = 1, unit: str = "share"
) -> Split:
    """Hold out the rows of largest ``key``: what a forecast made earlier would have faced.

    ``key`` (one value per row, e.g. the input, or the compute 6ND of a multi-input table)
    orders the rows by scale. With ``unit="share"`` the ``max(min_heldout, round(holdout *
    n))`` rows of largest key are held out, and with them every row that ties the smallest
    held-out key, so that runs at one scale (several seeds, or the models of one compute
    budget) stay together. With ``unit="decades"`` the rows whose key lies within
    ``holdout`` decades of the largest are held out (at least ``min_heldout`` of them), so
    that the refit forecasts as far as a forecast of that distance would. Rows keep their
    order and columns; the index is reset. Nothing here reads y.
    """
    check_holdout(holdout, unit)
    values = np.asarray(key, dtype=float)
    if values.shape != (len(frame),):
        raise ValueError(
            f"the ordering key has shape {values.shape}; expected one value per row ({len(frame)})"
        )
    if not np.isfinite(values).all():
        raise ValueError(f"the ordering key has {int(np.sum(~np.isfinite(values)))} nan/inf")
    if unit == "decades":
        if (values <= 0).any():
            raise ValueError("a holdout in decades needs an ordering key > 0 (logs are taken)")
        held = np.log10(values) >= np.log10(values.max()) - holdout
        if held.sum() < min_heldout:
            raise ValueError(
                f"{int(held.sum())} row(s) within {holdout} decades of the largest key; "
                f"at least {min_heldout} wanted"
            )
    else:
        n_held = max(int(min_heldout), int(round(holdout * len(frame))))
        if n_held >= len(frame):
            raise ValueError(
                f"{len(frame)} row(s): holding out {n_held} (holdout {holdout}) leaves none to fit"
            )
        threshold = np.sort(values, kind="stable")[len(frame) - n_held]
        held = values >= threshold
    if held.all():
        raise ValueError(
            "every row is held out (they tie at the threshold, or all lie within the "
            f"holdout of {holdout} {unit}): nothing is left to fit"
        )
    return _parts(frame, ~held, held)


def double_descent_context(n: int) -> int:
    """Context size of an n-point double-descent curve: max(3, min(round(n / 2), n - 1)).

    ``round`` is ``int(0.5 * n + 0.5)`` (halves round up), as in the NSL-PFN evaluation code.
    """
    if n < 4:
        raise ValueError(f"a curve of {n} point(s) is too short: 3 are context, 1 is held out")
    return max(3, min(int(0.5 * n + 0.5), n - 1))


def double_descent_split(curve: pd.DataFrame, x: str = "x_value") -> Split:
    """Double-descent curves (NSL-PFN): sorted by x, the first n_context points are context.

    See :func:`double_descent_context` for n_context; the remaining points are held out.
    """
    frame = _sorted(curve, x)
    k = double_descent_context(len(frame))
    position = pd.RangeIndex(len(frame))
    return _parts(frame, position < k, position >= k)


def addition_split(
    curve: pd.DataFrame, x: str = "train_dataset_size", n_context: int = ADDITION_CONTEXT
) -> Split:
    """4-digit addition (arXiv 2210.14891): the first 14 points by x are context.

    The rest (the last 3 of the 17-point curve) are held out.
    """
    frame = _sorted(curve, x)
    if len(frame) <= n_context:
        raise ValueError(f"{len(frame)} point(s): nothing is left to hold out after {n_context}")
    position = pd.RangeIndex(len(frame))
    return _parts(frame, position < n_context, position >= n_context)


def addition_cut_split(
    curve: pd.DataFrame,
    x: str = "train_dataset_size",
    cut: float = ADDITION_CUT,
    n_context: int = ADDITION_CONTEXT,
) -> Split:
    """The addition curve cut before its transition: the stress test of a hidden break.

    Context: the points with x <= ``cut`` (5 points, 160 to 384, all on the flat part before
    the drop). Held out: the same points as in :func:`addition_split`, i.e. those after the
    first ``n_context`` by x (800, 864 and 928), so the two splits are scored on the same
    points. The points in between (448 to 736) are in neither set: they are neither seen nor
    scored.
    """
    frame = _sorted(curve, x)
    if len(frame) <= n_context:
        raise ValueError(f"{len(frame)} point(s): nothing is left to hold out after {n_context}")
    if not cut < frame[x].iloc[n_context - 1]:
        raise ValueError(
            f"cut {cut} must lie below the last context point of the standard split "
            f"({frame[x].iloc[n_context - 1]}), or context and held-out points would mix"
        )
    seen = (frame[x] <= cut).to_numpy()
    if not seen.any():
        raise ValueError(f"no point has {x} <= {cut}: the context would be empty")
    position = pd.RangeIndex(len(frame))
    return _parts(frame, seen, position >= n_context)


def steepest_cut_split(
    curve: pd.DataFrame,
    x: str,
    y: str,
    *,
    min_context: int = 8,
    min_ratio: float = 2.0,
) -> Split:
    """A curve cut just before its steepest descent: the context ends where it begins.

    Slopes of log y against log x are taken over windows of ``w = max(2, round(n / 10))``
    steps (single steps are noisy on dense curves). The steepest window starting at or after
    the ``min_context``-th point (also at or after a quarter of the curve) decides the cut:
    its first point is the last context point, and every later point is held out.

    The cut reads the whole curve, held-out points included, on purpose: it selects curves
    and places where a transition follows the data. A curve qualifies only if that window's
    slope is at least ``min_ratio`` times as steep as the context's mean slope (or the
    context does not descend at all); otherwise a ValueError says why, since there is no
    transition to test.
    """
    frame = _sorted(curve, x)
    if y not in frame.columns:
        raise ValueError(f"column {y!r} not found; columns: {list(frame.columns)}")
    n = len(frame)
    window = max(2, round(n / 10))
    first = max(min_context, n // 4) - 1
    if first + window >= n:
        raise ValueError(
            f"{n} point(s): too short for {min_context} context points and a window of "
            f"{window} steps after them"
        )
    values = frame[[x, y]].to_numpy(dtype=float)
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"columns {x!r} and {y!r} must be finite and > 0 (logs are taken)")
    log_x, log_y = np.log(values).T
    start = np.arange(first, n - window)
    run = log_x[start + window] - log_x[start]
    # Windows over repeated x (several seeds at one size) have no slope.
    slopes = np.where(run > 0, log_y[start + window] - log_y[start], np.nan) / np.where(
        run > 0, run, 1.0
    )
    if np.isnan(slopes).all():
        raise ValueError("every window after the context spans a single x value")
    last = int(start[np.nanargmin(slopes)])
    steepest = float(np.nanmin(slopes))
    context_slope = (log_y[last] - log_y[0]) / (log_x[last] - log_x[0])
    if not (steepest < 0 and (context_slope >= 0 or steepest <= min_ratio * context_slope)):
        raise ValueError(
            f"no transition after the context: the steepest slope {steepest:.3g} is not "
            f"{min_ratio} times the context's mean slope {context_slope:.3g}"
        )
    position = np.arange(n)
    return _parts(frame, position <= last, position > last)


def match_resolution(train: pd.DataFrame, heldout: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Held-out points averaged over windows as wide as the context's spacing in log x.

    Some benchmarks hold out dense, single evaluations past context points that are sparse
    and smooth: the 72 image curves of arXiv 2209.06640 have context points about 0.06
    apart in log x and held-out points about 0.002 apart, whose point-to-point scatter is a
    median 2.4 times the context's. A model fitted to the context learns the context's
    noise, so its intervals are too narrow for single held-out evaluations whatever its
    curve. Scoring window means asks the question the context can answer. Windows are
    ``w`` = the median spacing of the context's distinct log x wide, laid end to end from
    the last context x; each that holds points gives one: the geometric means of its x and
    y, and ``n_averaged``. The windows depend on x only.
    """
    for frame, name in ((train, "train"), (heldout, "heldout")):
        missing = [c for c in (x, y) if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}; columns: {list(frame.columns)}")
        values = frame[[x, y]].to_numpy(dtype=float)
        if not (np.isfinite(values).all() and (values > 0).all()):
            raise ValueError(
                f"{name} columns {x!r} and {y!r} must be finite and > 0 (logs are taken)"
            )
    if heldout.empty:
        raise ValueError("no held-out points to average")
    log_train = np.unique(np.log(train[x].to_numpy(dtype=float)))
    if log_train.size < 2:
        raise ValueError("the context needs at least 2 distinct x values to set a spacing")
    width = float(np.median(np.diff(log_train)))
    log_x = np.log(heldout[x].to_numpy(dtype=float))
    log_y = np.log(heldout[y].to_numpy(dtype=float))
    window = np.floor((log_x - log_train[-1]) / width).astype(int)
    table = pd.DataFrame({"window": window, "log_x": log_x, "log_y": log_y})
    means = table.groupby("window", sort=True).agg(
        log_x=("log_x", "mean"), log_y=("log_y", "mean"), n_averaged=("log_y", "size")
    )
    return pd.DataFrame(
        {x: np.exp(means["log_x"]), y: np.exp(means["log_y"]), "n_averaged": means["n_averaged"]}
    ).reset_index(drop=True)
