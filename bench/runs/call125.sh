# Call 125 (session 17): (1) the gated GELU kernel again: its tiles of gate / lin loaded before
# the contraction loop (`prefetch`), other tilings, and Triton's GEMM alone in the same loop
# (how far from cuBLAS it is); (2) the loss's forward statistics in one read of the float32
# logits (`losses.row_statistics`, a Pallas kernel) against XLA's passes, with a tiling sweep.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH timeout 200 python3 bench/probe_gated_gelu.py --sweep --shapes base_b256,large_b112 2>&1 | tee $OUT/probe125g.jsonl | grep -v "^ \|^Trace\|^  File" | tail -30
PYTHONPATH=.:$PYTHONPATH timeout 200 python3 bench/probe_loss.py --sweep 2>&1 | tee $OUT/probe125l.jsonl | grep -v "^ \|^Trace\|^  File" | tail -30
