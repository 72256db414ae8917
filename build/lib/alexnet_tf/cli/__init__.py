"""The command line: flags defined once (`options`), read back into the one `Config`
(`configs`), and commands run with the project's exit codes (`app`)."""
