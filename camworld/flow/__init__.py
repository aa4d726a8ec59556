"""Flow matching (sana_wm.md §6.2): the noise schedule, the training objective and the per-chunk noise mixture."""
