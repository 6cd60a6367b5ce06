"""An example of "your own model" for a recipe's `evaluate:` (scikit-learn, no deep learning framework).

As a command (any language works the same way: read two folders, write one CSV):

    evaluate:
      command: python examples/train_sklearn.py --train {train_dir} --dev {dev_dir} --out {predictions} --seed {seed}

As a Python function (the current directory is importable):

    evaluate: {python: "examples.train_sklearn:predict"}

Audio: 40-band log-mel mean, standard deviation and standard deviation of the deltas at 16 kHz (keeps speaker and
channel identity); images: 16x16 RGB pixels. Then a standard scaler and logistic regression. The predictions are
the contract of curate.predictions: id, prediction and one p_<label> column per class.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

AUDIO = {".wav", ".flac", ".ogg", ".mp3"}


def features(path: str) -> np.ndarray:
    if Path(path).suffix.lower() in AUDIO:
        import librosa

        audio, rate = librosa.load(path, sr=16000, mono=True)
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=rate, n_mels=40) + 1e-10)
        delta = np.diff(mel, axis=1) if mel.shape[1] > 1 else np.zeros_like(mel)
        return np.concatenate([mel.mean(axis=1), mel.std(axis=1), delta.std(axis=1)])
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32).ravel() / 255.0


def predict(train, dev, seed: int = 0):
    """Fit on `train`, predict `dev` (DataFrames with id, path, label): a DataFrame of id, prediction, p_<label>."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    model.fit(np.stack([features(p) for p in train["path"]]), train["label"].to_numpy())
    probabilities = model.predict_proba(np.stack([features(p) for p in dev["path"]]))
    classes = list(model.classes_)
    frame = pd.DataFrame({"id": list(dev["id"]), "prediction": [classes[i] for i in probabilities.argmax(axis=1)]})
    for k, label in enumerate(classes):
        frame[f"p_{label}"] = probabilities[:, k].round(6)
    return frame


def read_folder(folder: Path):
    """A split folder written by rubbersheet: labels.csv (id, file, label, tags, group, ...) and media/."""
    import pandas as pd

    frame = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    frame["path"] = [str(folder / f) for f in frame["file"]]
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="folder with labels.csv and media/")
    parser.add_argument("--dev", type=Path, required=True, help="folder with labels.csv and media/")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train, dev = read_folder(args.train), read_folder(args.dev)
    if train["label"].nunique() < 2:
        print(f"{args.train}: need at least two labels to train", file=sys.stderr)
        return 2
    frame = predict(train, dev, args.seed)
    frame.to_csv(args.out, index=False, quoting=csv.QUOTE_MINIMAL)
    print(f"trained on {len(train)} items, predicted {len(dev)}: accuracy on them "
          f"{(frame['prediction'].to_numpy() == dev['label'].to_numpy()).mean():.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
