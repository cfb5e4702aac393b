"""The one training loop every task runs through, its clocks and its DDP collectives."""
