"""The packed layout for one-hidden-layer families: every member's hidden units side by side in one wide layer.

`layout` plans on the host where each member's units sit (slots, parts, parameter rows); `model` computes a
stream's logits, which the one engine (`ddjax.training.engine`, through `ddjax.training.streams`) trains.
"""
