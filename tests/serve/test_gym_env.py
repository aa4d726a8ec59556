"""`WorldEnv` passes gymnasium's environment checker, observes what `PlaySession` makes, and a seeded reset followed
by the same actions repeats the same observations."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium", reason="the agents extra: pip install 'camworld[agents]'")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from camworld.play import PlaySession  # noqa: E402
from camworld.serve.first_frame import first_frame  # noqa: E402
from camworld.serve.gym_env import ACTIONS, ENV_ID, WorldEnv  # noqa: E402


def test_registered_env_loads_its_weights_and_passes_the_gymnasium_checker(weights_dir):
    env = gym.make(ENV_ID, weights=str(weights_dir), max_steps=3, play_options={"steps": 2}, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    assert isinstance(env.unwrapped, WorldEnv)


def test_steps_are_play_session_steps_and_seeded_resets_repeat(world_model):
    env = WorldEnv(world_model, max_steps=2, play_options={"steps": 2})
    image = np.random.default_rng(4).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    obs, info = env.reset(seed=11, options={"image": image})
    assert obs.shape == (32, 64, 3) and info["world_seed"] is None and info["pose_index"] == 0
    actions = [ACTIONS.index("w"), ACTIONS.index("dw")]
    outcomes = [env.step(a) for a in actions]
    assert [o[3] for o in outcomes] == [False, True]  # truncated after max_steps
    assert outcomes[1][4]["pose_index"] == 24 and outcomes[1][4]["keys"] == "dw"

    start = first_frame(image, 0, 70.0, world_model.image_hw)
    session = PlaySession(world_model, start.image, "", start.K, seed=info["noise_seed"], steps=2)
    for (observation, reward, terminated, _, step_info), a in zip(outcomes, actions):
        frames = session.step(ACTIONS[a]).frames
        np.testing.assert_array_equal(step_info["frames"], frames)
        np.testing.assert_array_equal(observation, frames[-1])
        assert reward == 0.0 and not terminated

    again, again_info = env.reset(seed=11, options={"image": image})
    assert again_info["noise_seed"] == info["noise_seed"]
    np.testing.assert_array_equal(env.step(actions[0])[0], outcomes[0][0])
    with pytest.raises(ValueError, match="action"):
        env.step(len(ACTIONS))


def test_reset_draws_an_evaluation_world(world_model):
    env = WorldEnv(world_model)
    _, info = env.reset(seed=0)
    assert 10_000 <= info["world_seed"] < 20_000 and info["prompt"]  # the world's caption
    _, chosen = env.reset(options={"world_seed": 123})
    assert chosen["world_seed"] == 123
