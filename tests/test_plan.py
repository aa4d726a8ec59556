"""`camworld plan`: exact weight counts, the flag search, the shape of the memory model, and its predictions against
peak memory measured in a fresh process (tiny in the default suite, small and longer clips marked slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from camworld.cli import main
from camworld.errors import UserError
from camworld.models.dit import WorldDiT
from camworld.plan.memory import TERM_LABELS, PlanRequest, dit_parameters, fit_on, flag_combinations, plan_memory
from camworld.presets import get_preset


def test_dit_parameters_count_the_real_module():
    cfg = get_preset("tiny")
    model = WorldDiT(cfg.model)
    assert dit_parameters(cfg.model) == sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for b in model.buffers()
    )


def test_full_dit_matches_the_published_parameter_budget():
    # sana_wm.md §2.8: ≈2.66B with the camera branches
    assert abs(dit_parameters(get_preset("full").model) / 2.66e9 - 1) < 0.01


def test_offloaded_models_are_resident_only_in_their_own_phase():
    cfg = get_preset("full")
    off = {p.name: p for p in plan_memory(cfg, PlanRequest(961, offload_vae=True, offload_refiner=True)).phases}
    assert set(off["denoise"].weights) == {"dit"}
    assert set(off["refine"].weights) == {"dit", "refiner"}
    assert set(off["decode"].weights) == {"dit", "vae"}
    base = {p.name: p for p in plan_memory(cfg, PlanRequest(961)).phases}
    assert set(base["denoise"].weights) == {"dit", "vae", "refiner"}
    assert "refine" not in {p.name for p in plan_memory(cfg, PlanRequest(961, no_refiner=True)).phases}


def test_ar_peak_does_not_grow_with_length_but_bidirectional_does():
    cfg = get_preset("full")
    ar = [plan_memory(cfg, PlanRequest(n, mode="ar")).peak for n in (481, 961)]
    bidirectional = [plan_memory(cfg, PlanRequest(n)).peak for n in (481, 961)]
    assert ar[0] == ar[1]
    assert bidirectional[1] > bidirectional[0]


def test_flag_search_keeps_requested_flags_and_finds_the_cheapest_fit():
    cfg = get_preset("full")
    request = PlanRequest(961, offload_vae=True)
    assert all(r.offload_vae for r in flag_combinations(request))
    assert flag_combinations(request)[0] == request
    plans = {r: plan_memory(cfg, r).peak for r in flag_combinations(PlanRequest(961))}
    smallest = min(plans.values())
    fitting, best = fit_on(cfg, PlanRequest(961), smallest + 1)
    assert fitting is not None and fitting.peak <= smallest + 1 and best.peak == smallest
    assert fit_on(cfg, PlanRequest(961), smallest - 1)[0] is None
    assert fit_on(cfg, PlanRequest(961), 1e15)[0].request == PlanRequest(961)


def test_bad_length_is_a_user_error():
    with pytest.raises(UserError):
        plan_memory(get_preset("full"), PlanRequest(960))
    with pytest.raises(UserError):
        PlanRequest(961, dtype="fp16")


def test_cli_prints_the_table_and_the_answer(capsys):
    assert main(["plan", "--preset", "full", "--num_frames", "961", "--gpu-gib", "1"]) == 0
    out = capsys.readouterr().out
    assert "denoise" in out and "decode" in out and "does not fit on 1 GiB" in out
    assert main(["plan", "--preset", "tiny", "--num_frames", "18"]) == 2


def _measured(preset: str, frames: int, dtype: str, mode: str, phases: str, extra: tuple[str, ...] = ()) -> dict:
    cmd = [sys.executable, "-m", "camworld.plan.measure", "--preset", preset, "--num_frames", str(frames),
           "--dtype", dtype, "--mode", mode, "--phases", phases, *extra]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def _check_against_measurement(preset, frames, dtype, mode, phases="text,denoise,refine,decode",
                               student: bool = False) -> None:
    """The predicted run peak within ±20% of the measured one; each phase within ±30% (tiny phases of a few
    tens of MiB carry heap noise)."""
    extra = ("--student", "--no_refiner") if student else ()
    measured = _measured(preset, frames, dtype, mode, phases, extra)["phases"]
    request = PlanRequest(frames, dtype, mode, device="cpu", guidance=not student, student=student,
                          no_refiner=student)
    plan = plan_memory(get_preset(preset), request)
    predicted = {p.name: p.total for p in plan.phases if p.name in measured}
    assert set(predicted) == set(measured)
    peak = max(phase["peak"] for phase in measured.values())
    assert abs(max(predicted.values()) / peak - 1) <= 0.2, (max(predicted.values()) / 2**20, peak / 2**20)
    for name, total in predicted.items():
        assert abs(total / measured[name]["peak"] - 1) <= 0.3, (name, total / 2**20, measured[name]["peak"] / 2**20)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_tiny_prediction_matches_measured_peak():
    _check_against_measurement("tiny", 17, "fp32", "bidirectional", phases="denoise,refine,decode")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_student_prediction_matches_measured_peak():
    """The distilled student: a second DiT resident, one branch, chunk by chunk."""
    _check_against_measurement("tiny", 241, "fp32", "ar", phases="denoise,decode", student=True)


def test_student_plans_need_ar_without_guidance():
    with pytest.raises(UserError, match="ar mode"):
        PlanRequest(241, "fp32", "bidirectional", guidance=False, student=True)
    with pytest.raises(UserError, match="one branch"):
        PlanRequest(241, "fp32", "ar", guidance=True, student=True)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize(
    ("preset", "frames", "dtype", "mode"),
    [("tiny", 97, "fp32", "bidirectional"), ("tiny", 49, "bf16", "ar"), ("small", 33, "bf16", "bidirectional"),
     ("small", 33, "fp32", "ar")],
)
def test_prediction_matches_measured_peak(preset, frames, dtype, mode):
    _check_against_measurement(preset, frames, dtype, mode)


def test_cpu_only_terms_stay_out_of_gpu_plans():
    cfg = get_preset("tiny")
    gpu = plan_memory(cfg, PlanRequest(17))
    cpu = plan_memory(cfg, replace(PlanRequest(17), device="cpu"))
    assert cpu.peak > gpu.peak
    cpu_only = {TERM_LABELS["ffn_broadcast"], "overhead", "overhead_denoise", "overhead_refine"}
    assert all(not cpu_only & set(p.terms) for p in gpu.phases)
    assert any(cpu_only & set(p.terms) for p in cpu.phases)


def test_assumed_minilm_size_equals_the_bundled_files(monkeypatch):
    from camworld.plan import memory
    from camworld.text import encoder

    bundled = memory.text_encoder_size(get_preset("tiny").text)
    assert bundled[0] == memory.BUNDLED_TEXT_PARAMS and bundled[2]

    def missing():
        raise UserError("no encoder package")

    monkeypatch.setattr(encoder, "bundled_minilm_path", missing)
    assumed = memory.text_encoder_size(get_preset("tiny").text)
    assert assumed[0] == bundled[0] and "assumed" in assumed[1] and assumed[2]


def test_plan_of_a_weights_folder_uses_its_packaged_guidance(capsys):
    from camworld.pipeline import BUNDLED_WEIGHTS

    def denoise_gib(*flags):
        assert main(["plan", "--num_frames", "161", *flags]) == 0
        lines = capsys.readouterr().out.splitlines()
        return lines[0], float(next(line for line in lines if line.startswith("denoise")).split()[3])

    title, packaged = denoise_gib("--weights", str(BUNDLED_WEIGHTS))
    assert "guidance scale 1 (one branch)" in title  # the bundled weights are packaged unguided
    title, guided = denoise_gib("--weights", str(BUNDLED_WEIGHTS), "--cfg_scale", "5")
    assert "two branches" in title and guided > packaged
    assert denoise_gib("--preset", "tiny")[1] == guided  # a bare preset keeps SANA-WM's CFG 5
    assert denoise_gib("--preset", "tiny", "--no_cfg")[1] == packaged
    assert main(["plan", "--weights", "/no/such/weights"]) == 2
