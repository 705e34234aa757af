"""Container entrypoint: ``python -m trainer <train|predict|backtest> ...``."""

from trainer.cli import main

raise SystemExit(main())
