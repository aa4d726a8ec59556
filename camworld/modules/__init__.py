"""Neural-network building blocks of the world DiT (norms, FFN, conditioning, token mixers, camera branches)."""
