"""Samplers (sana_wm.md §6.2, §6.4, §6.5, §5): flow-matching Euler over per-frame σ, classifier-free guidance, the
bidirectional and chunk-autoregressive (pyramid) samplers and the stage-2 refiner's inference. Models are passed in
as objects with WorldDiT's call signature (`camworld.samplers.model_api`)."""
