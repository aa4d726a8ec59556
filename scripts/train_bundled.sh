#!/usr/bin/env bash
# The recipe behind the bundled tiny weights (camworld/assets/weights/tiny/): tokenizer, world data, the DiT's
# progressive stages 1-4, the refiner LoRA, packaging, then the distilled 4-step student. Every step resumes after
# an interruption (rerun the same command). Each phase prints its start time.
#
#   bash scripts/train_bundled.sh RUN_DIR [budget|quick|full] [WEIGHTS_OUT]
#
# `budget` fits the 3 h the generation issue allows for everything up to packaging on an idle 2-core machine
# (169.8 min in its run; the student after it is optional) and is the run behind the bundled weights; `quick` is the
# run behind the previous bundle (camworld/assets/weights/tiny/README.md compares the two); `full` is a longer
# recipe nobody has run here. WEIGHTS_OUT (default the bundled folder) is where packaging writes, so a trial run can
# be measured before it replaces anything.
# The VAE uses two threads only in `budget`, which assumes the cores are free (shared with other jobs, two torch
# threads made steps 5-10x slower); the DiT stages and the refiner run as two data-parallel processes of one thread.
set -euo pipefail
run=${1:?usage: train_bundled.sh RUN_DIR [budget|quick|full] [WEIGHTS_OUT]}
mode=${2:-budget}
weights=${3:-camworld/assets/weights/tiny}
case "$mode" in
  budget) vae_steps=6000; vae_threads=2; s1=120; s2=120; s3=160; s4=1750; s4_mirror=0; s4_more=0; refiner_steps=100
          pick=; hflip=0.5; student_steps=450 ;;
  quick)  vae_steps=6000; vae_threads=1; s1=120; s2=120; s3=160; s4=900; s4_mirror=450; s4_more=600
          refiner_steps=100; pick=; hflip=0.0; student_steps=450 ;;
  full)   vae_steps=6000; vae_threads=1; s1=600; s2=600; s3=1500; s4=3000; s4_mirror=0; s4_more=0
          refiner_steps=600; pick=; hflip=0.5; student_steps=600 ;;
  *) echo "train_bundled.sh: mode must be budget, quick or full, got '$mode'" >&2; exit 2 ;;
esac
phase() { echo "[$(date -u +%FT%TZ)] $*"; }
mkdir -p "$run"
cw="python3 -m camworld"

# 1. tokenizer: clips rendered on the fly from world seeds < 10000 (held-out evaluation uses seeds >= 10000)
phase "tokenizer"
if [ ! -f "$run/vae/model.safetensors" ]; then
  $cw vae train --out "$run/vae_run" --steps "$vae_steps" --threads "$vae_threads" --set tokenizer.lr=8e-4
  cp -r "$run/vae_run/checkpoint" "$run/vae"
fi

phase "world data"
# 2. world data: 240 clips of 81 frames at 72x128 (seeds 0-239), random / waypoint / revisit trajectories
$cw data make --out "$run/data" --num-clips 240 --frames 81 --size 72x128 --seed-start 0 --shard-size 16 \
  --trajectory mix --no-depth

# 3. DiT stages (sana_wm.md §6.1): GDN -> hybrid -> long clips with camera control
last() { ls -d "$1"/checkpoints/step_* | sort | tail -1; }
# Stages 1-3 run as two data-parallel processes: each step draws the same clips and noise as one process
# (tests/train/test_dist.py). The quick run's stages 1-3 ran as one process.
dit_stage() {
  torchrun --standalone --nproc-per-node 2 -m camworld train --preset tiny --data "$run/data" --tokenizer "$run/vae" \
    --threads 1 --device cpu --resume "$@"
}
phase "DiT stage 1"
dit_stage --stage 1 --out "$run/s1" --steps "$s1"
phase "DiT stage 2"
dit_stage --stage 2 --out "$run/s2" --steps "$s2" --init "$(last "$run/s1")"
phase "DiT stage 3"
dit_stage --stage 3 --out "$run/s3" --steps "$s3" --init "$(last "$run/s2")" --set train.hflip="$hflip"

