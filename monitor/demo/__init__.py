"""The simulated model and data behind `monitor demo` and `monitor demo-endpoint`."""
