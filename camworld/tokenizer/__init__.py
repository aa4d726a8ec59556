"""The video tokenizer: a causal video VAE that maps RGB clips to the latent grid the world model works in."""

from camworld.tokenizer.vae import CausalVideoVAE, StreamingDecoder, load_vae, save_vae

__all__ = ["CausalVideoVAE", "StreamingDecoder", "load_vae", "save_vae"]
