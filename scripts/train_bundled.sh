#!/usr/bin/env bash
# The recipe behind the bundled tiny weights (camworld/assets/weights/tiny/): tokenizer, world data, the DiT's
# progressive stages 1-4, the refiner LoRA, packaging, then the distilled 4-step student. Every step resumes after
# an interruption (rerun the same command).
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
  full)  vae_steps=6000; s1=600; s2=600; s3=1500; s4=3000; s4_mirror=0; s4_more=0; refiner_steps=600; pick=; hflip=0.5; student_steps=600 ;;
  quick) vae_steps=6000; s1=120; s2=120; s3=160; s4=900; s4_mirror=450; s4_more=600; refiner_steps=100; pick=
         hflip=0.0; student_steps=450 ;;
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
  --init "$(last "$run/s2")" --resume --set train.hflip="$hflip"

# Stages 3-4 see mirrored samples with probability $hflip (train.hflip, ClipDataset.mirror_sample), a symmetry prior:
# a left turn mirrored is a right turn. In 450-step stage-4 continuations the mirrored run turned the image further
# under yaw than the same run without (0.94 / 0.89 against 0.67 / 0.82 of the true motion; one run each, weights
# README). The quick run trains stages 3-4 without mirroring, then continues stage 4 with it (below).
# Stage 4 (chunk-causal, what `--mode ar` runs) on 37-frame clips (10 latents: chunks 4+3+3) as two data-parallel
# processes of one thread each. Deliberate difference from sana_wm.md §6.1 (lr / 5): the tiny model is trained from
# scratch with a few hundred camera steps before this stage, so its camera branches are still near their zero
# initialisation; at 6e-5 they stayed there (the camera changed the loss by 0.1%), so stage 4 keeps stage 1's 3e-4.
# stage4 OUT STEPS INIT HFLIP: one stage-4 run with the settings above
stage4() {
  torchrun --standalone --nproc-per-node 2 -m camworld train --preset tiny --stage 4 --data "$run/data" \
    --tokenizer "$run/vae" --out "$1" --steps "$2" --threads 1 --device cpu --init "$3" --resume \
    --set train.lr=3e-4 --set train.clip_frames=37 --set train.checkpoint_every=50 --set train.ema_decay=0.995 \
    --set train.hflip="$4"
}
stage4 "$run/s4" "$s4" "$(last "$run/s3")" "$hflip"
dit_run=$run/s4

# quick only: stage 4 continued for $s4_mirror steps with mirrored samples (p = 0.5), from its last checkpoint with a
# fresh optimiser (how the bundled weights were made: 900 steps turned the image a third as far as the camera turned,
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
init_weights=--init-ema
if [ "$pick" = --raw ]; then init_weights=; fi
torchrun --standalone --nproc-per-node 2 -m camworld train --refiner --data "$run/data" --tokenizer "$run/vae" \
  --out "$run/refiner" --steps "$refiner_steps" --threads 1 --device cpu --init "$(last "$dit_run")" $init_weights \
  --resume --set train.checkpoint_every=25

# 4. package: VAE in fp32, DiT in bf16 (EMA weights, or raw with --raw), refiner LoRA in bf16, into the
# bundled layout
python3 scripts/package_weights.py --vae "$run/vae" --dit "$(last "$dit_run")" --refiner "$(last "$run/refiner")" \
  --out camworld/assets/weights/tiny $pick --refiner-off --cfg-scale 1 --ar-sigmas 1,0.96,0.889,0.727,0 \
  --ar-interval-k 1 --ar-segment-frames 81
# --refiner-off: the refiner lost its A/B (README), so it is bundled but off by default. --cfg-scale 1: unguided
# sampling scored higher than SANA-WM's 5.0 on held-out worlds (README), at half the compute. --ar-sigmas /
# --ar-interval-k: `--mode ar` samples chunk by chunk with 4 Euler steps at SANA-WM's distilled σ list; over the
# first 5 s of held-out worlds it scored above the 10-step pyramid and the repeated first frame (README).
# --ar-segment-frames 81: `--mode ar` videos longer than 81 frames are made as a chain of 81-frame segments, each
# from the last frame of the one before; over the last 10 s of minute-long held-out videos it scored above one pass
# (README). (Added to the packaged configs after these weights were packaged; the field is all that changed.)

# 5. the 4-step student (sana_wm.md §6.5): self-forcing distillation of the packaged dit/ (the teacher) into a
# rank-32 LoRA, one process of two threads (camworld/train/distill.py), then added to the weights as student/
$cw train --distill --data "$run/data" --tokenizer "$run/vae" --init camworld/assets/weights/tiny/dit \
  --out "$run/student" --steps "$student_steps" --threads 2 --device cpu --resume \
  --set distill.generator_every=3 --set train.batch_size=2 --set train.checkpoint_every=50
python3 scripts/package_student.py --student "$(last "$run/student")" --weights camworld/assets/weights/tiny
