"""Change methods (``pipeline.change``) and the two-date rule (``pipeline.pairwise``): known answers
on seeded synthetic arrays, then real pairs: a real Sentinel-2 scene seen again (hazier, noisier,
shifted) must read as no change, and the labelled OSCD cities and the Taizhou pair must keep
their scores (issue 8)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage, stats

from pipeline import change, pairwise
from pipeline.accuracy import binary_scores
from pipeline.compare import compare

N_BANDS = 6
VEG = np.array([0.03, 0.06, 0.04, 0.35, 0.18, 0.09], np.float32)
BUILT = np.array([0.12, 0.13, 0.14, 0.18, 0.22, 0.20], np.float32)


def texture(shape: tuple[int, int], seed: int, n_bands: int = N_BANDS) -> np.ndarray:
    """A smooth multi-band scene (reflectance ~0.15 +- 0.05) from three latent fields."""
    rng = np.random.default_rng(seed)
    latent = ndimage.gaussian_filter(rng.normal(size=(3, *shape)), (0, 2, 2))
    latent /= latent.std(axis=(1, 2), keepdims=True)
    mix = rng.uniform(0.01, 0.05, size=(n_bands, 3))
    return (0.15 + np.einsum("kl,lyx->kyx", mix, latent)).astype(np.float32)


def noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (img + rng.normal(0.0, sigma, img.shape)).astype(np.float32)


PATCH = (slice(50, 70), slice(80, 110))
PATCH_SHIFT = np.array([0.05, 0.04, 0.06, -0.10, 0.08, 0.07], np.float32)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return texture((200, 200), seed=3)


# --- IR-MAD ----------------------------------------------------------------------------------


def test_irmad_no_change_probability_uniform_on_pure_noise(scene: np.ndarray) -> None:
    before = noisy(scene, 0.005, 1)
    after = noisy(1.1 * scene + 0.02, 0.005, 2)  # another gain and offset, no change
    r = change.irmad(before, after)
    assert r.converged
    assert r.dof == N_BANDS
    p = r.p_nochange.ravel()
    # 40,000 pixels: the share under p has a standard error of ~0.0005 at 1 %, ~0.0011 at 5 %
    assert np.mean(p < 0.01) == pytest.approx(0.01, abs=0.003)
    assert np.mean(p < 0.05) == pytest.approx(0.05, abs=0.006)
    assert np.mean(p < 0.5) == pytest.approx(0.5, abs=0.03)
    # chi-square statistic of N degrees of freedom: mean N
    assert float(np.mean(r.chi2)) == pytest.approx(N_BANDS, rel=0.05)
    # Nielsen's sqrt(2 (1 - rho)) under no-change weights converges to a too small variance
    nielsen = change.irmad(before, after, scale="canonical")
    assert np.mean(nielsen.p_nochange < 0.01) > 0.2
    with pytest.raises(ValueError, match="MAD scale 'mad' unknown"):
        change.irmad(before, after, scale="mad")  # type: ignore[arg-type]


def test_irmad_finds_planted_change(scene: np.ndarray) -> None:
    before = noisy(scene, 0.005, 1)
    after = noisy(1.1 * scene + 0.02, 0.005, 2)
    after[(slice(None), *PATCH)] += PATCH_SHIFT[:, None, None]
    r = change.irmad(before, after)
    inside = np.zeros(scene.shape[1:], bool)
    inside[PATCH] = True
    assert np.mean(r.p_nochange[inside] < 1e-3) > 0.99
    # the patch (1.5 % of the scene) does not inflate the false alarms elsewhere
    assert np.mean(r.p_nochange[~inside] < 0.01) < 0.015
    assert r.rho[0] < r.rho[-1]  # ascending: MAD 1 is the least correlated pair


def test_irmad_is_invariant_to_a_gain_and_offset_of_either_date(scene: np.ndarray) -> None:
    before = noisy(scene, 0.005, 1)
    after = noisy(scene, 0.005, 2)
    after[(slice(None), *PATCH)] += PATCH_SHIFT[:, None, None]
    plain = change.irmad(before, after)
    gains = np.array([0.8, 1.2, 0.9, 1.06, 1.0, 1.3], np.float32)[:, None, None]
    hazy = change.irmad(before, (gains * after + 0.015).astype(np.float32))
    # Exact in theory; in practice canonical pairs of near-equal correlation (here the three
    # pure-noise pairs) may come out rotated within their plane, which moves Z by a few %.
    np.testing.assert_allclose(hazy.rho, plain.rho, atol=2e-3)
    assert np.corrcoef(hazy.chi2.ravel(), plain.chi2.ravel())[0, 1] > 0.999
    flagged, flagged_hazy = plain.p_nochange < 1e-3, hazy.p_nochange < 1e-3
    assert np.mean(flagged != flagged_hazy) < 1e-3


def test_irmad_identical_and_constant_images_give_no_change(scene: np.ndarray) -> None:
    img = noisy(scene, 0.005, 1)
    r = change.irmad(img, img.copy())
    assert np.all(r.chi2 < 1e-3)
    flat = np.full((N_BANDS, 20, 20), 0.1, np.float32)
    r = change.irmad(flat, flat.copy())
    assert r.dof == 0
    assert np.all(r.p_nochange == 1.0)


def test_irmad_nodata_stays_nan(scene: np.ndarray) -> None:
    after = noisy(scene, 0.005, 2)
    after[2, :10, :10] = np.nan
    r = change.irmad(noisy(scene, 0.005, 1), after)
    assert np.isnan(r.chi2[:10, :10]).all()
    assert np.isnan(r.p_nochange[:10, :10]).all()
    assert np.isfinite(r.chi2[10:, 10:]).all()


# --- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["orthogonal", "ols"])
def test_normalisation_recovers_planted_gain_and_offset(scene: np.ndarray, method: str) -> None:
    # orthogonal regression expects noise in both dates; OLS of AFTER on BEFORE in AFTER only
    before = noisy(scene, 0.002, 1) if method == "orthogonal" else scene.copy()
    after = noisy(1.06 * scene + 0.015, 0.002, 2)
    norm = change.normalise(before, after, np.ones(scene.shape[1:], bool), method=method)
    assert norm.gain_fitted.all()
    np.testing.assert_allclose(norm.slope, 1.06, atol=0.01)
    np.testing.assert_allclose(norm.intercept, 0.015, atol=0.002)
    back = norm.apply(after)
    assert float(np.abs(np.median(back - before))) < 0.001


def test_normalisation_fits_only_the_offset_when_the_gain_is_undetermined() -> None:
    rng = np.random.default_rng(5)
    before = (0.1 + rng.normal(0, 0.01, (2, 100, 100))).astype(np.float32)
    after = (0.13 + rng.normal(0, 0.01, (2, 100, 100))).astype(np.float32)  # uncorrelated
    norm = change.normalise(before, after, np.ones((100, 100), bool))
    assert not norm.gain_fitted.any()
    np.testing.assert_allclose(norm.slope, 1.0)
    np.testing.assert_allclose(norm.intercept, 0.03, atol=0.002)
    with pytest.raises(ValueError, match="regression method 'tls' unknown"):
        change.normalise(before, after, np.ones((100, 100), bool), method="tls")  # type: ignore[arg-type]


# --- thresholds ------------------------------------------------------------------------------


def test_otsu_and_kittler_illingworth_on_a_bimodal_histogram() -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(0, 1, 70_000), rng.normal(6, 1, 30_000)])
    assert change.otsu_threshold(values) == pytest.approx(3.0, abs=0.4)
    assert change.kittler_illingworth_threshold(values) == pytest.approx(3.2, abs=0.4)
    # unequal spreads and sizes: KI sits at the Bayes boundary, where the weighted densities meet
    values = np.concatenate([rng.normal(0, 1, 90_000), rng.normal(6, 2, 10_000)])
    grid = np.linspace(0, 6, 6001)
    gap = 0.9 * stats.norm.pdf(grid, 0, 1) - 0.1 * stats.norm.pdf(grid, 6, 2)
    bayes = float(grid[np.argmax(gap < 0)])
    assert change.kittler_illingworth_threshold(values) == pytest.approx(bayes, abs=0.3)


@pytest.mark.parametrize("share", [0.001, 0.003])
def test_otsu_on_rare_change_falls_back_to_the_chi_square_quantile(share: float) -> None:
    rng = np.random.default_rng(13)
    n = 200_000
    k = int(share * n)
    noise = rng.chisquare(N_BANDS, n - k)
    stat = np.concatenate([noise, rng.noncentral_chisquare(N_BANDS, 150, k)])
    # Otsu splits the no-change mode itself: alone it would flag a third of the noise
    otsu = change.otsu_threshold(np.sqrt(stat)) ** 2
    assert np.mean(noise > otsu) > 0.2
    thr = change.change_threshold(stat, N_BANDS, alpha=1e-3, method="otsu")
    assert thr.rule.startswith("chi2")
    assert thr.value == pytest.approx(stats.chi2.isf(1e-3, N_BANDS))
    assert np.mean(noise > thr.value) < 2e-3
    ki = change.change_threshold(stat, N_BANDS, alpha=1e-3, method="ki")
    assert ki.value >= thr.value  # never below the noise quantile, whatever KI found


def test_automatic_threshold_used_on_a_bimodal_statistic() -> None:
    rng = np.random.default_rng(17)
    noise = rng.chisquare(N_BANDS, 140_000)
    stat = np.concatenate([noise, rng.noncentral_chisquare(N_BANDS, 150, 60_000)])
    for method in ("otsu", "ki"):
        thr = change.change_threshold(stat, N_BANDS, alpha=1e-3, method=method)  # type: ignore[arg-type]
        assert thr.rule.startswith(method), thr
        assert stats.chi2.isf(1e-3, N_BANDS) < thr.value < 100
    pure = change.change_threshold(noise, N_BANDS, alpha=1e-3, method="ki")
    assert pure.rule.startswith("chi2")
    with pytest.raises(ValueError, match="threshold method 'mean' unknown"):
        change.change_threshold(noise, N_BANDS, alpha=1e-3, method="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        change.chi_square_threshold(N_BANDS, 0.0)


@pytest.mark.parametrize("alpha", [0.01, 0.001])
def test_cva_chi_square_false_alarm_rate_on_pure_noise(scene: np.ndarray, alpha: float) -> None:
    before = noisy(scene, 0.01, 1)
    after = noisy(scene, 0.01, 2)
    r = change.cva(before, after, alpha=alpha)
    se = math.sqrt(alpha / r.changed.size)
    assert float(r.changed.mean()) == pytest.approx(alpha, abs=max(5 * se, 0.2 * alpha))
    # the old rule, a plain standardised length over 3, passes 17 % of pure noise
    assert np.mean(np.sqrt(r.chi2) > 3.0) == pytest.approx(0.17, abs=0.01)


def test_cva_noise_floor_keeps_sub_noise_differences_out(scene: np.ndarray) -> None:
    after = scene + np.float32(1e-4) * noisy(np.zeros_like(scene), 1.0, 4)  # DN-rounding size
    r = change.cva(scene, after.astype(np.float32), noise_floor=0.005)
    assert not r.changed.any()
    np.testing.assert_allclose(r.sigma, 0.005)


# --- registration tolerance, mixed pixels, post-classification ------------------------------


def test_tolerant_chi_square_ignores_a_one_pixel_shift(scene: np.ndarray) -> None:
    u = scene / 0.005
    v = np.roll(u, 1, axis=2)
    plain = change.tolerant_chi_square(u, v, 0)
    np.testing.assert_allclose(plain, np.sum((u - v) ** 2, axis=0), rtol=1e-5)
    tolerant = change.tolerant_chi_square(u, v, 1)
    assert np.nanmax(tolerant[:, 1:-1]) < 1e-6 < np.median(plain)
    where = np.zeros(scene.shape[1:], bool)
    where[5, 5] = True
    only = change.tolerant_chi_square(u, v, 1, where)
    assert np.isnan(only[~where]).all()
    assert only[5, 5] == pytest.approx(tolerant[5, 5])


def test_change_fraction_of_mixed_edge_pixels() -> None:
    c = np.array([3.0, -2.0, 4.0], np.float32)
    share = np.zeros((9, 9), np.float32)
    share[:, 4:] = 1.0
    share[:, 3] = 0.3  # a mixed column at the edge of a pure change
    delta = share[None] * c[:, None, None]
    f = change.change_fraction(delta, 2)
    assert f[4, 3] == pytest.approx(0.3, abs=1e-5)
    assert f[4, 6] == pytest.approx(1.0)
    assert np.isnan(f[4, 0])  # no change at all


def test_post_classification_transitions() -> None:
    before = np.array([[0, 0, 1], [2, 2, 1]])
    after = np.array([[0, 1, 1], [2, 0, 1]])
    valid = np.array([[True, True, True], [True, True, False]])
    t = change.post_classification(before, after, valid)
    assert t.matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert t.changed.tolist() == [[False, True, False], [False, True, False]]


# --- the two-date rule -----------------------------------------------------------------------


def land(shape: tuple[int, int], built: np.ndarray, seed: int, sigma: float = 0.004) -> np.ndarray:
    """Vegetation with a built area where ``built`` (a 0..1 cover fraction), plus noise."""
    frac = built.astype(np.float32)[None]
    base = VEG[:, None, None] + (BUILT - VEG)[:, None, None] * frac
    return noisy(base + 0.3 * (texture(shape, 21) - 0.15), sigma, seed)


def test_detect_finds_new_buildings_not_a_hazier_day() -> None:
    shape = (120, 120)
    old = np.zeros(shape)
    old[20:50, 20:50] = 1
    new = old.copy()
    new[60:90, 60:100] = 1  # 1,200 px of new buildings
    before = land(shape, old, 1)
    after = land(shape, new, 2)
    hazy = (1.06 * after + 0.015).astype(np.float32)
    r = pairwise.detect(before, hazy, min_mapping_unit_px=25)
    truth = (new > 0) & (old == 0)
    assert binary_scores(r.changed, truth, r.valid).iou > 0.95
    assert binary_scores(r.expansion, truth, r.valid).iou > 0.9
    assert r.threshold.rule.startswith("chi2")
    assert r.normalisation.gain_fitted.any()
    prov = r.provenance()
    assert prov["alpha"] == pairwise.ALPHA
    assert "IR-MAD" in str(prov["rule"])
    # the same day seen hazier: nothing
    same = pairwise.detect(before, (1.06 * land(shape, old, 3) + 0.015).astype(np.float32))
    assert same.changed.mean() < 1e-3
    assert not same.expansion.any()


def test_detect_identical_shifted_and_flat_pairs_give_no_change() -> None:
    shape = (120, 120)
    old = np.zeros(shape)
    old[20:50, 20:50] = 1
    before = land(shape, old, 1)
    assert not pairwise.detect(before, before.copy()).changed.any()
    shifted = np.full_like(before, np.nan)
    shifted[:, :, 1:] = before[:, :, :-1]
    r = pairwise.detect(before, shifted)
    assert r.changed[:, 1:].mean() < 0.001
    flat = np.full((N_BANDS, 30, 30), 0.1, np.float32)
    assert not pairwise.detect(flat, flat.copy()).changed.any()


def test_detect_counts_mixed_edge_pixels_by_majority() -> None:
    # a block with soft (sensor-blurred) edges: pixels count when over half of them changed
    shape = (100, 100)
    yy, xx = np.mgrid[0:100, 0:100] + 0.5
    dist = np.maximum(np.maximum(40.3 - xx, xx - 70.3), np.maximum(30.6 - yy, yy - 50.6))
    cover = 1 / (1 + np.exp(dist / 0.8))
    r = pairwise.detect(land(shape, np.zeros(shape), 1), land(shape, cover, 2))
    majority = int((cover > 0.5).sum())
    assert int(r.changed.sum()) == pytest.approx(majority, rel=0.05)
    assert int(((cover > 0.1) & (cover < 0.4) & r.changed).sum()) < 0.1 * majority


def test_detect_expansion_needs_new_footprint() -> None:
    shape = (80, 80)
    old = np.zeros(shape)
    old[10:40, 10:40] = 1
    before = land(shape, old, 1)
    after = land(shape, old, 2)
    # half the built ground re-roofed: change, but no new footprint. (Re-roofing all of it would
    # be an affine function of BEFORE's two-class spectrum, which IR-MAD cannot tell from a
    # calibration difference.)
    after[:, 10:40, 10:25] += np.float32(0.08)
    r = pairwise.detect(before, after, min_mapping_unit_px=25)
    assert r.changed[12:38, 12:23].mean() > 0.95
    assert r.changed[:, 27:].mean() < 0.01
    assert not r.expansion.any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha 0.0 not allowed"),
        ({"registration_px": -1}, "registration_px -1 not allowed"),
        ({"min_mapping_unit_px": 2.5}, "min_mapping_unit_px 2.5 not allowed"),
        ({"noise_floor": -0.1}, "noise_floor -0.1 not allowed"),
        ({"threshold": "median"}, "threshold method 'median' unknown"),
    ],
)
def test_detect_refuses_bad_parameters(kwargs: dict[str, Any], match: str) -> None:
    img = texture((20, 20), 1)
    with pytest.raises(ValueError, match=match):
        pairwise.detect(img, img, **kwargs)
    with pytest.raises(ValueError, match="one shape"):
        pairwise.detect(img, img[:, 1:])


# --- real pairs ------------------------------------------------------------------------------

S2_DIR = "sentinel2-l2a-29RKH-20200219"
S2_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def seen_again(src: Path, dst: Path, kind: str) -> Path:
    """The real scene's six bands and SCL as another acquisition: ``hazy`` (reflectance x 1.06 +
    0.015), ``noisy`` (+ Gaussian noise of 0.006 reflectance per band, at each band's native
    resolution) or ``shifted`` (one 10 m-band pixel east: misregistration)."""
    dst.mkdir(parents=True)
    rng = np.random.default_rng(2024)
    with rasterio.open(src / "B02.tif") as ref:
        px = ref.transform.a
    for name in (*S2_BANDS, "SCL"):
        with rasterio.open(src / f"{name}.tif") as s:
            data, profile, t = s.read(1), s.profile, s.transform
        keep = ("dtype", "nodata", "width", "height", "count", "crs", "transform")
        profile = {"driver": "GTiff", **{k: profile[k] for k in keep}}
        if kind == "shifted":
            profile["transform"] = Affine(t.a, t.b, t.c + px, t.d, t.e, t.f)
        elif name != "SCL":
            dn = data.astype(np.float64)
            dn = dn * 1.06 + 150 if kind == "hazy" else dn + rng.normal(0, 60, dn.shape)
            data = np.where(data == 0, 0, np.clip(np.round(dn), 1, 65535)).astype(np.uint16)
        with rasterio.open(dst / f"{name}.tif", "w", **profile) as out:
            out.write(data, 1)
    return dst


NO_CHANGE_LIMITS = {"hazy": 0.005, "noisy": 0.005, "shifted": 0.01}


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(NO_CHANGE_LIMITS))
def test_real_scene_seen_again_is_no_change(real_data: Path, tmp_path: Path, kind: str) -> None:
    src = real_data / S2_DIR
    after = seen_again(src, tmp_path / kind, kind)
    summary = compare(src, after, tmp_path / "out", scale=1e-4)
    assert summary["valid_pixels"] > 1_000_000
    changed = summary["changed_pixels"] / summary["valid_pixels"]
    assert changed <= NO_CHANGE_LIMITS[kind], summary
    assert summary["expansion_pixels"] / summary["valid_pixels"] <= NO_CHANGE_LIMITS[kind]


def _benchmark(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Reached (benchmarks/oscd_compare.py): pooled change F1 0.265, expansion F1 0.238 on
# 2026-11-30, 0.230 on 2026-12-02 and 0.231 with the exposed-bed rule; Taizhou kappa 0.900.
# Asserted about 0.02 below the first figures, so a regression fails.
OSCD_CHANGE_F1 = 0.245
OSCD_EXPANSION_F1 = 0.218
TAIZHOU_KAPPA = 0.88


@pytest.mark.realdata
@pytest.mark.slow
def test_real_oscd_cities_pooled_f1(real_data: Path, tmp_path: Path) -> None:
    bench = _benchmark("oscd_compare")
    scores = bench.score_all(tmp_path, data=real_data / "oscd-dev")
    pooled = scores["pooled"]
    assert pooled["change"]["f1"] >= OSCD_CHANGE_F1, scores
    assert pooled["expansion"]["f1"] >= OSCD_EXPANSION_F1, scores


@pytest.mark.realdata
def test_real_taizhou_change_kappa(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "taizhou-landsat-2000-2003"
    bands = ["blue", "green", "red", "nir", "swir16", "swir22"]
    summary = compare(folder / "2000TM", folder / "2003TM", tmp_path / "tz", bands=bands)
    with rasterio.open(tmp_path / "tz" / "change.tif") as src:
        pred = src.read(1) == 1
    with rasterio.open(folder / "change.bmp") as src:
        changed = src.read(1) == 255
    with rasterio.open(folder / "unchanged.bmp") as src:
        unchanged = src.read(1) == 255
    s = binary_scores(pred, changed, changed | unchanged)
    assert s.kappa >= TAIZHOU_KAPPA, (s, summary)
    assert s.precision > 0.98, s


def test_seen_again_perturbs_as_documented(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    profile = {
        "driver": "GTiff", "dtype": "uint16", "nodata": 0, "width": 4, "height": 4, "count": 1,
        "crs": "EPSG:32629", "transform": Affine(100, 0, 0, 0, -100, 400),
    }  # fmt: skip
    for name in (*S2_BANDS, "SCL"):
        with rasterio.open(src / f"{name}.tif", "w", **profile) as dst:
            dst.write(np.full((1, 4, 4), 1000, np.uint16))
    out = seen_again(src, tmp_path / "hazy", "hazy")
    with rasterio.open(out / "B02.tif") as s:
        assert s.read(1)[0, 0] == 1210  # 1000 x 1.06 + 150 DN
    with rasterio.open(seen_again(src, tmp_path / "shifted", "shifted") / "B02.tif") as s:
        assert s.transform.c == 100
