"""Progress lines for long work: position, throughput and time left.

    epoch 3/90  step 120/1000  loss 2.315  top-1 21.4%  |  45.2 img/s  |  ETA 5m12s  run ETA 3h02m

One line every `every_seconds` (not a redrawn bar: logs and CI keep every line).
"""

import sys
import time


def format_duration(seconds):
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Counts steps and images of one loop and prints a line now and then.

    `total_steps` is the loop's length; `remaining_after` the steps still to come
    after this loop (other epochs), for the whole-run ETA.
    """

    def __init__(
        self,
        label,
        total_steps,
        every_seconds=10.0,
        remaining_after=0,
        stream=None,
        clock=time.monotonic,
    ):
        self.label = label
        self.total_steps = total_steps
        self.every_seconds = every_seconds
        self.remaining_after = remaining_after
        self.stream = stream or sys.stderr
        self.clock = clock
        self.start = self.last_print = clock()
        self.steps = 0
        self.images = 0

    @property
    def images_per_sec(self):
        elapsed = self.clock() - self.start
        return self.images / elapsed if elapsed > 0 else 0.0

    def update(self, step, images, details="", force=False):
        """Records one step of `images` at position `step` (1-based); prints if due."""
        self.steps += 1
        self.images += images
        now = self.clock()
        if force or now - self.last_print >= self.every_seconds or step == self.total_steps:
            self.last_print = now
            self.stream.write(self.line(step, details) + "\n")
            self.stream.flush()

    def line(self, step, details=""):
        elapsed = self.clock() - self.start
        per_step = elapsed / self.steps if self.steps else 0.0
        left = self.total_steps - step
        parts = [f"{self.label}  step {step}/{self.total_steps}"]
        if details:
            parts[0] += f"  {details}"
        parts.append(f"{self.images_per_sec:.1f} img/s")
        eta = f"ETA {format_duration(left * per_step)}"
        if self.remaining_after:
            eta += f"  run ETA {format_duration((left + self.remaining_after) * per_step)}"
        parts.append(eta)
        return "  |  ".join(parts)
