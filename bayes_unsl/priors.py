"""Priors as plain, serialisable data.

All scales refer to standardised coordinates: ``z = (log x - center) / half_range`` maps the
observed inputs onto [-1, 1], and slopes are in units of log y per unit of z. The data enter
only through that standardisation and through the spread of log y (``y_spread``), never
through held-out points.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "BNSLPriors",
    "ChinchillaPriors",
    "CommonPriors",
    "DCPriors",
    "FURTHER_BREAK",
    "M4Priors",
    "PriorSettings",
    "UNSLPriors",
    "priors_from_dict",
]


#: The settings of the break past the data, in the order ``Fit.with_future_break`` takes
#: them. They act at prediction time only, so fits that differ in them alone share a posterior.
FURTHER_BREAK = ("future_break_rate", "future_slope_sd", "future_away_sd")


def _check_settings(priors: Any, may_be_zero: tuple[str, ...] = ()) -> None:
    """Every numeric setting finite, and > 0 unless named in ``may_be_zero`` (then >= 0);
    switches (settings whose default is a bool) must be bools."""
    structural = getattr(priors, "_input_lists", ())
    for field in dataclasses.fields(priors):
        value = getattr(priors, field.name)
        if field.name in structural:
            _check_input_list(field.name, value)
            continue
        if isinstance(field.default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"prior setting {field.name!r} must be True or False")
            continue
        values = value if isinstance(value, tuple) else (value,)
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise ValueError(f"prior setting {field.name!r} must be finite, got {value!r}")
        if field.name in may_be_zero:
            if any(v < 0 for v in values):
                raise ValueError(f"prior setting {field.name!r} must be >= 0, got {value!r}")
        elif any(v <= 0 for v in values):
            raise ValueError(f"prior setting {field.name!r} must be > 0, got {value!r}")
    for field in dataclasses.fields(priors):
        if field.name in structural:
            continue
        if isinstance(field.default, tuple) and len(getattr(priors, field.name)) != len(
            field.default
        ):
            raise ValueError(
                f"prior setting {field.name!r} takes {len(field.default)} numbers, "
                f"got {getattr(priors, field.name)!r}"
            )


def _is_index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_input_list(name: str, value: Any) -> None:
    """A structural setting: distinct input column indices (0-based), or for
    ``opposition``, distinct subsets of them (one per force)."""
    if name == "opposition":
        if not isinstance(value, tuple) or not all(
            isinstance(s, tuple) and s and all(_is_index(v) for v in s) for s in value
        ):
            raise ValueError(
                f"prior setting {name!r} must be a list of input column indices (0, 1, ...) "
                f"or of lists of them (one force over several inputs), got {value!r}"
            )
        for subset in value:
            if len(set(subset)) != len(subset):
                raise ValueError(f"prior setting {name!r} repeats an input in {subset!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"prior setting {name!r} repeats a force: {value!r}")
        return
    if not isinstance(value, tuple) or not all(_is_index(v) for v in value):
        raise ValueError(
            f"prior setting {name!r} must be a list of input column indices (0, 1, ...), "
            f"got {value!r}"
        )
    if len(set(value)) != len(value):
        raise ValueError(f"prior setting {name!r} repeats an input: {value!r}")


def _plain(priors: Any) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(priors).items()
    }


class PriorSettings:
    """Shared behaviour of the priors classes: validation and a plain-dict view.

    ``_may_be_zero`` names settings allowed to be 0; every other number must be > 0.
    A ``slope_coupling`` setting, where present, must lie in [0, 1].
    """

    _may_be_zero: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        _check_settings(self, may_be_zero=self._may_be_zero + ("noise_floor", "noise_trend_sd"))
        if not 0 <= getattr(self, "slope_coupling", 0.0) <= 1:
            raise ValueError("slope_coupling must be in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class CommonPriors(PriorSettings):
    """Settings every form shares.

    - ``limit_fraction``: Beta(a, b) prior on the irreducible limit as a fraction of the
      smallest observed value (so the limit lies below every observation).
    - ``scale_sd``: sd (in log y units) of the Normal prior on log y of the curve at the
      centre of the data, around the mean of log y.
    - ``noise_median`` and ``noise_sd``: LogNormal prior on the noise scale of log y (a
      relative error) above ``noise_floor``. The LogNormal has no mass near zero, which
      keeps the noise from collapsing on smooth curves (that would make the posterior
      needle-thin and NUTS unstable).
    - ``noise_floor``: the least noise scale of log y (default 0). Set it to the known
      resolution of the measurements (e.g. 0.001 for losses rounded to three significant
      digits), so that the model never claims a fit tighter than the data can support.
    - ``student_df``: degrees of freedom when the likelihood is Student-t.
    - ``noise_corr_share``: Beta(a, b) prior on the share of the error variance that is
      correlated along the input, with likelihood "ou" (scaled by 0.99: some noise stays
      independent). Beta(2, 2) keeps away from both ends, where either the correlation or
      the independent noise would vanish.
    - ``noise_length_median``, ``noise_length_sd``: LogNormal prior on that correlation's
      length, in units of half the observed log range (z units); the default median 0.2 is a
      tenth of the range, and sd 1 spans a few points' spacing to the whole range.
    - ``noise_trend_sd``: sd of the Normal prior on the noise trend, the slope of log sigma
      per unit of z, one per input (0, the default: a constant noise scale). Scatter that
      grows toward the largest runs within the data then grows past them too, instead of
      being averaged with the many small runs. At sd 0.5, 90% of the prior lets the noise
      at an edge of the data differ from the centre's by at most a factor of 2.3.
      Not with likelihood "ou".
    """

    limit_fraction: tuple[float, float] = (1.0, 1.0)
    scale_sd: float = 2.0
    noise_median: float = 0.01
    noise_sd: float = 1.0
    noise_floor: float = 0.0
    student_df: float = 4.0
    noise_corr_share: tuple[float, float] = (2.0, 2.0)
    noise_length_median: float = 0.2
    noise_length_sd: float = 1.0
    noise_trend_sd: float = 0.0


@dataclass(frozen=True)
class BNSLPriors(CommonPriors):
    """Weakly informative priors for a BNSL with n breaks.

    The limit, the scale at the centre and the noise are set as in :class:`CommonPriors`.

    - ``slope_sd``: sd of the mean slope of the curve across the observed range, in units of
      ``y_spread`` (log y per unit of z).
    - ``break_slope_sd``: sd of the change of slope each break makes within the range where
      breaks lie (the observed range, plus ``break_margin_decades``), likewise. A break at
      an edge of that range makes only part of its change there, the rest outside.
    - ``slope_coupling``: slopes are sampled in log-y units and divided by
      ``1 - slope_coupling * a / y`` at the centre of the data to give slopes of log M
      (``d log y = (1 - a / y) d log M``). 1 makes that conversion exact at the centre;
      the default 0.99 sampled as well as 1 in an exploratory comparison at tree depth 6
      while it bounds the factor at 100, which keeps the implied prior on slopes of log M
      from a heavy tail as a nears y (prior curves that rise by hundreds of orders of
      magnitude over the data).
      With the curve's value at the centre and the breaks' visible slope changes, this is
      the parameterisation that samples well
      (benchmarks/results/convergence_all_depth6.md).
    - ``break_concentration``: breaks are ordered, their spacings over the range where breaks
      lie (the observed range, plus ``break_margin_decades``) Dirichlet with this
      concentration. 1 makes the locations uniform; the default 3 keeps them away from the
      edges of the range and from each other (with one break, Beta(3, 3): 90% of the prior
      within the middle 62% of the range). A break at an edge of the data is seen from one
      side only, where its location, sharpness and slope change trade off along a curved
      ridge; the concentration says that the breaks the data show lie within them. At tree
      depth 6 on the 111 benchmark curves, 67% of the fits passed every convergence check at
      3, against 56%, 64% and 66% at 1, 2 and 5 (benchmarks/results/convergence_all_depth6.md
      and convergence_concentration*.md).
    - ``break_margin_decades``: break locations lie within the observed range extended by
      this many decades past its largest value. The default 0 keeps the fitted
      breaks where the data can show them; the further-break prior below carries what may
      happen past the data. A margin makes breaks past the data possible, whose slope
      changes the data barely constrain (a harder posterior to sample).
    - ``sharpness_median`` and ``sharpness_sd``: LogNormal prior on f - ``sharpness_floor``,
      in z units; the floor keeps the geometry bounded as breaks turn sharp.
    - ``sharpness_floor_spacing``: raises the floor of the fitted breaks to this multiple of
      the median spacing of the observed inputs (z units) where that is larger: the data
      cannot tell a break sharper than their spacing from a kink. 0 (the default) keeps
      the fixed floor.
    - ``y_spread_floor``: the least spread of log y used to scale the slope priors.
    - ``future_break_rate``: the rate, per decade of the input past its largest observed
      value, of a further break that the data cannot show. Predictions carry one such
      break per posterior draw, whose distance past the data, in decades, is
      Exponential(rate): at the default 1.0 the chance of a break within one decade is 63%
      (0.25: 22%). Its sharpness has the prior of the fitted breaks. It is zero up to the
      last observation, so the data say nothing about it and it is drawn from its prior at
      prediction time, outside the sampler (change it without refitting with
      :meth:`~bayes_unsl.fit.Fit.with_future_break`). Past the data it widens the intervals
      by the chance that the curve turns (an emergent drop, a plateau, the onset of
      overfitting). 0 removes it.
    - ``future_slope_sd``: the sd of that break's slope change toward the curve's limit
      (a loss that falls faster: an emergent drop, a new regime) in natural units (log y
      per log x, the units of a scaling exponent), the same for every curve. Such a turn
      is bounded by the limit itself (y tends to ``a``, never below it), so an absolute
      scale cannot run away. 0 scales it as the fitted breaks' prior instead,
      ``break_slope_sd * y_spread`` per unit of z, which grows with the observed drop and
      shrinks with the observed range: a curve flat so far then expects to stay flat.
    - ``future_away_sd``: the same for a turn away from the limit (a loss that levels off
      or rises again: a plateau, overfitting). Nothing bounds such a turn, so by default
      (0) it keeps the data-relative scale. Each direction is equally likely; a break is
      drawn as a half-normal of its direction's sd.
      The defaults (rate 1, data-relative both ways) stand on training splits
      (benchmarks/results/future_break{,_hold15}.md; no benchmark held-out point read).
      With the largest-x 30% of each curve's training points held out, rate 0.5 with sd 2
      toward the limit calibrated better by every aggregate; with 15% held out (fits that
      see more of their curve, as a real fit does) it did not (worse pooled over points,
      the image curves' central intervals too narrow), and a default moves only when no
      aggregate is worse. An absolute sd toward the limit only is the way to widen
      forecasts for a drop (a safety review, say): a symmetric absolute slope made 90%
      intervals on language-model loss curves span a factor of 50 at 10x the data, all of
      it from turns away from the limit (3.5 toward it only). The data-relative slope has
      a heavy upper tail on steep curves seen over a short range (the mean forecast, not
      the median, can run far above the data there); read medians and intervals.
    """

    _may_be_zero: ClassVar[tuple[str, ...]] = (
        "slope_coupling",
        "break_margin_decades",
        "future_break_rate",
        "future_slope_sd",
        "future_away_sd",
        "sharpness_floor_spacing",
    )

    slope_sd: float = 2.0
    break_slope_sd: float = 4.0
    slope_coupling: float = 0.99
    break_margin_decades: float = 0.0
    break_concentration: float = 3.0
    sharpness_median: float = 0.2
    sharpness_sd: float = 1.0
    sharpness_floor: float = 0.01
    sharpness_floor_spacing: float = 0.0
    y_spread_floor: float = 0.1
    future_break_rate: float = 1.0
    future_slope_sd: float = 0.0
    future_away_sd: float = 0.0


def priors_from_dict(d: Mapping[str, Any] | None, priors_type: type = BNSLPriors) -> Any:
    """Build priors of ``priors_type`` from a (possibly partial) mapping.

    Unknown keys are an error, so a misspelt setting never passes silently.
    """
    if d is None:
        return priors_type()
    known = {f.name for f in dataclasses.fields(priors_type)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown prior setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return priors_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class ChinchillaPriors(CommonPriors):
    """Weakly informative priors for the Chinchilla form, ``y = E + A/N^alpha + B/D^beta``.

    The inputs are taken relative to reference scales (the centre of the observed log
    range, ``u = log x - center``), so A and B are the two reducible terms at the centre of
    the data; the scales of raw counts are absorbed into them.

    - ``limit_fraction``: Beta(a, b) prior on E / min(y), the irreducible loss as a fraction
      of the smallest observed value (or of the curve at the centre, if that is lower), so
      that E >= 0 lies below every observation.
    - ``scale_sd``: sd (in log y units) of the Normal prior on log y at the centre of the
      data, ``log(E + A + B)``, around the mean of log y.
    - ``term_share``: Beta(a, b) prior on A / (A + B) at the centre: how the reducible part
      there divides between the model-size and the data term.
    - ``exponent_median`` and ``exponent_sd``: LogNormal prior on each exponent (alpha,
      beta > 0), in natural units (log y per log x of the reducible terms), which do not
      depend on the range of the data. The default, a median of 0.3 and an sd of 1 (95%
      between 0.04 and 2.1), covers the exponents reported for language models (about 0.3)
      and the flatter or steeper ones of other domains.
    - ``noise_median``, ``noise_sd`` and ``student_df``: as in :class:`BNSLPriors`.
    """

    term_share: tuple[float, float] = (1.0, 1.0)
    exponent_median: float = 0.3
    exponent_sd: float = 1.0


@dataclass(frozen=True)
class DCPriors(ChinchillaPriors):
    """Priors for the data-constrained form (DC) of Muennighoff et al. 2023.

    DC is the Chinchilla form at effective counts N' and D' that discount repeated tokens
    and parameters in excess of what the unique data support; the settings it shares with
    :class:`ChinchillaPriors` mean the same here (with A and B taken at the reference scales
    of N' and D', the centres of the observed N and D).

    - ``r_d_star_median``, ``r_n_star_median`` and ``r_star_sd``: LogNormal priors on the
      decay constants R_D* and R_N* (how many repetitions of the data, and how many excess
      parameters per useful one, still pay off). The paper fits about 15.4 and 5.3; the
      default sd of 1 (a factor e) keeps the prior wide around those values. Without
      repeated data the constants are not identified and their posterior is the prior.
    - ``tokens_per_param``: the fixed tokens-per-parameter ratio that sets the parameter
      count useful for U_D unique tokens, U_N = U_D / tokens_per_param (Chinchilla's 20).
    """

    r_d_star_median: float = 15.0
    r_n_star_median: float = 5.0
    r_star_sd: float = 1.0
    tokens_per_param: float = 20.0


@dataclass(frozen=True)
class M4Priors(CommonPriors):
    """Weakly informative priors for M4 (arXiv 2209.06640) of a single input.

    M4 is ``(y - eps_inf) / (eps_0 - y)^alpha = beta x^(-c)``: the curve falls from the
    random-guess level eps_0 towards the limit eps_inf. Slopes are in standardised
    coordinates, as for :class:`BNSLPriors`.

    - ``limit_fraction``: Beta(a, b) prior on eps_inf / min(y) (or on eps_inf over the curve
      at the centre, if that is lower), so 0 <= eps_inf < min(y).
    - ``scale_sd``: sd (in log y units) of the Normal prior on log y at the centre of the
      data, around the mean of log y; log beta follows from it exactly.
    - ``top_excess_median`` and ``top_excess_sd``: LogNormal prior on eps_0 / max(y) - 1
      (max(y) or the curve at the centre, if that is higher), so eps_0 > max(y). The
      default (median 0.25, sd 1.5) lets eps_0 sit just above the data or far above it.
    - ``slope_sd``: sd of the HalfNormal prior on the decay exponent c > 0, in units of
      ``y_spread`` per unit of z, seen in log y at the lowest observation.
    - ``slope_coupling``: as in :class:`BNSLPriors`: c is divided by
      ``1 - slope_coupling * eps_inf / min(y)`` (a reparameterisation of the offset-slope
      dependence).
    - ``alpha_sd``: sd of the HalfNormal prior on alpha >= 0; alpha = 0 is the power law
      with offset, larger alpha bends the curve towards eps_0 at small x.
    - ``noise_median``, ``noise_sd``, ``student_df`` and ``y_spread_floor``: as in
      :class:`BNSLPriors`.
    """

    _may_be_zero: ClassVar[tuple[str, ...]] = ("slope_coupling",)

    top_excess_median: float = 0.25
    top_excess_sd: float = 1.5
    slope_sd: float = 2.0
    slope_coupling: float = 0.9
    alpha_sd: float = 1.0
    y_spread_floor: float = 0.1


@dataclass(frozen=True)
class UNSLPriors(BNSLPriors):
    """Weakly informative priors for this project's UNSL composition.

    The default structure has one bottleneck component per input (an MBNSL over that
    input alone, with n breaks); ``joint_component=True`` adds, with two or more inputs, a
    non-bottleneck component over all inputs without hyperbreaks. Every setting shared
    with :class:`BNSLPriors` means the same here, applied to each component and each input
    (slopes of input j are in units of ``y_spread`` per unit of z_j; breaks of input j lie
    within its observed range plus ``break_margin_decades``). With one input the model is
    the BNSL model.

    - ``share_concentration``: concentration of the symmetric Dirichlet prior on how the
      reducible part at the centre of the data, ``y - a``, divides among the components
      (1 is uniform on the simplex). Not used with a single component.
    - ``joint_component``: whether the structure has the non-bottleneck component (with two
      or more inputs; off by default, since it mixed poorly where the data do not need
      it). Its slopes have the prior of the initial slopes. Without it and without
      breaks, the curve of the UNSL is the Chinchilla form.
    - ``no_bottleneck``: input columns (0-based) that get no bottleneck component, such as
      an input that only hurts (epochs of repeated data) or one already counted by the
      others. With every input listed, ``joint_component`` must be on.
    - ``opposition``: one entry per oppositional force: an input column, or a list of
      them. A force is a power law rising with its inputs, ``O = exp(gamma) prod x_j^e_j``
      with every ``e_j > 0``, added to the falling components: a learning rate past its
      optimum, epochs of repetition (a force over epochs and parameters: large models
      overfit repeated data sooner). With a bottleneck component on the same input, the
      two make a U-shaped curve in that input. The force takes its share of the reducible
      part at the centre of the data with the components.
    - ``share_slopes``: whether each component's sampled slopes (its mean slope over the
      data, its breaks' slope changes, the non-bottleneck component's slopes) are the
      slopes its term gives log y at the centre of the data, ``(M_r / y) d log M_r``, and
      so are divided by the component's share of y there (bounded by ``slope_coupling``
      as for the limit). Off, they are divided by the reducible share ``1 - a / y`` only,
      and a component's slope and its share of the Dirichlet trade off along a hyperbola
      (their product is what the data fix). Off by default: on six multi-input datasets
      (4 seeds each) its median least ESS was higher on five (8 of 24 fits passed R-hat and
      ESS against 0; median least ESS 344 against 245) and lower on Datablations, and on the inner
      training splits its mean MSCE was lower but its mean LPD too (1.297 against 1.329;
      benchmarks/results/share_slopes_convergence.md, share_slopes_inner.md). Try it
      where a fit's slopes and shares do not mix.
    - ``opposition_slope_sd``: sd of the HalfNormal prior on the rise ``e`` of log O per
      unit of z. z spans [-1, 1] over the observed inputs, so the default 4 puts the
      prior's median rise (2.7) at a force growing about 200-fold across the data: from
      negligible to the size of the loss, as a learning rate past its optimum does.
    - ``future_break_rate``: as in :class:`BNSLPriors`, but 0 by default. With several
      inputs a rate above 0 gives one further break per input, each past that input's
      largest observation (their terms add). On the multivariate training splits one
      break per input at rate 1 calibrated Chinchilla's largest budgets better but widened
      Gadre's and Pythia's intervals past need (mean MSCE 0.031 against 0.022 without;
      benchmarks/results/multi_future_break.md), so it is an option.
    - ``future_break_multi_input``: whether a fit with several inputs takes those breaks
      (False only for results saved before they existed, which predicted without them).
    """

    future_break_rate: float = 0.0
    future_break_multi_input: bool = True
    share_concentration: float = 1.0
    joint_component: bool = False
    no_bottleneck: tuple[int, ...] = ()
    opposition: tuple[int, ...] = ()
    opposition_slope_sd: float = 4.0
    share_slopes: bool = False

    _input_lists: ClassVar[tuple[str, ...]] = ("no_bottleneck", "opposition")

    def __post_init__(self) -> None:
        # One canonical form, so that a spec read back from JSON equals the original:
        # each force is a tuple of input indices (a bare index is a force over one input).
        forces = self.opposition
        if isinstance(forces, tuple | list):
            forces = tuple(tuple(f) if isinstance(f, tuple | list) else (f,) for f in forces)
        object.__setattr__(self, "opposition", forces)
        object.__setattr__(
            self,
            "no_bottleneck",
            tuple(self.no_bottleneck)
            if isinstance(self.no_bottleneck, list)
            else self.no_bottleneck,
        )
        super().__post_init__()
        if self.sharpness_floor_spacing != 0:
            raise ValueError(
                "sharpness_floor_spacing applies to form 'bnsl' only; UNSL breaks use the "
                "fixed sharpness_floor"
            )
