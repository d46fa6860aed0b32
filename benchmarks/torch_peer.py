"""PyTorch's recurrent layers as a timed peer of `python -m benchmarks.rnn --peers torch`.

Runs as a process of its own, started by `benchmarks.rnn`, so that PyTorch's
thread pool never shares the CPUs with TensorFlow's while either is timed:
this process waits on its input while the other one measures. It reads one
JSON request a line and answers each with one JSON line:

- `{"cell": "LSTM", "mode": "train" | "infer", "batch": 64, "timesteps": 100,
  "features": 32, "units": 128, "warmup": 2}` builds
  `torch.nn.RNN` (tanh) / `LSTM` / `GRU` with a `Linear(units, 1)` head on the
  last output (and, to train, an MSE loss and Adam), runs `warmup` calls and
  answers `{"ready": true}`;
- `{"calls": 5}` times that many calls of the model built last and answers
  `{"seconds": [...]}`, one time per call.

A training call is a full step (forward, MSE loss, backward, Adam); an
inference call is a forward call in eval mode under `torch.inference_mode()`,
eager as PyTorch runs by default. Usage: `python -m benchmarks.torch_peer
--threads 2`, where 2 is the number of threads TensorFlow uses in the parent.
"""

import argparse
import json
import sys
import time

import numpy as np

LAYERS = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def build_call(cell, mode, batch, timesteps, features, units, seed=0):
    """One call of the timed model, as a function of no arguments.

    Args:
        cell: `"SimpleRNN"`, `"LSTM"` or `"GRU"`.
        mode: `"train"` for a training step, `"infer"` for a forward call.
        batch, timesteps, features, units: the sizes B, T, D and H.
        seed: seeds the weights and the data.

    Returns:
        A function that runs one call and returns its output as NumPy.
    """
    import torch

    if cell not in LAYERS:
        raise ValueError(f"Expected cell to be one of {sorted(LAYERS)}. Received: cell={cell!r}")
    if mode not in ("train", "infer"):
        raise ValueError(f"Expected mode to be 'train' or 'infer'. Received: mode={mode!r}")
    torch.manual_seed(seed)
    layer_class = getattr(torch.nn, LAYERS[cell])
    options = {"nonlinearity": "tanh"} if cell == "SimpleRNN" else {}
    recurrent = layer_class(features, units, batch_first=True, **options)
    head = torch.nn.Linear(units, 1)

    def forward(x):
        outputs, _ = recurrent(x)
        return head(outputs[:, -1])

    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(batch, timesteps, features)).astype("float32"))
    y = torch.from_numpy(rng.normal(size=(batch, 1)).astype("float32"))
    parameters = [*recurrent.parameters(), *head.parameters()]
    if mode == "infer":
        recurrent.eval()
        head.eval()

        def infer():
            with torch.inference_mode():
                return forward(x).numpy()

        return infer

    optimizer = torch.optim.Adam(parameters)
    loss_function = torch.nn.MSELoss()

    def train():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach().numpy()

    return train


def serve(requests, answers, threads):
    """Answers timing requests, one JSON line each, until `requests` ends."""
    import torch

    torch.set_num_threads(threads)
    call = None
    for line in requests:
        request = json.loads(line)
        if "calls" in request:
            if call is None:
                raise ValueError("Expected a model request before a timing request.")
            seconds = []
            for _ in range(request["calls"]):
                start = time.perf_counter()
                call()
                seconds.append(time.perf_counter() - start)
            answer = {"seconds": seconds}
        else:
            sizes = {k: request[k] for k in ("batch", "timesteps", "features", "units")}
            call = build_call(request["cell"], request["mode"], **sizes)
            for _ in range(request.get("warmup", 2)):
                call()
            answer = {"ready": True, "threads": torch.get_num_threads()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"Expected --threads >= 1. Received: threads={args.threads}")
    serve(sys.stdin, sys.stdout, args.threads)


if __name__ == "__main__":
    main()
