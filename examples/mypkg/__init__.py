"""An importable package for `daneel serve mypkg.models:Scorer` (run from examples/)."""
