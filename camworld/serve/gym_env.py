"""`WorldEnv`: the world model as a gymnasium environment, for agents that learn or plan inside it.

Each `step(action)` holds one of `ACTIONS` (a set of WASD/IJKL keys) for one chunk of video (`PlaySession.step`: 12
frames, 0.75 s at 16 fps) and observes the chunk's last frame, uint8 [H, W, 3] at the model's resolution.
`reset(seed=...)` starts a new video from a procedural world: `options={"world_seed": n}` picks it, otherwise it is
drawn from the reset's random generator among the evaluation worlds (seeds >= 10000, never trained on);
`options={"image": array}` starts from an image instead. The noise seed of the video is drawn the same way, so a
seeded reset followed by the same actions gives the same observations.

`import camworld.serve.gym_env` registers it as "camworld/World-v0", so `gymnasium.make("camworld/World-v0")` gives
one on the bundled weights (`weights=` names another folder, `model=` passes a loaded `WorldModel`).

The reward is 0: a world model knows how the view changes, not what a task wants; wrap the environment to add one.
`info` holds every frame of the step, the camera pose (camera-to-world, relative to the start) of the observation,
and the pose index (no wall time: a seeded rollout's info is reproducible). An episode is truncated after
`max_steps` steps (80 = 60 s of video by default).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from camworld.pipeline import WorldModel
from camworld.play import PlaySession
from camworld.serve.first_frame import first_frame

ACTIONS = ("none", "w", "s", "a", "d", "j", "l", "i", "k", "aw", "dw")
EVALUATION_WORLDS = (10_000, 20_000)
ENV_ID = "camworld/World-v0"


class WorldEnv(gym.Env):
    """The world model as an environment; see the module docstring. model: a loaded `WorldModel` (None: load
    `weights`, a weights folder, or the bundled tiny weights); play_options: keyword arguments of `PlaySession`
    (e.g. {"student": True} for the 4-step student)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 16}

    def __init__(self, model: WorldModel | None = None, *, weights: str | None = None, max_steps: int = 80,
                 fov_deg: float = 70.0, prompt: str | None = None, play_options: dict[str, Any] | None = None,
                 render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.model = WorldModel.from_pretrained(weights) if model is None else model
        self.max_steps, self.fov_deg, self.prompt = int(max_steps), float(fov_deg), prompt
        self.play_options = dict(play_options or {})
        self.render_mode = render_mode
        height, width = self.model.image_hw
        self.observation_space = gym.spaces.Box(0, 255, (height, width, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.session: PlaySession | None = None
        self.steps = 0
        self._frame: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        world_seed = int(options.get("world_seed", self.np_random.integers(*EVALUATION_WORLDS)))
        noise_seed = int(self.np_random.integers(0, 2**31 - 1))
        start = first_frame(options.get("image"), world_seed, self.fov_deg, self.model.image_hw)
        prompt = start.default_prompt if self.prompt is None else self.prompt
        self.session = PlaySession(self.model, start.image, prompt, start.K, seed=noise_seed, **self.play_options)
        self.steps = 0
        self._frame = self.session.first_frame.copy()
        return self._frame, {"world_seed": world_seed if "image" not in options else None, "noise_seed": noise_seed,
                             "pose_index": 0, "c2w": self.session.c2w[0].copy(), "prompt": prompt}

    def step(self, action):
        if self.session is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {len(ACTIONS)}), got {action!r}")
        made = self.session.step(ACTIONS[int(action)])
        self.steps += 1
        self._frame = made.frames[-1]
        info = {"frames": made.frames, "pose_index": self.session.num_poses - 1, "c2w": made.c2w[-1],
                "keys": made.keys}
        return self._frame, 0.0, False, self.steps >= self.max_steps, info

    def render(self):
        return None if self.render_mode is None or self._frame is None else self._frame.copy()


gym.register(id=ENV_ID, entry_point=WorldEnv)
