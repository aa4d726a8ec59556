"""Annotation of real or rendered videos: camera poses in metres and intrinsics from structure from motion, with a
metric-scale step and SANA-WM's camera filters (sana_wm.md §7.2, §7.4), written as dataset shards."""
