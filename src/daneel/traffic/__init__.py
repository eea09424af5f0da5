"""Which predictor serves a request: weighted split, sticky routing, shadows."""
