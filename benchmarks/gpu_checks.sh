#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run (a few minutes on one H100): the `gpu`-marked equivalence tests
# (GDN backends incl. flash-linear-attention, WorldDiT and the training loop against the CPU), the GDN backend
# timings at the full preset's head shapes, full-preset training throughput, and `camworld plan` against measured
# CUDA memory. Logs go to $OUT (default ./gpu_checks). The parts are capped at 530 s in all, inside one 600 s
# device call (the full preset's 961-frame plan rows need a longer cap). Run from the repository root:
#     bash benchmarks/gpu_checks.sh
set -u -o pipefail
OUT=${OUT:-gpu_checks}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import torch, importlib.util as u; print('torch', torch.__version__, 'fla', u.find_spec('fla') is not None)" \
  | tee -a "$OUT/device.txt"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/ops/test_gdn_equivalence.py \
  tests/models/test_dit_cuda.py tests/train/test_train_cuda.py 2>&1 | tee "$OUT/pytest_gpu.txt" | tail -25
{
  timeout 40 python3 benchmarks/gdn_backends.py --device cuda --batch 2 --frames 241 --tokens 1 --heads 20 --dim 112
  timeout 40 python3 benchmarks/gdn_backends.py --device cuda --batch 1 --frames 16 --tokens 880 --heads 20 --dim 112
} 2>&1 | tee "$OUT/gdn_backends.txt"
timeout 100 python3 benchmarks/train_throughput.py --preset full --device cuda --batch 1 --steps 3 \
  --gradient-checkpointing 2>&1 \
  | tee "$OUT/train_throughput_full.txt"
timeout 200 python3 benchmarks/plan_gpu.py --cap-s 75 --budget-s 140 --out "$OUT/plan_gpu.json" 2>&1 \
  | tee "$OUT/plan_gpu.txt"
