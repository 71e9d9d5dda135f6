"""2D semantics for the map: input forms, structural labels without a model, and model runners."""
