"""Add the distilled few-step student to a weights folder: student/ = config.json + lora.safetensors (sana_wm.md §6.5).

    python3 scripts/package_student.py --student RUN/student/checkpoints/step_XXXXXXX \
        --weights camworld/assets/weights/tiny [--raw] [--on]

Takes the student's LoRA from a `camworld train --distill` checkpoint (its EMA weights unless --raw) and checks that
the teacher it was distilled from is the folder's dit/ (the adapter is merged into dit/ on load). --on makes
`generate` use the student when not told otherwise (`distill.on_by_default`); pick it by measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from camworld.config import RunConfig, from_dict
from camworld.errors import UserError
from camworld.lora_dirs import save_lora_dir, weights_fingerprint
from camworld.train.checkpoint import load_checkpoint
from camworld.train.distill import student_lora
from camworld.weights_dirs import read_weights_dir

TEACHER_PREFIX = "teacher."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", required=True, help="checkpoint folder of `camworld train --distill`")
    parser.add_argument("--weights", required=True, help="weights folder whose dit/ is the student's teacher")
    parser.add_argument("--raw", action="store_true", help="package the raw adapter, not its EMA")
    parser.add_argument("--on", action="store_true", help="let `generate` use the student by default")
    args = parser.parse_args(argv)
    weights = Path(args.weights)
    try:
        _, dit_state = read_weights_dir(weights / "dit")
        ckpt = load_checkpoint(args.student)
        state = ckpt.model if args.raw else ckpt.ema
        teacher = {k[len(TEACHER_PREFIX):]: v for k, v in state.items() if k.startswith(TEACHER_PREFIX)}
        lora = student_lora(state)
        if not teacher or not lora:
            raise UserError(f"--student {args.student} is not a `camworld train --distill` checkpoint")
        fingerprint = weights_fingerprint(dit_state)
        if weights_fingerprint(teacher) != fingerprint:
            raise UserError(f"--student {args.student} was distilled from another teacher than {weights / 'dit'}")
    except UserError as exc:
        print(f"package_student: error: {exc}", file=sys.stderr)
        return 2
    cfg = from_dict(RunConfig, ckpt.config)
    cfg.distill.on_by_default = args.on
    save_lora_dir(weights / "student", lora, cfg, fingerprint)
    sources_path = weights / "sources.json"
    sources = json.loads(sources_path.read_text()) if sources_path.is_file() else {}
    sources.update({"student": args.student, "student_weights": "raw" if args.raw else "ema",
                    "student_on_by_default": args.on})
    sources_path.write_text(json.dumps(sources, indent=2) + "\n")
    size = (weights / "student" / "lora.safetensors").stat().st_size / 2**20
    print(f"wrote {weights / 'student'}: lora.safetensors {size:.1f} MiB, rank {cfg.distill.lora_rank}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
