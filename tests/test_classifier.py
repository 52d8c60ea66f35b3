import numpy as np
import pytest
import torch

from ebmlab.data.mnist import load_mnist
from ebmlab.data.subsets import imbalanced_digit_split
from ebmlab.metrics.classifier import (
    DigitClassifier,
    accuracy,
    class_fractions,
    load_classifier,
    predict,
    random_shift,
    save_classifier,
    train_classifier,
)


@pytest.fixture(scope="module")
def split(mnist_dir):
    return imbalanced_digit_split(*load_mnist(mnist_dir), ebm_unit=120, heldout_unit=60, seed=0)


def test_quick_training_reaches_sane_accuracy_and_is_seeded(split, tmp_path):
    torch.set_num_threads(1)
    train = split.classifier
    model = train_classifier(train.images, train.labels, 3, epochs=4, seed=0, progress=False)
    acc = accuracy(model, split.heldout.images, split.heldout.labels)
    assert acc >= 0.96, acc  # 420 held-out digits 2/3/6 after four epochs (10 give ~0.99)
    again = train_classifier(train.images[:256], train.labels[:256], 3, epochs=1, seed=3, progress=False)
    twice = train_classifier(train.images[:256], train.labels[:256], 3, epochs=1, seed=3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), twice.state_dict().values()))
    save_classifier(model, tmp_path / "clf.pt")
    loaded = load_classifier(tmp_path / "clf.pt")
    assert torch.equal(predict(loaded, split.heldout.images), predict(model, split.heldout.images))


def test_damaged_or_foreign_classifier_files_are_named(tmp_path):
    model = DigitClassifier(n_classes=3)
    save_classifier(model, tmp_path / "clf.pt")
    raw = (tmp_path / "clf.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.pt.* is not a readable ebmlab classifier"):
        load_classifier(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.* is not an ebmlab classifier file"):
        load_classifier(tmp_path / "other.pt")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # the atomic writer left nothing


def test_features_shape_and_input_checks():
    model = DigitClassifier(n_classes=10, feature_dim=32)
    x = torch.zeros(5, 1, 28, 28)
    assert model.features(x).shape == (5, 32) and model(x).shape == (5, 10)
    with pytest.raises(ValueError, match="28, 28"):
        model.features(torch.zeros(5, 28, 28))
    with pytest.raises(ValueError, match="labels must lie"):
        train_classifier(x, torch.tensor([0, 1, 2, 3, 4]), 3)


def test_class_fractions_weighted_and_unweighted():
    pred = torch.tensor([0, 0, 1, 2])
    assert class_fractions(pred, 3).tolist() == [0.5, 0.25, 0.25]
    w = torch.tensor([1.0, 1.0, 2.0, 0.0])
    np.testing.assert_allclose(class_fractions(pred, 3, w).numpy(), [0.5, 0.5, 0.0])


def test_random_shift_translates_by_whole_pixels_with_background_fill():
    x = torch.full((50, 1, 28, 28), -1.0)
    x[:, 0, 14, 14] = 1.0
    y = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(y.sum((1, 2, 3)), x.sum((1, 2, 3)))  # one bright pixel, everything else background
    rows, cols = (y[:, 0] == 1.0).nonzero()[:, 1:].T
    assert rows.sub(14).abs().max() <= 2 and cols.sub(14).abs().max() <= 2 and len(set(cols.tolist())) > 1
