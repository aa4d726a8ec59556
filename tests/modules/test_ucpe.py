"""UCPE camera branch: ray-local transforms P, the relative transform q̃·k̃ = qᵀ Pᵢ Pⱼ⁻¹ k, β discounting, invariance of
the camera branch to a global rotation of the world, and the zero-init output projection."""

import pytest
import torch

from camworld.modules.attn_mixer import SoftmaxMixer
from camworld.modules.gdn_mixer import GdnMixer
from camworld.modules.layout import FrameLayout
from camworld.modules.rope import rotary_tables
from camworld.modules.ucpe import CameraRays, discount_beta, ray_transforms, rigid_inverse, ucpe_transform

DIM, HEADS, HEAD_DIM = 64, 2, 32


def random_rotation(gen: torch.Generator, batch_shape=()) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(*batch_shape, 3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]
    det = torch.linalg.det(q)
    q[..., :, 0] *= det[..., None]
    return q


def random_cameras(gen, batch, frames, height, width):
    """(c2w [B, T, 4, 4] float32 rigid, K [B, T, 3, 3] latent-grid pinhole with ~60° FOV)."""
    c2w = torch.eye(4, dtype=torch.float64).repeat(batch, frames, 1, 1)
    c2w[..., :3, :3] = random_rotation(gen, (batch, frames))
    c2w[..., :3, 3] = torch.randn(batch, frames, 3, generator=gen, dtype=torch.float64)
    K = torch.tensor([[width * 0.9, 0, (width - 1) / 2], [0, width * 0.9, (height - 1) / 2], [0, 0, 1]])
    return c2w.float(), K.repeat(batch, frames, 1, 1)


def test_centre_pixel_of_identity_camera_is_identity():
    height, width = 3, 5
    K = torch.tensor([[4.0, 0, 2.0], [0, 4.0, 1.0], [0, 0, 1]]).repeat(1, 1, 1, 1)
    P = ray_transforms(torch.eye(4).repeat(1, 1, 1, 1), K, height, width)
    assert P.shape == (1, 1, height * width, 4, 4)
    torch.testing.assert_close(P[0, 0, 1 * width + 2], torch.eye(4), atol=1e-6, rtol=0)
    # other pixels are rotations that tilt z towards their ray, and never the identity
    assert (P[0, 0, 0] - torch.eye(4)).abs().max() > 0.1


