"""`python -m alexnet_tf.bench stop`: how long `train.py` takes to exit after a signal.

Starts a test-sized `train.py` (tiny generated images, 67-px crops, batch 4) `--runs`
times, each into a fresh run folder; once it prints the progress line of step
`--after_step`, sends SIGINT or SIGTERM (alternating with `--signal both`) and times
the process from the signal to its "stopped:" line and to its exit. With `--second`,
a second signal follows the first after that many seconds (a second Ctrl-C), and the
exit is timed from it too. Prints each run's figures, then the median and maximum.
`--train_script` times another checkout's `train.py` (for a before/after figure).
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from absl import flags

from alexnet_tf.bench import common

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIGNALS = {"SIGINT": (signal.SIGINT,), "SIGTERM": (signal.SIGTERM,)}
SIGNALS["both"] = SIGNALS["SIGINT"] + SIGNALS["SIGTERM"]


def define_flags(fv):
    flags.DEFINE_integer("runs", 20, "train.py processes to stop.", flag_values=fv, lower_bound=1)
    flags.DEFINE_enum("signal", "both", list(SIGNALS), "Signal to send.", flag_values=fv)
    flags.DEFINE_integer(
        "after_step", 4, "Send it once this step's progress line is printed.", flag_values=fv
    )
    flags.DEFINE_float(
        "second", None, "Send the signal again this many seconds after the first.", flag_values=fv
    )
    flags.DEFINE_string(
        "train_script", os.path.join(ROOT, "train.py"), "The train.py to run.", flag_values=fv
    )
    flags.DEFINE_bool("json", False, "Print one JSON line.", flag_values=fv)


def main(argv=None):
    return common.command(argv, "stop", define_flags, run)


def run(args, _):
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = tiny_image_folder(os.path.join(tmp, "data"))
        rows = []
        for i in range(args.runs):
            sig = SIGNALS[args.signal][i % len(SIGNALS[args.signal])]
            model_dir = os.path.join(tmp, f"run{i}")
            row = stop_once(args.train_script, data_dir, model_dir, sig, args)
            rows.append(row)
            print(
                f"run {i + 1:2d}  {row['signal']:7s}  stopped line {row['to_line']:6.2f} s  "
                f"exit {row['to_exit']:6.2f} s  status {row['status']}",
                file=sys.stderr,
                flush=True,
            )
    exits = [r["to_exit"] for r in rows]
    result = {
        "runs": len(rows),
        "exit_median_s": round(statistics.median(exits), 2),
        "exit_max_s": round(max(exits), 2),
        "exit_s": [round(x, 2) for x in exits],
        "statuses": sorted({r["status"] for r in rows}),
        "second_signal_s": args.second,
        "train_script": args.train_script,
    }
    if args.second is not None:
        after = [r["after_second"] for r in rows if r["after_second"] is not None]
        result["exit_after_second_max_s"] = round(max(after), 2) if after else None
    print(
        f"signal to exit: median {result['exit_median_s']} s, max {result['exit_max_s']} s "
        f"over {len(rows)} runs",
        file=sys.stderr if args.json else sys.stdout,
    )
    if args.json:
        print(json.dumps(result))
    return 0


def stop_once(script, data_dir, model_dir, sig, args):
    """One train.py stopped by `sig` after step `args.after_step`: its timings."""
    flags_ = [
        *("--data_dir", data_dir, "--model_dir", model_dir, "--image_size", "67"),
        *("--resize", "76", "--batch_size", "4", "--stats_images", "0", "--epochs", "1"),
        *("--steps_per_epoch", "20", "--checkpoint_every", "1000", "--progress_seconds", "0"),
    ]
    process = subprocess.Popen(
        [sys.executable, script, *flags_],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"},
        cwd=os.path.dirname(os.path.abspath(script)),
    )
    marker = f"step {args.after_step}/"
    output = []
    for line in process.stdout:
        output.append(line)
        if marker in line:
            break
    else:
        process.wait()
        raise RuntimeError(f"train.py ended before step {args.after_step}:\n{''.join(output)}")
    lines = []  # (time, line) read after the signal, by a thread: the exit is timed here
    reader = threading.Thread(
        target=lambda: lines.extend((time.monotonic(), line) for line in process.stdout)
    )
    sent = time.monotonic()
    process.send_signal(sig)
    reader.start()
    second_sent = None
    if args.second is not None:
        try:
            process.wait(timeout=args.second)
        except subprocess.TimeoutExpired:
            second_sent = time.monotonic()
            process.send_signal(sig)
    process.wait()
    exited = time.monotonic()
    reader.join()
    to_line = next((t - sent for t, line in lines if line.startswith("stopped:")), None)
    return {
        "signal": signal.Signals(sig).name,
        "to_line": to_line if to_line is not None else float("nan"),
        "to_exit": exited - sent,
        "after_second": exited - second_sent if second_sent is not None else None,
        "status": process.returncode,
    }


def tiny_image_folder(root, classes=("ant", "bee", "cat"), per_class=30, size=(40, 52)):
    """`root/{train,val}/<class>/*.jpg`: smooth generated JPEGs; returns root."""
    import numpy as np
    from PIL import Image

    for split, count in (("train", per_class), ("val", 3)):
        for c, name in enumerate(classes):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng(1000 * c + i)
                y, x = np.mgrid[0 : size[0], 0 : size[1]]
                image = rng.uniform(40, 200, 3) + np.stack([x * 2.0, y * 1.5, x + y], -1)
                pixels = np.clip(image, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{name}_{i}.jpg"), quality=95)
    return root
