"""The README's own-model example runs as written and learns the data's mean."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_trains_a_user_energy(capsys):
    text = README.read_text()
    block = re.search(r"## Train your own energy.*?```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) < 15
    scope: dict = {}
    exec(compile(block, "README example", "exec"), scope)
    trainer, data = scope["trainer"], scope["data"]
    s = trainer.summary()
    assert s["step"] == 500 and 0 < s["ess_frac"] <= 1 and {"log_z_est", "log_z_se", "log_z_est_coupled"} <= s.keys()
    # the weighted walkers sit on the data: weighted mean within 0.15 of the data mean
    w = torch.softmax(trainer.walkers.log_w, 0).float()
    assert torch.allclose((w[:, None] * trainer.walkers.x).sum(0), data.mean(0), atol=0.15)
    assert "log_z_est" in capsys.readouterr().out
