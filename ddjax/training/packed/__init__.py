"""The packed layout for one-hidden-layer families: every member's hidden units side by side in one wide layer.

`layout` plans on the host where each member's units sit (slots, parts, parameter rows); `streams` is the
device side (one stream's init, step and evaluation).
"""
