"""Stylise one video over many machines: chunks at keyframes on Ray workers, joined by stream copy.

``plan`` cuts the input into chunks (with warm-up frames for the temporal stage), ``worker`` is
what runs on a worker (a Ray actor), ``join`` puts the encoded chunks and the input's audio into
one file without re-encoding, and ``job`` drives it all with resume, retries and progress.
"""
