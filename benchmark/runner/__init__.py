"""Planning, execution and the results store."""
