"""Cameras for camworld: the SANA-WM action DSL, camera files and intrinsics, Plücker rays, pose metrics."""

from camworld.camera.dsl import DSL_VERSIONS, action_string_to_c2w, parse_action_string
from camworld.camera.files import (
    K_to_fxfycxcy,
    check_fov,
    field_of_view_deg,
    fxfycxcy_to_K,
    intrinsics_resize_crop,
    intrinsics_to_grid,
    load_c2w,
    load_intrinsics,
    relativize,
    resize_crop_geometry,
    validate_c2w,
)
from camworld.camera.metrics import align_extrinsics, find_revisit_pairs, pose_errors, umeyama_sim3
from camworld.camera.plucker import (
    latent_cameras,
    latent_raw_indices,
    level_frame,
    num_latent_frames,
    pack_plucker,
    plucker_rays,
)

__all__ = [
    "DSL_VERSIONS",
    "K_to_fxfycxcy",
    "action_string_to_c2w",
    "align_extrinsics",
    "check_fov",
    "field_of_view_deg",
    "find_revisit_pairs",
    "fxfycxcy_to_K",
    "intrinsics_resize_crop",
    "intrinsics_to_grid",
    "latent_cameras",
    "latent_raw_indices",
    "load_c2w",
    "load_intrinsics",
    "num_latent_frames",
    "level_frame",
    "pack_plucker",
    "parse_action_string",
    "plucker_rays",
    "pose_errors",
    "relativize",
    "resize_crop_geometry",
    "umeyama_sim3",
    "validate_c2w",
]
