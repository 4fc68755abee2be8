"""Features extractor for the environments' Dict observations.

SB3's ``CombinedExtractor`` flattens every key and concatenates them, so the network
must learn the same "is this location a good place?" function once per location.
:class:`LocationExtractor` instead gathers every per-location quantity into one row per
location, runs all rows through one shared MLP, and concatenates the row embeddings in
location order (device first, so the policy still knows which location is which) with
an MLP embedding of the remaining, location-free features.

Which columns belong to which location is read from the environments' own layout,
:class:`envs.observation.ObservationLayout` (``locations`` is already one row per
location; ``inputs`` and ``system`` have per-location parts; ``node`` and ``progress``
are location-free).

The environments pad the locations up to ``max_servers`` (absent servers have presence 0);
the extractor zeroes the embedding of an absent location, so the same weights serve every
scenario with 1 .. max_servers servers.

Tried against the flatten default with MaskablePPO on DecoderOffload-v1 (100k steps,
two-server and multi-server, outages off and on): no clear difference at that budget and
~15% fewer steps/s, so the YAMLs keep ``combined`` and this extractor is opt-in
(``policy_kwargs: {features_extractor_class: location}``).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor
from torch import nn

from envs.observation import ObservationLayout

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU,
}


def _mlp(in_dim: int, hidden: list[int], activation: type[nn.Module]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    return nn.Sequential(*layers), in_dim


class LocationExtractor(BaseFeaturesExtractor):
    """One MLP shared across locations + one MLP over the location-free features.

    :param location_arch: hidden widths of the shared per-location MLP
    :param global_arch: hidden widths of the MLP over the location-free features
    :param activation_fn: a name from :data:`ACTIVATIONS`
    """

    def __init__(self, observation_space: gym.spaces.Dict, location_arch: list[int] | tuple[int, ...] = (32, 32),
                 global_arch: list[int] | tuple[int, ...] = (64,), activation_fn: str = "relu") -> None:
        layout = ObservationLayout.of_space(observation_space)  # ValueError if not an env's space
        if activation_fn not in ACTIVATIONS:
            raise ValueError(f"LocationExtractor: unknown activation_fn {activation_fn!r}; known: {sorted(ACTIVATIONS)}")
        activation = ACTIVATIONS[activation_fn]
        k, row_dim = observation_space["locations"].shape
        gather: list[tuple[str, np.ndarray | None, np.ndarray]] = []
        global_dim = 0
        for key, space in observation_space.spaces.items():
            if key == "locations":
                continue
            size = int(np.prod(space.shape))
            cols = layout.location_columns(key)
            if cols is None:
                gather.append((key, None, np.arange(size)))
                global_dim += size
            else:
                gather.append((key, cols[0], cols[1]))
                row_dim += cols[0].shape[1]
                global_dim += cols[1].size
        location_net, location_out = _mlp(row_dim, list(location_arch), activation)
        global_net, global_out = _mlp(global_dim, list(global_arch), activation)
        super().__init__(observation_space, features_dim=k * location_out + global_out)
        self.num_locations = k
        self._present = layout.location_features.index("present")
        self.location_net = location_net
        self.global_net = global_net
        self._keys = [key for key, _, _ in gather]
        for j, (_, per_loc, rest) in enumerate(gather):
            self.register_buffer(f"_rest{j}", torch.as_tensor(rest, dtype=torch.long), persistent=False)
            if per_loc is not None:
                self.register_buffer(f"_loc{j}", torch.as_tensor(per_loc, dtype=torch.long), persistent=False)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        rows = [observations["locations"]]
        rest = []
        for j, key in enumerate(self._keys):
            x = observations[key].flatten(1)
            per_loc = getattr(self, f"_loc{j}", None)
            if per_loc is not None:
                rows.append(x[:, per_loc])  # (B, K, m)
            rest.append(x[:, getattr(self, f"_rest{j}")])
        # absent servers (padding up to max_servers, presence 0) contribute a zero embedding
        present = observations["locations"][:, :, self._present:self._present + 1]
        location_features = (self.location_net(torch.cat(rows, dim=-1)) * present).flatten(1)
        return torch.cat([location_features, self.global_net(torch.cat(rest, dim=-1))], dim=1)


EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {"combined": CombinedExtractor, "location": LocationExtractor}
"""Names accepted for ``policy_kwargs.features_extractor_class`` in the agent YAMLs."""
