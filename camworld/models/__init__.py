"""The world model network: `WorldDiT` (the Hybrid Linear DiT of SANA-WM) and its streaming `StreamState`."""
