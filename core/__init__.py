"""The bottom layer: what is not a model. Atomic files, number checks, the root of the errors, image I/O,
one resize, one size parser and colour preservation; it imports no other package of this project."""