def test_rays_are_rigid_and_point_z_along_the_ray():
    gen = torch.Generator().manual_seed(0)
    c2w, K = random_cameras(gen, 2, 3, 3, 4)
    P = ray_transforms(c2w, K, 3, 4).double()
    R = P[..., :3, :3]
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(rigid_inverse(P), torch.linalg.inv(P), atol=1e-5, rtol=0)
    # P maps the camera centre to the ray-local origin, and the pixel's world ray direction to +z
    centre = torch.cat([c2w[..., :3, 3], torch.ones(2, 3, 1)], -1).double()
    local = torch.einsum("btsij,btj->btsi", P, centre)
    torch.testing.assert_close(local[..., :3], torch.zeros_like(local[..., :3]), atol=1e-5, rtol=0)
    u, v = 3, 2  # token (row 2, col 3)
    d_cam = torch.tensor([(u - K[0, 0, 0, 2]) / K[0, 0, 0, 0], (v - K[0, 0, 1, 2]) / K[0, 0, 1, 1], 1.0]).double()
    d_world = c2w[0, 0, :3, :3].double() @ (d_cam / d_cam.norm())
    z_axis = torch.tensor([0, 0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(R[0, 0, 2 * 4 + 3] @ d_world, z_axis, atol=1e-5, rtol=0)


def test_degenerate_rays_fall_back_to_identity():
    K = torch.tensor([[0.0, 0, 0], [0, 0.0, 0], [0, 0, 1]]).repeat(1, 1, 1, 1)  # fx = fy = 0 -> NaN rays
    P = ray_transforms(torch.eye(4).repeat(1, 1, 1, 1), K, 2, 2)
    assert torch.isfinite(P).all()
    torch.testing.assert_close(P[0, 0, 1], torch.eye(4))


def test_transformed_dot_product_is_relative_transform():
    gen = torch.Generator().manual_seed(1)
    height, width, frames = 2, 3, 2
    c2w, K = random_cameras(gen, 1, frames, height, width)
    layout = FrameLayout(frames, height, width)
    half = rotary_tables(layout.frame_indices(), height, width, HEAD_DIM, rotary_dim=HEAD_DIM // 2)
    rays = CameraRays.from_cameras(c2w, K, layout, half)
    q = torch.randn(1, frames, height * width, 1, HEAD_DIM, generator=gen, dtype=torch.float64)
    k = torch.randn(1, frames, height * width, 1, HEAD_DIM, generator=gen, dtype=torch.float64)
    q_ray = ucpe_transform(q, rays.to_ray.transpose(-1, -2), half)
    k_ray = ucpe_transform(k, rays.from_ray, half)
    i, j = (0, 4), (1, 1)  # (frame, token) of the query and of the key
    Pi, Pj_inv = rays.to_ray[0, i[0], i[1]].double(), rays.from_ray[0, j[0], j[1]].double()
    qg, kg = q[0, i[0], i[1], 0, :16].view(4, 4), k[0, j[0], j[1], 0, :16].view(4, 4)
    geometric = sum(qg[g] @ Pi @ Pj_inv @ kg[g] for g in range(4))
    q_rope = half.frames(i[0], i[0] + 1).apply(q[:, i[0] : i[0] + 1, :, :, 16:])[0, 0, i[1], 0]
    k_rope = half.frames(j[0], j[0] + 1).apply(k[:, j[0] : j[0] + 1, :, :, 16:])[0, 0, j[1], 0]
    expected = geometric + q_rope @ k_rope
    got = q_ray[0, i[0], i[1], 0] @ k_ray[0, j[0], j[1], 0]
    assert got.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    # and the inverse output transform undoes the value transform for a token's own frame
    back = ucpe_transform(ucpe_transform(k, rays.from_ray, half), rays.to_ray, half, inverse_rope=True)
    torch.testing.assert_close(back, k, atol=1e-5, rtol=0)


def test_discount_beta_divides_by_mean_inflation_at_least_one():
    beta = torch.full((1, 2, 3, 1), 0.8)
    k = torch.ones(1, 2, 3, 1, 4)
    inflated = k.clone()
    inflated[:, 0] *= 2.0  # frame 0: inflation² = 4 for every token
    inflated[:, 1] *= 0.5  # frame 1: deflation is not rewarded
    out = discount_beta(beta, k, inflated)
    torch.testing.assert_close(out[:, 0], torch.full((1, 3, 1), 0.2))
    torch.testing.assert_close(out[:, 1], torch.full((1, 3, 1), 0.8))
    zero = discount_beta(beta, torch.zeros_like(k), torch.zeros_like(k))
    torch.testing.assert_close(zero, beta)


def _mixer(kind, seed):
    torch.manual_seed(seed)
    mixer = GdnMixer(DIM, HEADS, conv_kernel=4) if kind == "gdn" else SoftmaxMixer(DIM, HEADS)
    with torch.no_grad():
        for p in mixer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return mixer.double()


@pytest.mark.parametrize("kind", ["gdn", "softmax"])
@pytest.mark.parametrize("causal", [False, True])
def test_camera_branch_is_invariant_to_a_global_rotation(kind, causal):
    gen = torch.Generator().manual_seed(2)
    frames, height, width = 5, 3, 3
    layout = FrameLayout(frames, height, width, chunk_plan=(2, 2) if causal else None)
    rotary = rotary_tables(layout.frame_indices(), height, width, HEAD_DIM)
    half = rotary_tables(layout.frame_indices(), height, width, HEAD_DIM, rotary_dim=HEAD_DIM // 2)
    c2w, K = random_cameras(gen, 2, frames, height, width)
    G = torch.eye(4).repeat(2, 1, 1, 1)
    G[..., :3, :3] = random_rotation(gen, (2, 1)).float()
    mixer = _mixer(kind, 3)
    x = torch.randn(2, frames, height * width, DIM, generator=gen, dtype=torch.float64)

    def run(cams):
        y, _ = mixer(x, layout, rotary, CameraRays.from_cameras(cams, K, layout, half))
        return y

    base = run(c2w)
    torch.testing.assert_close(run(G @ c2w), base, atol=1e-5, rtol=1e-5)
    moved = c2w.clone()
    moved[:, 2, :3, 3] += 0.5  # a different trajectory is not invariant: the test is not vacuous
    assert (run(moved) - base).abs().max() > 1e-3
    no_camera, _ = mixer(x, layout, rotary, None)
    assert (no_camera - base).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["gdn", "softmax"])
def test_camera_branch_adds_exactly_zero_at_init(kind):
    torch.manual_seed(4)
    mixer = GdnMixer(DIM, HEADS) if kind == "gdn" else SoftmaxMixer(DIM, HEADS)
    with torch.no_grad():  # perturb everything but the zero-init camera output projection
        for name, p in mixer.named_parameters():
            if "out_proj_cam" not in name:
                p.add_(0.1 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(5)
    frames, height, width = 3, 2, 3
    layout = FrameLayout(frames, height, width)
    rotary = rotary_tables(layout.frame_indices(), height, width, HEAD_DIM)
    half = rotary_tables(layout.frame_indices(), height, width, HEAD_DIM, rotary_dim=HEAD_DIM // 2)
    c2w, K = random_cameras(gen, 1, frames, height, width)
    x = torch.randn(1, frames, height * width, DIM, generator=gen)
    with_camera, _ = mixer(x, layout, rotary, CameraRays.from_cameras(c2w, K, layout, half))
    without, _ = mixer(x, layout, rotary, None)
    assert torch.equal(with_camera, without)


def test_camera_projections_start_as_the_main_ones():
    mixer = GdnMixer(DIM, HEADS)
    q, k, v = mixer.qkv.weight.chunk(3)
    cam = mixer.camera
    assert torch.equal(cam.q_proj_cam.weight, q) and torch.equal(cam.k_proj_cam.weight, k)
    assert torch.equal(cam.v_proj_cam.weight, v) and torch.all(cam.v_proj_cam.bias == 0)
    assert torch.equal(cam.q_norm_cam.weight, mixer.q_norm.weight)
    assert torch.all(cam.out_proj_cam.weight == 0) and torch.all(cam.out_proj_cam.bias == 0)
