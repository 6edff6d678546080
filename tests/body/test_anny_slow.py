"""The paper-preset Anny topology (13348 vertices): slow to build the first time (~2.5 min)."""

import pytest
import torch

from moro.body import load_anny


@pytest.mark.slow
def test_paper_topology_is_one_connected_body():
    body = load_anny("anny-noeyes-notongue")
    assert body.num_vertices == 13348 and body.num_joints == 36
    # one connected component: union-find over the faces
    parent = list(range(body.num_vertices))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for f in body.faces.tolist():
        for a, b in ((f[0], f[1]), (f[1], f[2])):
            parent[find(a)] = find(b)
    assert len({find(v) for v in range(body.num_vertices)}) == 1
    out = body(body.identity_pose(2), body.zero_betas())
    assert torch.isfinite(body.joints22(out.vertices)).all() and torch.isfinite(body.coco17(out.vertices)).all()
