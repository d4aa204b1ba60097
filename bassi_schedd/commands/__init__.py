"""One module per CLI command group; each exposes ``main(args, home) -> int``."""
