"""``xsfm.plot`` on real xsfm outputs: coordinates, labels with units, calibration references, errors."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import xsfm  # noqa: E402
from xsfm import plot  # noqa: E402
from xsfm.errors import InputError  # noqa: E402
from xsfm.xr.examples import example_truth  # noqa: E402

MEMBERS = 4


@pytest.fixture(scope="module")
def downscaled():
    """(coarse, ensemble, truth) of the shipped model on 2 samples, 4 members, 2 sampler steps."""
    m = xsfm.load_model("kolmogorov-sfm")
    coarse = m.example_input().isel(sample=slice(0, 2))
    fine = coarse.sfm.downscale(model=m, members=MEMBERS, steps=2, seed=0).compute()
    truth = example_truth(m).isel(sample=slice(0, 2))
    return coarse["vorticity"], fine["vorticity"], truth["vorticity"]


@pytest.fixture(scope="module")
def assimilated():
    """(Lorenz-63 data, FlowDAS analysis) on 2 trajectories, 5 steps, 4 members."""
    ds = xsfm.datasets.lorenz63(trajectories=2, steps=5, seed=1, burn_in=64)
    ana = ds.state.isel(time=[0]).sfm.assimilate(ds.obs, members=MEMBERS, steps=10, seed=0)
    return ds, ana


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _colorbar_labels(fig) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_ensemble_panels_draw_on_the_coordinates_with_labelled_bars(downscaled):
    coarse, ens, truth = downscaled
    fig = plot.ensemble_panels(ens, truth, coarse, select={"sample": 1}, members_shown=2)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    titles = [ax.get_title() for ax in panels]
    assert titles == ["coarse input", "truth", "member 0", "member 1", "ensemble spread"]
    assert panels[0].get_xlabel() == "x of cell centre [m]"
    assert panels[0].get_ylabel() == "y of cell centre [m]"
    assert all("[m]" in ax.get_xlabel() for ax in panels)
    # the axes span the physical domain (0..2 pi m), not grid indices
    x = ens["x"].values
    assert panels[1].get_xlim()[1] == pytest.approx(x[-1] + (x[1] - x[0]) / 2)
    assert panels[0].get_xlim()[1] == pytest.approx(panels[1].get_xlim()[1])
    # shared colour limits for the fields, symmetric (vorticity takes both signs); own for spread
    clims = {ax.collections[0].get_clim() for ax in panels[:-1]}
    assert len(clims) == 1
    (lo, hi), = clims  # fmt: skip
    assert lo == -hi
    assert panels[-1].collections[0].get_clim()[0] == 0
    assert sorted(_colorbar_labels(fig)) == [
        "ensemble std of relative vorticity [s-1]",
        "relative vorticity [s-1]",
    ]
    assert "sample = 1" in fig.get_suptitle()


def test_ensemble_panels_on_2d_longitude_latitude(downscaled):
    _, ens, truth = downscaled
    lon, lat = np.meshgrid(np.linspace(-10, 10, 64), np.linspace(40, 50, 64))
    lonlat = {
        "lon": (
            ("y", "x"),
            lon + 0.1 * lat,
            {"standard_name": "longitude", "units": "degrees_east"},
        ),
        "lat": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
    }
    fig = plot.ensemble_panels(
        ens.assign_coords(lonlat).to_dataset(), truth.assign_coords(lonlat), select={"sample": 0}
    )
    first = fig.axes[0]
    assert first.get_xlabel() == "longitude [degrees_east]"
    assert first.get_ylabel() == "latitude [degrees_north]"
    assert first.get_ylim()[0] < 40 < 50 < first.get_ylim()[1]


def test_spectra_stop_at_nyquist_on_log_axes(downscaled):
    coarse, ens, truth = downscaled
    _, ax = plt.subplots()
    out = plot.spectra(ens, truth, coarse, others={"twice the truth": 2 * truth}, ax=ax)
    assert out is ax
    dx = float(ens["x"][1] - ens["x"][0])
    nyquist = 1 / (2 * dx)
    assert ax.get_xlim()[1] == pytest.approx(nyquist)
    assert ax.get_xscale() == "log"
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "wavenumber (cycles per m) [m-1]"
    assert "[(s-1)^2 m]" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == ["ensemble members (mean spectrum)", "truth", "coarse input"]
    assert "twice the truth" in legend
    coarse_dx = float(coarse["x"][1] - coarse["x"][0])
    for line in ax.get_lines():
        k = np.asarray(line.get_xdata(), dtype=float)
        if line.get_label() == "coarse input":
            assert k.max() == pytest.approx(1 / (2 * coarse_dx))
        if line.get_label() == "coarse Nyquist wavenumber":
            continue
        assert k.min() > 0
        assert k.max() <= nyquist * (1 + 1e-9)
    each = plot.spectra(ens, members="each")
    assert len(each.get_lines()) == MEMBERS


def test_rank_histogram_has_members_plus_one_bars_and_the_flat_line(downscaled):
    _, ens, truth = downscaled
    ax = plot.rank_histogram(ens.to_dataset(), truth.to_dataset())
    assert len(ax.patches) == MEMBERS + 1
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == pytest.approx(1.0)
    (flat,) = ax.get_lines()
    assert flat.get_ydata()[0] == pytest.approx(1 / (MEMBERS + 1))
    assert ax.get_xlabel() == f"rank of the truth among {MEMBERS} members"
    assert ax.get_ylabel() == "relative frequency [1]"


def test_spread_skill_by_scale(downscaled):
    _, ens, truth = downscaled
    ax = plot.spread_skill(ens, truth, by="scale")
    assert ax.get_xscale() == ax.get_yscale() == "log"
    points, diagonal = ax.get_lines()
    assert len(points.get_xdata()) == 5  # octaves up to Nyquist index 32: 1-2-4-8-16-32
    assert "1:1" in diagonal.get_label()
    np.testing.assert_allclose(diagonal.get_xdata(), diagonal.get_ydata())
    assert ax.get_xlabel() == "ensemble spread of relative vorticity [s-1]"
    assert "[s-1]" in ax.get_ylabel()
    # Parseval: the octaves hold the variance but that of the domain means (k = 0) and of the
    # corners of the spectral square beyond Nyquist: most of the metrics' totals, never more
    spread, rmse = np.asarray(points.get_xdata()), np.asarray(points.get_ydata())
    rmse_total = float(xsfm.metrics.rmse(ens, truth))
    spread_total = float(xsfm.metrics.spread_skill_ratio(ens, truth)) * rmse_total
    assert 0.8 < (spread**2).sum() / spread_total**2 < 1
    assert 0.8 < (rmse**2).sum() / rmse_total**2 < 1


def test_spread_skill_by_lead_on_an_assimilation(assimilated):
    ds, ana = assimilated
    ax = plot.spread_skill(ana, ds.state, by="lead")  # the truth has time 0 too: it is dropped
    points, diagonal = ax.get_lines()
    assert len(points.get_xdata()) == ana.sizes["time"]
    assert "1:1" in diagonal.get_label()
    assert ax.get_xlabel() == "ensemble spread of Lorenz-63 state [1]"
    assert "lead 1" in [t.get_text() for t in ax.texts]
    rmse = xsfm.metrics.rmse(
        ana.state, ds.state.sel(time=ana.time), dim=["trajectory", "component"]
    )
    np.testing.assert_allclose(points.get_ydata(), rmse.values, rtol=1e-6)


def test_assimilation_series(assimilated):
    ds, ana = assimilated
    pick = {"trajectory": 1, "component": "x"}
    ax = plot.assimilation_series(ana, ds.state, ds.obs, select=pick)
    assert ax.get_xlabel() == "time step [1]"
    assert ax.get_ylabel() == "Lorenz-63 state [1]"
    # arctan observations are another quantity: on a twin axis labelled with their name and units
    twin = ax.figure.axes[-1]
    assert twin is not ax
    assert twin.get_ylabel().endswith("[1]")
    legend = [t.get_text() for t in twin.get_legend().get_texts()]
    assert legend == [
        f"5–95 % of {MEMBERS} members",
        "ensemble mean",
        "truth",
        "observations (± 0.25 noise std)",
    ]
    mean = ana.state.sel(pick).mean("member")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), mean.values)
    # observations of the state itself, on the same axis, with a band of +-2 std
    direct = ds.state.sel(component="x").rename("x_obs")
    direct.attrs = dict(ds.state.attrs)
    ax2 = plot.assimilation_series(ana, obs=direct, obs_std=0.5, band=2.0, select=pick)
    assert len(ax2.figure.axes) == 1
    assert "mean ± 2 std" in ax2.get_legend().get_texts()[0].get_text()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c, e, t, a: plot.ensemble_panels(t, select={"sample": 0}), r"lacks the dimension\(s\) \['member'\]"),
        (lambda c, e, t, a: plot.ensemble_panels(e, t), r"dimension\(s\) \['sample'\].*select=\{'sample'"),
        (lambda c, e, t, a: plot.ensemble_panels(e, select={"time": 0}), "select names"),
        (lambda c, e, t, a: plot.spectra(e, dims=("lat", "lon")), r"lacks the dimension\(s\) \['lat', 'lon'\]"),
        (lambda c, e, t, a: plot.rank_histogram(t, t), r"lacks the dimension\(s\) \['member'\]"),
        (lambda c, e, t, a: plot.rank_histogram(e, e), "the truth 'vorticity' has the member"),
        (lambda c, e, t, a: plot.spread_skill(e, t, by="lead"), r"lacks the dimension\(s\) \['time'\]"),
        (lambda c, e, t, a: plot.spread_skill(a[1], a[0].state), r"lacks the dimension\(s\) \['y', 'x'\]"),
        (lambda c, e, t, a: plot.assimilation_series(a[1], select={"component": "x"}), r"\['trajectory'\]"),
        (lambda c, e, t, a: plot.assimilation_series(a[1].isel(member=0)), r"\['member'\]"),
        (lambda c, e, t, a: plot.assimilation_series(a[0]), r"several variables \['state', 'obs'\]"),
    ],
)  # fmt: skip
def test_bad_input_is_named(downscaled, assimilated, call, match):
    coarse, ens, truth = downscaled
    with pytest.raises(InputError, match=match):
        call(coarse, ens, truth, assimilated)


def test_downscaling_panel_still_works(downscaled, tmp_path):
    coarse, ens, truth = downscaled
    pick = {"sample": 0}
    fig = plot.downscaling_panel(
        coarse.isel(pick), ens.isel(pick), truth.isel(pick), path=tmp_path / "panel.png"
    )
    assert (tmp_path / "panel.png").stat().st_size > 1000
    assert fig.get_suptitle() == "relative vorticity [s-1]"
