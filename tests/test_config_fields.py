"""The saved configs (tune, compare, train) refuse fields they do not have, with one wording (`check.fields`)."""

from __future__ import annotations

import pytest

from lrlab.errors import LrlabError


@pytest.mark.parametrize("what", ["tune", "compare", "train"])
def test_a_saved_config_with_an_unknown_field_is_refused_naming_it(what: str) -> None:
    from lrlab.bench.design import CompareConfig
    from lrlab.bench.train import TrainConfig
    from lrlab.tune.config import TuneConfig

    config = {"tune": TuneConfig(horizon=1000), "compare": CompareConfig(), "train": TrainConfig()}[what]
    with pytest.raises(LrlabError, match=rf"^{what} config has unknown fields \['bogus'\]; known: \['"):
        type(config).from_dict({**config.to_dict(), "bogus": 1})
    assert type(config).from_dict(config.to_dict()) == config
