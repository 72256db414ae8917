"""Running a command: absl's flag parsing and `app.run`, with the project's exit codes.

A user's mistake, in a flag's value, an unknown flag or a `UserError`, surfaces as one
line `error: ...` on stderr and exit status 2, before any heavy work; see `EXIT_CODES`
for the others.
"""

import contextlib
import logging
import os
import sys

from absl import app, flags

from alexnet_tf.cli import configs, options
from alexnet_tf.errors import TrainingStopped, UserError

FLAGS = flags.FLAGS

# Exit statuses (README, "Exit codes").
EXIT_CODES = {
    0: "finished",
    1: "an unexpected error (a traceback follows)",
    2: "a mistake in a flag, path or file: the one-line message says which",
    3: "training stopped: the loss or gradients became NaN or infinite (nothing saved after)",
    4: "training stopped: the data ran out before the planned steps",
    5: "training stopped: another worker of a multi_worker run stopped responding",
    130: "interrupted by SIGINT (Ctrl-C) after saving a checkpoint (during the final "
    "export: after finishing it; a second signal: at once)",
    143: "stopped by SIGTERM, the same way",
}


HELP_FLAGS = ("-h", "--help", "--helpshort", "-?")


def flag_error(error):
    """The one line that reports absl's flag `error` (its first line, after `error: `)."""
    return f"error: {str(error).strip().splitlines()[0]}"


def _parse_flags(argv):
    """absl's flag parsing for `app.run`, but a mistake is one line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as err:
        print(flag_error(err), file=sys.stderr)
        sys.exit(2)


def run(main, doc):
    """`absl.app.run(main)`, turning the project's exceptions into one line and a status.

    `doc` is the command's docstring, printed by `--help` above the flags."""

    def wrapped(argv):
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {' '.join(argv[1:])!r} (flags start with --)")
        return main(argv)

    def guarded(argv):
        _quiet_logging()
        try:
            return wrapped(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except TrainingStopped as err:
            print(f"stopped: {err}", file=sys.stderr)
            leave_now(err.exit_code)

    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        _print_help(FLAGS.module_help(options.__name__), doc)
        sys.exit(0)
    if "--version" in sys.argv[1:]:
        print_version()
        sys.exit(0)
    app.run(guarded, flags_parser=_parse_flags)


def leave_now(code):
    """Ends a stopped run with `code` once its output is flushed, skipping the interpreter's
    shutdown. The run has saved and closed what it writes (checkpoint, history.json,
    reports, event files); what is left is tearing down objects such as tf.data
    iterators, whose destructors wait for their threads: seconds, up to half a minute
    after a signal, where the README promises a few."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


COMMAND_EXIT_CODES = {code: EXIT_CODES[code] for code in (0, 1, 2)}


def command(argv, prog, define, main, positional=None):
    """Run a `python -m alexnet_tf.X` command with absl flags; returns its exit status.

    `define(fv)` defines the command's flags in a fresh `FlagValues` (so that commands
    run one after another in one process do not share flags); `main(fv, args)` does the
    work, `args` being the arguments that are not flags, which only a command with
    `positional` (their name, e.g. "IMAGE") accepts. `--help` prints the calling module's
    docstring and the flags, status 0; a mistake in a flag or a UserError is one line
    `error: ...` on stderr, status 2.
    """
    fv = flags.FlagValues()
    define(fv)
    if "--version" in argv:
        print_version()
        return 0
    if any(arg in HELP_FLAGS for arg in argv):
        doc = sys.modules[main.__module__].__doc__ or ""
        _print_help(fv.get_help(include_special_flags=False), doc, COMMAND_EXIT_CODES)
        return 0
    try:
        args = fv([prog, *argv])[1:]
    except flags.Error as err:
        print(flag_error(err), file=sys.stderr)
        return 2
    try:
        if positional and not args:
            raise UserError(f"give one or more {positional} arguments")
        if args and not positional:
            raise UserError(f"unexpected arguments {' '.join(args)!r} (flags start with --)")
        _command_logging()
        return main(fv, args) or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _command_logging():
    """INFO lines of ours as `INFO message`, other libraries' from WARNING on (no-op when
    logging is configured already, as under pytest)."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    handler = logging.getLogger().handlers[0]
    handler.addFilter(_OursHoldingNotes(handler))
    # TF, imported before this (by the flags' modules), found the root logger bare and gave
    # its logger a handler of its own, which the filter above never sees: at the root's
    # INFO it would print TF's `INFO:tensorflow:Assets written to: ...` of every export.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def print_version():
    """`--version`: the package's version, from its one source."""
    from alexnet_tf.version import __version__

    print(f"alexnet_tf {__version__}")


def _print_help(flag_help, doc, exit_codes=EXIT_CODES):
    """The command's docstring and its flags (absl's own --help lists only flags defined
    in the main module, and exits 1)."""
    codes = "\n".join(f"  {code:3d}  {what}" for code, what in exit_codes.items())
    with contextlib.suppress(BrokenPipeError):  # `--help | head`
        print(f"{doc.strip()}\n\nflags:\n{flag_help}\n\nexit codes:\n{codes}")


def _quiet_logging():
    """Our INFO lines as `HH:MM:SS message`; other libraries' INFO chatter (TF's saver
    timings, SavedModel notes) off, their warnings kept."""
    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(_OursHoldingNotes(handler))
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # it has a handler of its own


class _OursHoldingNotes(logging.Filter):
    """Passes warnings, and INFO lines of alexnet_tf only; holds back this module's own
    INFO lines (the settings chosen from the flags, e.g. --resize) until the work's first
    INFO line, so that a mistake found before any work starts stays the one line on
    stderr (README, "Exit codes")."""

    def __init__(self, handler):
        super().__init__()
        self.handler = handler
        self.held = []  # None once the work has started

    def filter(self, record):
        if record.levelno >= logging.WARNING:
            return True
        if not record.name.startswith("alexnet_tf"):
            return False
        if self.held is None:
            return True
        if record.name == configs.__name__:
            self.held.append(record)
            return False
        held, self.held = self.held, None
        for note in held:
            self.handler.handle(note)
        return True
