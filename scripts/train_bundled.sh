#!/usr/bin/env bash
# The recipe behind the bundled tiny weights (camworld/assets/weights/tiny/): tokenizer, world data, the DiT's
# progressive stages 1-3, then packaging. Every step resumes after an interruption (rerun the same command).
#
#   bash scripts/train_bundled.sh RUN_DIR [full|quick]
#
# `full` is the intended recipe; `quick` is the shortened run that produced the weights committed so far (see
# camworld/assets/weights/tiny/README.md). Steps run single-threaded: on a 2-core machine shared with other jobs,
# two torch threads made steps 5-10x slower.
set -euo pipefail
run=${1:?usage: train_bundled.sh RUN_DIR [full|quick]}
mode=${2:-full}
case "$mode" in
  full)  vae_steps=6000; s1=600; s2=600; s3=1500; pick= ;;
  quick) vae_steps=6000; s1=120; s2=120; s3=160; pick=--raw ;;
  *) echo "train_bundled.sh: mode must be full or quick, got '$mode'" >&2; exit 2 ;;
esac
mkdir -p "$run"
cw="python3 -m camworld"

# 1. tokenizer: clips rendered on the fly from world seeds < 10000 (held-out evaluation uses seeds >= 10000)
if [ ! -f "$run/vae/model.safetensors" ]; then
  $cw vae train --out "$run/vae_run" --steps "$vae_steps" --threads 1 --set tokenizer.lr=8e-4
  cp -r "$run/vae_run/checkpoint" "$run/vae"
fi

# 2. world data: 240 clips of 81 frames at 72x128 (seeds 0-239), random / waypoint / revisit trajectories
$cw data make --out "$run/data" --num-clips 240 --frames 81 --size 72x128 --seed-start 0 --shard-size 16 \
  --trajectory mix --no-depth

# 3. DiT stages (sana_wm.md §6.1): GDN -> hybrid -> long clips with camera control
last() { ls -d "$1"/checkpoints/step_* | sort | tail -1; }
$cw train --preset tiny --stage 1 --data "$run/data" --tokenizer "$run/vae" --out "$run/s1" --steps "$s1" --threads 1 --resume
$cw train --preset tiny --stage 2 --data "$run/data" --tokenizer "$run/vae" --out "$run/s2" --steps "$s2" --threads 1 \
  --init "$(last "$run/s1")" --resume
$cw train --preset tiny --stage 3 --data "$run/data" --tokenizer "$run/vae" --out "$run/s3" --steps "$s3" --threads 1 \
  --init "$(last "$run/s2")" --resume

# 4. package: VAE in fp32, DiT in bf16 (EMA weights; raw weights for the short run), into the bundled layout
python3 scripts/package_weights.py --vae "$run/vae" --dit "$(last "$run/s3")" --out camworld/assets/weights/tiny $pick