# Stages 3-4 see mirrored samples with probability $hflip (train.hflip, ClipDataset.mirror_sample), a symmetry prior:
# a left turn mirrored is a right turn. In 450-step stage-4 continuations the mirrored run turned the image further
# under yaw than the same run without (0.94 / 0.89 against 0.67 / 0.82 of the true motion; one run each, weights
# README). `budget` mirrors from stage 3 on, in one stage-4 run; the quick run trained stages 3-4 without mirroring,
# then continued stage 4 with it in two more runs (below).
# Stage 4 (chunk-causal, what `--mode ar` runs) on 37-frame clips (10 latents: chunks 4+3+3) as two data-parallel
# processes of one thread each. Deliberate difference from sana_wm.md §6.1 (lr / 5): the tiny model is trained from
# scratch with a few hundred camera steps before this stage, so its camera branches are still near their zero
# initialisation; at 6e-5 they stayed there (the camera changed the loss by 0.1%), so stage 4 keeps stage 1's 3e-4.
# stage4 OUT STEPS INIT HFLIP: one stage-4 run with the settings above
stage4() {
  dit_stage --stage 4 --out "$1" --steps "$2" --init "$3" --set train.lr=3e-4 --set train.clip_frames=37 \
    --set train.checkpoint_every=50 --set train.ema_decay=0.995 --set train.hflip="$4"
}
phase "DiT stage 4"
stage4 "$run/s4" "$s4" "$(last "$run/s3")" "$hflip"
dit_run=$run/s4

# quick only: stage 4 continued for $s4_mirror steps with mirrored samples (p = 0.5), from its last checkpoint with a
# fresh optimiser (how the previous bundle was made: 900 steps turned the image a third as far as the camera turned,
# these 450 more nearly as far; weights README)
if [ "$s4_mirror" -gt 0 ]; then
  stage4 "$run/s4m" "$s4_mirror" "$(last "$run/s4")" 0.5
  dit_run=$run/s4m
fi
# quick only: $s4_more further mirrored steps from there, again with a fresh optimiser (the loss was still falling;
# on the tuning worlds the first 5 s gained 2.6 dB, with the EMA weights that are packaged; weights README)
if [ "$s4_more" -gt 0 ]; then
  stage4 "$run/s4m2" "$s4_more" "$(last "$dit_run")" 0.5
  dit_run=$run/s4m2
fi

# Stage-2 refiner (sana_wm.md §5): a rank-16 LoRA on the last stage-4 checkpoint, trained with the truncated-σ
# objective on degraded clips (camworld/train/refiner_train.py), as two data-parallel processes (each step draws the
# same clips and noise as one process would: tests/train/test_dist.py). Its base must be the DiT packaged below: the
# EMA weights, or the raw ones when packaging with --raw.
phase "refiner"
init_weights=--init-ema
if [ "$pick" = --raw ]; then init_weights=; fi
torchrun --standalone --nproc-per-node 2 -m camworld train --refiner --data "$run/data" --tokenizer "$run/vae" \
  --out "$run/refiner" --steps "$refiner_steps" --threads 1 --device cpu --init "$(last "$dit_run")" $init_weights \
  --resume --set train.checkpoint_every=25

phase "package"
# 4. package: VAE in fp32, DiT in bf16 (EMA weights, or raw with --raw), refiner LoRA in bf16, into the
# bundled layout
python3 scripts/package_weights.py --vae "$run/vae" --dit "$(last "$dit_run")" --refiner "$(last "$run/refiner")" \
  --out "$weights" $pick --refiner-off --cfg-scale 1 --ar-sigmas 1,0.96,0.889,0.727,0 \
  --ar-interval-k 1 --ar-segment-frames 81
# --refiner-off: the refiner lost its A/B (docs/results/generation.md), so it is bundled but off by default. --cfg-scale 1: unguided
# sampling scored higher than SANA-WM's 5.0 on held-out worlds (docs/results/generation.md), at half the compute. --ar-sigmas /
# --ar-interval-k: `--mode ar` samples chunk by chunk with 4 Euler steps at SANA-WM's distilled σ list; over the
# first 5 s of held-out worlds it scored above the 10-step pyramid and the repeated first frame (docs/results/generation.md).
# --ar-segment-frames 81: `--mode ar` videos longer than 81 frames are made as a chain of 81-frame segments, each
# from the last frame of the one before; over the last 10 s of minute-long held-out videos it scored above one pass
# (docs/results/generation.md; measured on the previous bundle, whose configs had these settings added by hand after packaging).

phase "student (optional; the 3 h budget ends above)"
# 5. the 4-step student (sana_wm.md §6.5): self-forcing distillation of the packaged dit/ (the teacher) into a
# rank-32 LoRA, one process of two threads (camworld/train/distill.py), then added to the weights as student/
$cw train --distill --data "$run/data" --tokenizer "$run/vae" --init "$weights/dit" \
  --out "$run/student" --steps "$student_steps" --threads 2 --device cpu --resume \
  --set distill.generator_every=3 --set train.batch_size=2 --set train.checkpoint_every=50
python3 scripts/package_student.py --student "$(last "$run/student")" --weights "$weights"
phase "done"
